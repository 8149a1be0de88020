"""Command-line interface: parse arguments, call the library, render the result.

Thin by design (STYLE.md, conventions 1 and 7): no SQL and no regexes here. Every
command that outputs data goes through :func:`render`.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from mailbox_processor import __version__, engine_build
from mailbox_processor.errors import MailboxProcessorError
from mailbox_processor.sources import DEFAULT_BATCH_SIZE

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


# -- shared options ------------------------------------------------------------------


def output_options(*, csv_ok: bool = True) -> Callable[[F], F]:
    """Add ``--json`` / ``--csv`` / ``--table``, collapsed into one ``fmt`` argument.

    The default is a readable table on a terminal and JSON lines otherwise, so that
    piping into ``jq`` just works.
    """

    def decorator(fn: F) -> F:
        choices = ["table", "json"] + (["csv"] if csv_ok else [])
        fn = click.option(
            "--table", "fmt", flag_value="table", help="Readable table (default on a terminal)."
        )(fn)
        if csv_ok:
            fn = click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row.")(fn)
        fn = click.option(
            "--json", "fmt", flag_value="json", help="JSON, one object per line."
        )(fn)
        fn = click.option(
            "--format",
            "fmt",
            type=click.Choice(choices),
            default=None,
            help="Output format (same as the flags).",
        )(fn)
        return fn

    return decorator


def resolve_format(fmt: str | None) -> str:
    """Return the output format: the one asked for, else table on a terminal, else json."""
    if fmt:
        return fmt
    return "table" if sys.stdout.isatty() else "json"


def handle_errors(fn: F) -> F:
    """Turn library errors into one clean ``Error:`` line and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MailboxProcessorError as exc:
            ctx = click.get_current_context()
            if ctx.find_root().params.get("debug"):
                raise
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


# -- rendering -----------------------------------------------------------------------


def _cell(value: Any, width: int | None) -> str:
    if value is None:
        return ""
    text = str(value).replace("\n", " ")
    if width is not None and len(text) > width:
        text = text[: max(0, width - 1)] + "…"
    return text


def render(
    rows: Iterable[dict[str, Any]],
    fmt: str,
    columns: Sequence[str] | None = None,
    *,
    widths: dict[str, int] | None = None,
) -> None:
    """Write ``rows`` to stdout as a table, JSON lines or CSV (the only output path).

    ``columns`` picks and orders the columns for table and CSV output; JSON keeps
    every key. ``widths`` caps table column widths (long diagnostics are shortened
    with an ellipsis; JSON and CSV are never shortened).
    """
    out = sys.stdout
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        return
    rows = list(rows) if fmt == "table" else rows
    if fmt == "csv":
        writer: Any = None
        for row in rows:
            if writer is None:
                cols = list(columns or row.keys())
                writer = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore")
                writer.writeheader()
            writer.writerow(
                {k: ("" if row.get(k) is None else row.get(k)) for k in writer.fieldnames}
            )
        return
    table_rows = list(rows)
    if not table_rows:
        return
    cols = list(columns or table_rows[0].keys())
    widths = widths or {}
    cells = [[_cell(r.get(c), widths.get(c)) for c in cols] for r in table_rows]
    col_w = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(cols)]
    buf = io.StringIO()
    buf.write("  ".join(c.ljust(col_w[i]) for i, c in enumerate(cols)).rstrip() + "\n")
    buf.write("  ".join("-" * col_w[i] for i in range(len(cols))) + "\n")
    for line in cells:
        buf.write("  ".join(line[i].ljust(col_w[i]) for i in range(len(cols))).rstrip() + "\n")
    out.write(buf.getvalue())


