"""Command-line interface: parse arguments, call the library, render the result.

Thin by design (STYLE.md, conventions 1 and 7): no SQL and no regexes here. Every
command that outputs data goes through :func:`render`.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from mailbox_processor import __version__
from mailbox_processor.errors import MailboxProcessorError

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
    out = click.get_text_stream("stdout")
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
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in writer.fieldnames})
        return
    table_rows = list(rows)
    if not table_rows:
        return
    cols = list(columns or table_rows[0].keys())
    widths = widths or {}
    cells = [[_cell(r.get(c), widths.get(c)) for c in cols] for r in table_rows]
    col_w = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    buf = io.StringIO()
    buf.write("  ".join(c.ljust(col_w[i]) for i, c in enumerate(cols)).rstrip() + "\n")
    buf.write("  ".join("-" * col_w[i] for i in range(len(cols))) + "\n")
    for row in cells:
        buf.write("  ".join(row[i].ljust(col_w[i]) for i in range(len(cols))).rstrip() + "\n")
    out.write(buf.getvalue())


# -- the command group ---------------------------------------------------------------


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="mailbox-processor")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Turn a bounce mailbox into a trustworthy suppression list.

    \b
    Example:
        mailbox-processor parse fixtures/maildir
        mailbox-processor scan fixtures/maildir && mailbox-processor list
    """


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
    rows = parse_paths(paths, all_fields=all_fields or fmt == "table")
    render(rows, fmt, None if all_fields else PARSE_COLUMNS, widths={"diagnostic": 60,
                                                                    "message": 28})


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
          "help": "UIDs per FETCH and per database transaction [default: 200]."}),
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


def _setup_logging(verbose: bool, quiet: bool) -> None:
    import logging

    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet exclude each other")
    logger = logging.getLogger("mailbox_processor")
    for h in list(logger.handlers):
        if getattr(h, "_mailbox_processor_cli", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
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
        self.exit_code = exit_code


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

    def start(self, total: int) -> None:
        if self.enabled and total > self.batch_size:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()

    def step(self, progress: Any) -> None:
        if self.bar is not None:
            self.bar.update(progress.done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


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
    db = open_db(db_path)
    status = poller.EXIT_OK
    for cfg in configs:
        bar = _BacklogBar(cfg.name, cfg.batch_size, enabled=not quiet and sys.stderr.isatty())
        with poller.StopFlag().installed() as stop:
            try:
                result = poller.poll(db, cfg, stop=stop, on_start=bar.start, on_batch=bar.step)
            except MailboxProcessorError as exc:
                if ctx.find_root().params.get("debug"):
                    raise
                code = _exit_status(exc)
                click.echo(f"Error: {exc}", err=True)
                status = status or code
                continue
            finally:
                bar.close()
        if as_json:
            render([{"name": cfg.name, **result.as_dict()}], "json")
        elif not quiet:
            click.echo(str(result), err=True)
        if result.counts["quarantined"] and status == poller.EXIT_OK:
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
    server restarts. SIGTERM or SIGINT finish the current batch, then exit 0. Same
    settings and exit statuses as ``poll``; one watch per mailbox.

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
    db = open_db(db_path)
    with poller.StopFlag().installed() as stop:
        try:
            result = poller.watch(db, configs[0], stop=stop)
        except MailboxProcessorError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            raise _ExitWith(str(exc), _exit_status(exc)) from None
    if as_json:
        render([{"name": configs[0].name, **result.as_dict()}], "json")
    elif not quiet:
        click.echo(str(result), err=True)
