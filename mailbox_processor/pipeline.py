"""Wire sources, the parsing engine and the store together.

``parse_paths`` is the read-only path behind ``mailbox-processor parse``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from mailbox_processor.engine import parse_message
from mailbox_processor.models import Classification, Report
from mailbox_processor.sources import RawMessage
from mailbox_processor.sources.files import iter_paths

#: The fields of one prediction line of the bounce bench (shared/bench/README.md).
BENCH_FIELDS = ("message", "recipient", "classification", "reason", "status", "smtp_code")


def report_rows(raw: RawMessage, report: Report, *, all_fields: bool = False) -> list[dict[str, Any]]:
    """Flatten one report to output rows; a non-bounce gives one row without recipient."""
    message = raw.source if raw.index is None else raw.source
    rows: list[dict[str, Any]] = []
    for row in report.rows():
        row["message"] = message
        rows.append(row)
    if not rows:
        rows.append(
            {
                "message": message,
                "recipient": None,
                "classification": Classification.NOT_BOUNCE.value,
                "reason": None,
                "status": None,
                "smtp_code": None,
                "diagnostic": report.error,
                "parser": report.parser,
            }
        )
    if raw.index is not None:
        for row in rows:
            row["mbox_index"] = raw.index
    if all_fields:
        for row in rows:
            row.setdefault("error", report.error)
        return rows
    return [{k: row.get(k) for k in (*BENCH_FIELDS, "diagnostic")} for row in rows]


def parse_paths(
    paths: Iterable[str | os.PathLike[str]], *, all_fields: bool = False
) -> Iterator[dict[str, Any]]:
    """Parse every message under ``paths`` and yield one row per verdict.

    An mbox holding the same bounce twice (a copy to the postmaster, say) yields each
    (recipient, classification, reason) once per file.
    """
    seen: set[tuple[Any, ...]] = set()
    last_source = None
    for raw in iter_paths(paths):
        if raw.source != last_source:
            seen.clear()
            last_source = raw.source
        report = parse_message(raw.raw) if raw.error is None else _unreadable(raw)
        for row in report_rows(raw, report, all_fields=all_fields):
            key = (row.get("recipient"), row.get("classification"), row.get("reason"))
            if raw.index is not None and key in seen:
                continue
            seen.add(key)
            yield row


def _unreadable(raw: RawMessage) -> Report:
    return Report(verdicts=(), parser=None, error=raw.error)