# -- the command group ---------------------------------------------------------------


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="mailbox-processor",
                      message=f"%(prog)s, version %(version)s (engine: {engine_build()})")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Turn a bounce mailbox into a trustworthy suppression list.

    \b
    Example:
        mailbox-processor parse fixtures/maildir
        mailbox-processor scan fixtures/maildir && mailbox-processor list
    """
    import_sqlite_utils_without_numpy()


def import_sqlite_utils_without_numpy() -> None:
    """Import sqlite-utils with numpy made unavailable to it, unless either is loaded.

    sqlite-utils imports numpy whenever it is installed, only to map numpy's scalar
    types to column types. We never store numpy values, and the import cost every
    command about 65 ms of start-up (75 ms of CPU, and it starts OpenBLAS's threads).
    Only the command line does this; ``import numpy`` works as usual afterwards.
    """
    if "numpy" in sys.modules or "sqlite_utils" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # "import numpy" raises ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["numpy"]


# -- parse ---------------------------------------------------------------------------

PARSE_COLUMNS = ("message", "recipient", "classification", "reason", "status", "smtp_code",
                 "diagnostic")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@output_options()
@click.option("--all-fields", is_flag=True, help="JSON/CSV: every field, not just the bench set.")
@handle_errors
def parse(paths: tuple[str, ...], fmt: str | None, all_fields: bool) -> None:
    """Classify returned messages in files, directories, mbox files or Maildirs.

    Prints one row per recipient verdict: hard or soft, the reason word, the DSN
    status, the SMTP code and the server's own words. Nothing is stored; use
    ``scan`` to fill the database. With --json the lines follow the format of the
    bounce bench (message, recipient, classification, reason, status, smtp_code).

    \b
    Example:
        mailbox-processor parse fixtures/maildir
        mailbox-processor parse --json bounce.eml | jq .reason
    """
    from mailbox_processor.pipeline import parse_paths

    fmt = resolve_format(fmt)
    rows: Iterable[dict[str, Any]] = parse_paths(paths, all_fields=all_fields)
    if fmt == "table":
        # A table row names the file, not its whole path.
        rows = ({**r, "message": os.path.basename(str(r["message"]))} for r in rows)
    render(rows, fmt, None if all_fields else PARSE_COLUMNS,
           widths={"diagnostic": 60, "message": 32})


# -- poll / watch (IMAP; issue 4) ----------------------------------------------------
# Settings come from imap_options into ctx.meta; the work is in mailbox_processor.poller.

#: flag name -> config setting, for the options that ``imap_options`` adds.
_IMAP_SETTINGS = ("host", "port", "user", "password_env", "password_file", "password_command",
                  "oauth2_token_command", "auth", "tls", "cafile", "insecure", "folder", "after",
                  "quarantine_folder", "not_bounce_folder", "batch_size", "interval", "idle")


def _store_setting(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and param.name:
        ctx.meta.setdefault("imap_overrides", {})[param.name] = value
    return value


def imap_options(fn: F) -> F:
    """Add the mailbox settings (host, port, user, TLS, folder, password source...).

    Values land in ``ctx.meta["imap_overrides"]`` and override the config file and the
    environment. Secrets are never flags: only *where* to read them from.
    """
    opts: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("--config", "config_path"), {"type": click.Path(dir_okay=False), "expose_value": True,
          "help": "TOML config file [default: ./mailbox-processor.toml, then "
                  "~/.config/mailbox-processor/config.toml]."}),
        (("--mailbox", "-m", "mailboxes"), {"multiple": True, "expose_value": True,
          "help": "Named mailbox from the config file (repeatable; default: all)."}),
        (("--host",), {"help": "IMAP server host name."}),
        (("--port",), {"type": int, "help": "Port [default: 993, or 143 with starttls/plain]."}),
        (("--user",), {"help": "Login name."}),
        (("--password-env",), {"metavar": "VAR", "help": "Read the password from env VAR."}),
        (("--password-file",), {"metavar": "F", "help": "Read the password from file F."}),
        (("--password-command",), {"metavar": "CMD",
          "help": "Run CMD (a shell command); its output is the password."}),
        (("--oauth2-token-command",), {"metavar": "CMD",
          "help": "Log in with XOAUTH2; CMD prints the access token (implies --auth xoauth2)."}),
        (("--auth",), {"type": click.Choice(["password", "xoauth2"]),
          "help": "Authentication [default: password]."}),
        (("--tls",), {"type": click.Choice(["implicit", "starttls", "plain"]),
          "help": "TLS mode [default: implicit]; plain only by explicit choice."}),
        (("--cafile",), {"metavar": "F", "help": "Trust the CA certificate(s) in F."}),
        (("--insecure",), {"is_flag": True, "default": None,
          "help": "Do not verify the server certificate (testing only)."}),
        (("--folder",), {"help": "Folder to read [default: INBOX]."}),
        (("--after",), {"metavar": "ACTION",
          "help": "After storing: keep, seen, delete or move:FOLDER [default: move:Processed]."}),
        (("--quarantine-folder",), {"metavar": "FOLDER",
          "help": "Where unparseable messages go [default: Quarantine]."}),
        (("--not-bounce-folder",), {"metavar": "FOLDER",
          "help": "Where non-bounces (auto-replies, delivery reports) go [default: as --after]."}),
        (("--batch-size",), {"type": click.IntRange(min=1), "metavar": "N",
          "help": "UIDs per FETCH and per database transaction "
                  f"[default: {DEFAULT_BATCH_SIZE}]."}),
        (("--db", "db_path"), {"type": click.Path(dir_okay=False), "expose_value": True,
          "help": "SQLite database [default: $MAILBOX_PROCESSOR_DB or ./bounces.db]."}),
        (("--verbose", "-v"), {"is_flag": True, "expose_value": True,
          "help": "Log every step, not just one line per batch."}),
        (("--quiet", "-q"), {"is_flag": True, "expose_value": True,
          "help": "Log warnings and errors only."}),
        (("--json", "as_json"), {"is_flag": True, "expose_value": True,
          "help": "Print a JSON summary per mailbox on stdout."}),
    ]
    for decls, kw in reversed(opts):
        if not kw.pop("expose_value", False):
            kw.update(expose_value=False, callback=_store_setting)
        fn = click.option(*decls, **kw)(fn)
    return fn


def _imap_overrides(ctx: click.Context) -> dict[str, Any]:
    overrides = dict(ctx.meta.get("imap_overrides", {}))
    if overrides.get("oauth2_token_command") and "auth" not in overrides:
        overrides["auth"] = "xoauth2"
    return overrides


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log to whatever ``sys.stderr`` is at the time of the record (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(verbose: bool, quiet: bool) -> None:
    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet exclude each other")
    logger = logging.getLogger("mailbox_processor")
    for h in list(logger.handlers):
        if getattr(h, "_mailbox_processor_cli", False):
            logger.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S"))
    handler._mailbox_processor_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


class _ExitWith(click.ClickException):
    """A one-line ``Error:`` with one of the documented exit statuses."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # (Click types exit_code as a class constant since 8.5; main() reads this one.)
        self.__dict__["exit_code"] = exit_code


def _exit_status(exc: Exception) -> int:
    from mailbox_processor import poller
    from mailbox_processor.errors import ConfigError, SourceError

    if isinstance(exc, ConfigError):
        return poller.EXIT_CONFIG
    if isinstance(exc, poller.MailboxLockedError):
        return poller.EXIT_LOCKED
    if isinstance(exc, SourceError):
        return poller.EXIT_CONNECTION
    return poller.EXIT_ERROR


def _load_imap_configs(ctx: click.Context, config_path: str | None,
                       mailboxes: tuple[str, ...]) -> list[Any]:
    from mailbox_processor.config import load_mailboxes

    try:
        return load_mailboxes(config_path, names=mailboxes, overrides=_imap_overrides(ctx))
    except MailboxProcessorError as exc:
        if ctx.find_root().params.get("debug"):
            raise
        raise _ExitWith(str(exc), _exit_status(exc)) from None


class _BacklogBar:
    """A progress bar on stderr, shown only when a backlog (more than one batch) drains."""

    def __init__(self, label: str, batch_size: int, *, enabled: bool) -> None:
        self.label, self.batch_size, self.enabled = label, batch_size, enabled
        self.bar: Any = None
        self._level = logging.NOTSET

    def start(self, total: int) -> None:
        if self.enabled and total > self.batch_size:
            # The bar replaces the per-batch INFO lines (they would tear it apart);
            # warnings still show, and --verbose keeps everything.
            logger = logging.getLogger("mailbox_processor")
            self._level = logger.level
            if logger.level == logging.INFO:
                logger.setLevel(logging.WARNING)
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()

    def step(self, progress: Any) -> None:
        if self.bar is not None:
            self.bar.update(progress.done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
            logging.getLogger("mailbox_processor").setLevel(self._level)


@cli.command()
@imap_options
@click.pass_context
def poll(ctx: click.Context, config_path: str | None, mailboxes: tuple[str, ...],
         db_path: str | None, verbose: bool, quiet: bool, as_json: bool) -> None:
    """Fetch new messages from IMAP, store the results, then file the messages.

    One pass, for cron or a systemd timer. Messages are fetched in UID batches from the
    checkpoint on; each batch is committed to the database before any message is moved,
    flagged or deleted, so a killed run loses nothing. Exit status: 0 done, 1 other
    error, 2 usage, 3 config error, 4 connection/login/TLS error, 5 mailbox locked by
    another run, 6 done but some messages were quarantined.

    \b
    Example:
        MP_PW=secret mailbox-processor poll --host imap.example.org \\
            --user bounces@example.org --password-env MP_PW
        mailbox-processor poll --config /etc/mailbox-processor.toml -m bounces --json
    """
    from mailbox_processor import poller
    from mailbox_processor.store import open_db

    _setup_logging(verbose, quiet)
    configs = _load_imap_configs(ctx, config_path, mailboxes)
    db: Any = None
    status = poller.EXIT_OK
    for cfg in configs:
        bar = _BacklogBar(cfg.name, cfg.batch_size, enabled=not quiet and sys.stderr.isatty())
        with poller.StopFlag().installed() as stop:
            try:
                with poller.mailbox_lock(cfg):
                    if db is None:
                        db = open_db(db_path)
                    result = poller.poll(db, cfg, stop=stop, on_start=bar.start,
                                         on_batch=bar.step, locked=True)
            except MailboxProcessorError as exc:
                if ctx.find_root().params.get("debug"):
                    raise
                click.echo(f"Error: {exc}", err=True)
                if status in (poller.EXIT_OK, poller.EXIT_QUARANTINED):
                    status = _exit_status(exc)  # the first error wins over "quarantined"
                continue
            finally:
                bar.close()
        if as_json:
            render([{"name": cfg.name, **result.as_dict()}], "json")
        elif not quiet:
            click.echo(str(result), err=True)
        if result.summary.quarantined and status == poller.EXIT_OK:
            status = poller.EXIT_QUARANTINED
        if stop():
            break
    ctx.exit(status)


@cli.command()
@imap_options
@click.option("--interval", type=click.FloatRange(min=1), metavar="SECONDS",
              expose_value=False, callback=_store_setting,
              help="Poll every SECONDS when the server has no IDLE [default: 60].")
@click.option("--idle/--no-idle", default=None, expose_value=False, callback=_store_setting,
              help="Use IMAP IDLE where advertised [default: --idle].")
@click.pass_context
def watch(ctx: click.Context, config_path: str | None, mailboxes: tuple[str, ...],
          db_path: str | None, verbose: bool, quiet: bool, as_json: bool) -> None:
    """Follow one mailbox: IMAP IDLE (or polling), storing and filing as mail arrives.

    Reconnects with exponential backoff and jitter when the connection drops or the
    server restarts. SIGTERM or SIGINT finish the current batch and file what is
    committed, then exit 0. Same settings and exit statuses as ``poll``; one watch per
    mailbox.

    \b
    Example:
        mailbox-processor watch --config /etc/mailbox-processor.toml -m bounces
    """
    from mailbox_processor import poller
    from mailbox_processor.store import open_db

    _setup_logging(verbose, quiet)
    configs = _load_imap_configs(ctx, config_path, mailboxes)
    if len(configs) != 1:
        raise click.UsageError(
            f"watch follows one mailbox, the config has {len(configs)}: pick one with "
            "--mailbox NAME (run one watch per mailbox)"
        )
    with poller.StopFlag().installed() as stop:
        try:
            with poller.mailbox_lock(configs[0]):
                result = poller.watch(open_db(db_path), configs[0], stop=stop, locked=True)
        except MailboxProcessorError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            raise _ExitWith(str(exc), _exit_status(exc)) from None
    if as_json:
        render([{"name": configs[0].name, **result.as_dict()}], "json")
    elif not quiet:
        click.echo(str(result), err=True)


# -- the suppression database (issue 3) ------------------------------------------------
# Every command opens the database with ``open_db`` and calls one library function;
# queries live in store.py, decisions in policy.py, ingestion in pipeline.py.

#: The ``--type`` values (``suppressions.classification`` / ``bounces.classification``).
TYPES = ("hard", "soft", "complaint", "delayed", "autoreply", "delivered")

LIST_COLUMNS = ("address", "state", "type", "reason", "diagnostic", "last_seen", "expires_at",
                "source")
EVENT_COLUMNS = ("occurred_at", "recipient", "type", "reason", "policy_action", "status",
                 "smtp_code", "diagnostic")
WIDTHS = {"diagnostic": 70, "note": 30, "original_subject": 30}


def db_option(fn: F) -> F:
    """Add ``--db PATH`` (default ``$MAILBOX_PROCESSOR_DB``, then ``./bounces.db``)."""
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="SQLite database [default: $MAILBOX_PROCESSOR_DB or ./bounces.db].",
    )(fn)


def _open(db_path: str | None) -> Any:
    from mailbox_processor.store import open_db

    return open_db(db_path)


def _transaction(db: Any) -> Any:
    from mailbox_processor.store import transaction

    return transaction(db)


def _date(value: str | None, option: str) -> str | None:
    """Accept ``YYYY-MM-DD[ HH:MM:SS]`` or ``Nd`` (N days ago); return stored UTC text."""
    from mailbox_processor import store

    if value is None:
        return None
    text = value.strip()
    if text[:-1].isdigit() and text[-1:] in ("d", "h"):
        days = int(text[:-1]) / (24 if text.endswith("h") else 1)
        return store.shift(store.now_utc(), -days)
    parsed = store.to_utc(text.replace(" ", "T", 1) if len(text) > 10 else text)
    if parsed is None:
        raise click.BadParameter(f"{value!r}: use YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' or 7d",
                                 param_hint=option)
    return parsed


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@db_option
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE,
              show_default=True,
              help="Messages per database transaction.")
