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