@click.option("--no-keep-raw", is_flag=True, help="Do not keep raw messages for reclassify.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no per-file warnings.")
@handle_errors
def scan(paths: tuple[str, ...], db_path: str | None, batch_size: int, no_keep_raw: bool,
         as_json: bool, quiet: bool) -> None:
    """Ingest .eml files, directories, mbox files and Maildirs into the database.

    Each message is parsed, its verdicts stored as events in ``bounces`` and the
    suppression policy applied. The same message scanned again changes nothing
    (sha256 of its bytes). Unreadable or unparseable messages are recorded as
    quarantined, with a warning line each; the exit status is 1 when nothing new
    could be read at all. Ends with a one-line summary.

    \b
    Example:
        mailbox-processor scan fixtures/maildir --db bounces.db
        mailbox-processor scan ~/Mail/bounces.mbox old/*.eml
    """
    from mailbox_processor.pipeline import scan_paths
    from mailbox_processor.sources.files import count_messages

    db = _open(db_path)
    show_bar = not quiet and not as_json and sys.stderr.isatty()
    if show_bar:
        with click.progressbar(length=count_messages(paths), label="scanning",
                               file=sys.stderr) as bar:
            summary, quarantined = scan_paths(db, paths, batch_size=batch_size,
                                              keep_raw=not no_keep_raw,
                                              progress=lambda o: bar.update(len(o)))
    else:
        summary, quarantined = scan_paths(db, paths, batch_size=batch_size,
                                          keep_raw=not no_keep_raw)
    nothing_read = summary.quarantined > 0 and summary.new + summary.not_bounce == 0
    if not quiet and not (nothing_read and len(quarantined) == 1):
        for source, error in quarantined:
            click.echo(f"warning: quarantined {source}: {error}", err=True)
    if as_json:
        render([summary.as_dict()], "json")
    else:
        click.echo(str(summary))
    if nothing_read and len(quarantined) == 1:
        source, error = quarantined[0]
        raise click.ClickException(f"{source}: {error}: nothing could be read (quarantined)")
    if nothing_read:
        raise click.ClickException(
            f"nothing could be read: all {summary.quarantined} new messages were quarantined"
        )


@cli.command("list")
@db_option
@click.option("--events", is_flag=True, help="List bounce events instead of suppressions.")
@click.option("--type", "type_", type=click.Choice(TYPES), help="Only this classification.")
@click.option("--reason", help="Only this reason word (userunknown, mailboxfull, ...).")
@click.option("--domain", help="Only this recipient domain (and its subdomains).")
@click.option("--since", help="From this date: YYYY-MM-DD or 7d.")
@click.option("--until", help="Before this date: YYYY-MM-DD or 7d.")
@click.option("--active/--all", "active", default=True, show_default=True,
              help="Suppressions: only active ones, or every state.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@output_options()
@handle_errors
def list_(db_path: str | None, events: bool, type_: str | None, reason: str | None,
          domain: str | None, since: str | None, until: str | None, active: bool,
          limit: int | None, fmt: str | None) -> None:
    """List suppressions (default) or bounce events, newest first.

    Every row carries hard/soft, the reason word and the server's diagnostic, so the
    "why" is in the list itself. Dates filter on last_seen (suppressions) or
    occurred_at (events).

    \b
    Example:
        mailbox-processor list
        mailbox-processor list --type hard --domain example.com --since 7d
        mailbox-processor list --events --reason mailboxfull --csv > full.csv
    """
    from mailbox_processor import store

    db = _open(db_path)
    fmt = resolve_format(fmt)
    filters: dict[str, Any] = {"type_": type_, "reason": reason, "domain": domain,
               "since": _date(since, "--since"), "until": _date(until, "--until"),
               "limit": limit}
    if events:
        render(store.list_bounces(db, **filters), fmt, EVENT_COLUMNS if fmt == "table" else None,
               widths=WIDTHS)
    else:
        rows = store.list_suppressions(db, active_only=active, **filters)
        render(rows, fmt, LIST_COLUMNS if fmt == "table" else None, widths=WIDTHS)


@cli.command()
@click.argument("address")
@db_option
@output_options(csv_ok=False)
@handle_errors
def show(address: str, db_path: str | None, fmt: str | None) -> None:
    """Show one address: state, why, the recommended action and every event.

    \b
    Example:
        mailbox-processor show bob@example.com
        mailbox-processor show bob@example.com --json | jq .events
    """
    from mailbox_processor.policy import describe_address

    db = _open(db_path)
    info = describe_address(db, address)
    if resolve_format(fmt) == "json":
        render([info], "json")
        return
    out = sys.stdout
    for key in ("address", "state", "type", "reason", "diagnostic", "source", "note",
                "expires_at", "first_seen", "last_seen"):
        if info[key] is not None:
            out.write(f"{key + ':':<12} {info[key]}\n")
    out.write(f"{'counts:':<12} hard {info['hard_count']}, soft {info['soft_count']}, "
              f"complaint {info['complaint_count']}\n")
    out.write(f"{'action:':<12} {info['action']}\n")
    if info["events"]:
        out.write("\nevents (newest first):\n")
        for e in info["events"]:
            codes = " ".join(str(e[k]) for k in ("status", "smtp_code", "remote_mta") if e[k])
            out.write(f"  {e['occurred_at']}  {e['type']} {e['reason'] or ''} "
                      f"[{e['policy_action']}]  {codes}\n")
            if e["diagnostic"]:
                out.write(f"      {' '.join(str(e['diagnostic']).split())}\n")
    if info["history"]:
        out.write("\nhistory:\n")
        render(info["history"], "table", ("at", "event", "state", "source", "actor", "note"),
               widths={"note": 60})


@cli.command()
@click.argument("addresses", nargs=-1, required=True)
@db_option
@click.option("--json", "fmt", flag_value="json", help="JSON, one object per line.")
@click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row.")
@click.pass_context
def check(ctx: click.Context, addresses: tuple[str, ...], db_path: str | None,
          fmt: str | None) -> None:
    """Print the suppressed ones among ADDRESSES ('-' reads one per line from stdin).

    Exit status: 0 when none is suppressed, 1 when any is, 2 on error, so a sending
    script can branch on it. Lookups are batched: 100,000 addresses take about a
    second.

    \b
    Example:
        mailbox-processor check bob@example.com || echo "do not send"
        cut -d, -f1 recipients.csv | mailbox-processor check - > suppressed.txt
    """
    from mailbox_processor import store

    def stream() -> Any:
        for a in addresses:
            if a == "-":
                for line in sys.stdin:
                    yield line.strip()
            else:
                yield a

    try:
        db = _open(db_path)
        hits = list(store.check_addresses(db, stream()))
    except MailboxProcessorError as exc:
        if ctx.find_root().params.get("debug"):
            raise
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(2)
    if fmt:
        render(hits, fmt)
    else:
        sys.stdout.write("".join(h["address"] + "\n" for h in hits))
    ctx.exit(1 if hits else 0)


@cli.command()
@db_option
@click.option("--since", default="30d", show_default=True,
              help="Window start: YYYY-MM-DD or Nd (days ago); 'all' for everything.")
@output_options()
@handle_errors
def stats(db_path: str | None, since: str, fmt: str | None) -> None:
    """Count events by classification, reason, domain and day; sender-side apart.

    Sender-side problems (authfailure, badreputation, requireptr, blocks of our IP or
    domain) are listed per receiving domain under ``sender_side``: fix them on our
    side (SPF/DKIM/PTR, delisting); they never count against recipients.

    \b
    Example:
        mailbox-processor stats --since 7d
        mailbox-processor stats --since all --json | jq 'select(.group=="domain")'
    """
    from mailbox_processor import store

    db = _open(db_path)
    fmt = resolve_format(fmt)
    rows = store.stats(db, since=None if since == "all" else _date(since, "--since"))
    if fmt != "table":
        render(rows, fmt, ("group", "key", "events", "recipients"))
        return
    out = sys.stdout
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    if "classification" not in groups and "sender_side" not in groups:
        out.write(f"no events since {since} (try --since all)\n\n")
    titles = {"sender_side": "sender_side (problems of the sending side, per receiving domain)"}
    for name, group_rows in groups.items():
        out.write(f"{titles.get(name, name)}:\n")
        render(group_rows, "table", ("key", "events", "recipients"), widths={"key": 60})
        out.write("\n")


@cli.command()
@db_option
@output_options()
@handle_errors
def export(db_path: str | None, fmt: str | None) -> None:
    """Write every active suppression as CSV (default) or JSON lines, streaming.

    \b
    Example:
        mailbox-processor export > suppressions.csv
        mailbox-processor export --json | jq -r .address
    """
    from mailbox_processor import store

    db = _open(db_path)
    render(store.export_suppressions(db), fmt or "csv")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_option
@handle_errors
def import_(file: str, db_path: str | None) -> None:
    """Import a CSV suppression list (ours, Amazon SES, Mailgun, Postmark, SendGrid).

    Needs an address column (``address``, ``email`` or ``EmailAddress``); optional
    ``type``/``reason`` columns give hard, soft or complaint. All or nothing: a bad
    file writes no row.

    \b
    Example:
        mailbox-processor import sendgrid-bounces.csv
        mailbox-processor export --db old.db > s.csv && mailbox-processor import s.csv
    """
    from mailbox_processor.pipeline import import_suppressions

    db = _open(db_path)
    click.echo(str(import_suppressions(db, file)))


def manual_options(fn: F) -> F:
    """ADDRESS, --db, --note and --by: what a change made by hand takes."""
    for decorator in reversed((
        click.argument("address"),
        db_option,
        click.option("--note", help="Why (kept in the history)."),
        click.option("--by", "actor", help="Who [default: the login name]."),
        handle_errors,
    )):
        fn = decorator(fn)
    return fn


@cli.command()
@manual_options
def suppress(address: str, db_path: str | None, note: str | None, actor: str | None) -> None:
    """Suppress ADDRESS by hand (recorded with who and why in the history).

    \b
    Example:
        mailbox-processor suppress bob@example.com --note "asked by phone"
    """
    from mailbox_processor.policy import suppress_address

    db = _open(db_path)
    with _transaction(db):
        done = suppress_address(db, address, note=note, actor=actor)
    click.echo(f"suppressed {address}" if done else f"{address} was already suppressed")


@cli.command()
@manual_options
def unsuppress(address: str, db_path: str | None, note: str | None, actor: str | None) -> None:
    """Remove the suppression of ADDRESS by hand (a new hard bounce suppresses again).

    \b
    Example:
        mailbox-processor unsuppress bob@example.com --note "mailbox fixed"
    """
    from mailbox_processor.policy import unsuppress_address

    db = _open(db_path)
    with _transaction(db):
        done = unsuppress_address(db, address, note=note, actor=actor)
    if not done:
        raise click.ClickException(f"{address} is not suppressed: nothing to do")
    click.echo(f"unsuppressed {address}")


@cli.command()
@click.option("--before", required=True, help="Drop events before this date (YYYY-MM-DD or Nd).")
@db_option
@handle_errors
def purge(before: str, db_path: str | None) -> None:
    """Drop old events (never those of active suppressions) and vacuum.

    \b
    Example:
        mailbox-processor purge --before 2024-01-01
        mailbox-processor purge --before 365d
    """
    from mailbox_processor import store

    cutoff = _date(before, "--before")
    assert cutoff is not None
    db = _open(db_path)
    with _transaction(db):
        counts = store.purge_before(db, cutoff)
    store.vacuum(db)
    click.echo(f"purged before {cutoff}: {counts['bounces']} events, {counts['messages']} "
               f"messages, {counts['suppressions']} inactive suppressions")


@cli.command()
@db_option
@handle_errors
def reclassify(db_path: str | None) -> None:
    """Re-run the parser and the policy over stored mail and history.

    Raw messages are kept compressed (``raw_messages``, 90 days by default, see
    ``policy``), so a rule improvement or a policy change reaches old mail without a
    re-fetch. Manual and imported suppressions are kept.

    \b
    Example:
        mailbox-processor policy set mailboxfull suppress && mailbox-processor reclassify
    """
    from mailbox_processor.pipeline import reclassify as run

    db = _open(db_path)
    click.echo(str(run(db)))


@cli.group()
def policy() -> None:
    """Show or change the suppression policy (a table per reason word)."""


@policy.command("show")
@db_option
@output_options()
@handle_errors
def policy_show(db_path: str | None, fmt: str | None) -> None:
    """Show the action per reason word and the numeric settings.

    \b
    Example:
        mailbox-processor policy show
    """
    from mailbox_processor import store

    render(store.policy_rows(_open(db_path)), resolve_format(fmt),
           ("name", "kind", "value", "note"))


@policy.command("set")
@click.argument("name")
@click.argument("value")
@db_option
@handle_errors
def policy_set(name: str, value: str, db_path: str | None) -> None:
    """Set a reason's action (suppress, count, never, sender_side) or a setting.

    Run ``reclassify`` afterwards to apply the change to history.

    \b
    Example:
        mailbox-processor policy set mailboxfull suppress
        mailbox-processor policy set soft_threshold 5
    """
    from mailbox_processor import policy as pol

    db = _open(db_path)
    with _transaction(db):
        if name in pol.DEFAULT_SETTINGS:
            if not value.isdigit():
                raise click.BadParameter(f"{value!r}: a whole number", param_hint="VALUE")
            pol.set_setting(db, name, int(value))
        else:
            pol.set_action(db, name, value)
    click.echo(f"{name} = {value}")


@cli.group("db")
def db_group() -> None:
    """Inspect the database itself."""


@db_group.command("schema")
@db_option
@handle_errors
def db_schema(db_path: str | None) -> None:
    """Print the schema (tables, indexes, views) as SQL.

    \b
    Example:
        mailbox-processor db schema | less
    """
    from mailbox_processor import store

    click.echo(store.schema_sql(_open(db_path)), nl=False)
