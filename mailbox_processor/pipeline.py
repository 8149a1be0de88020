"""Wire sources, the parsing engine and the store together.

``parse_paths`` is the read-only path behind ``mailbox-processor parse``;
``ingest_batch`` / ``scan_paths`` / ``reclassify`` fill and rework the database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlite_utils

from mailbox_processor import store
from mailbox_processor.models import Classification, Report
from mailbox_processor.policy import Policy, apply_to_addresses, apply_to_messages, load_policy
from mailbox_processor.sources import DEFAULT_BATCH_SIZE, RawMessage
from mailbox_processor.sources.files import iter_paths

log = logging.getLogger(__name__)


def parse_message(raw: bytes) -> Report:
    """:func:`mailbox_processor.engine.parse_message`, imported on the first call.

    Importing the engine compiles the rule table (about 0.1 s). ``poll`` starts that
    import in a thread while the server answers its SELECT (see
    :func:`mailbox_processor.poller.import_engine`), instead of before connecting.
    The function is kept after the first call: the later ones (one a message, in the
    parser processes) don't go through an import statement each (about 0.5 us).
    """
    global _engine_parse
    if _engine_parse is None:
        from mailbox_processor.engine import parse_message as parse

        _engine_parse = parse
    return _engine_parse(raw)


_engine_parse: Callable[[bytes], Report] | None = None

#: The fields of one prediction line of the bounce bench (shared/bench/README.md).
BENCH_FIELDS = ("message", "recipient", "classification", "reason", "status", "smtp_code")


def report_rows(
    raw: RawMessage, report: Report, *, all_fields: bool = False
) -> list[dict[str, Any]]:
    """Flatten one report to output rows; a non-bounce gives one row without recipient."""
    message = raw.source
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
                "diagnostic": f"unparseable: {report.error}" if report.error else None,
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


# -- ingesting into the database (issue 3) ----------------------------------------------


@dataclass(frozen=True)
class IngestOutcome:
    """What :func:`ingest_batch` did with one input message.

    ``status`` is ``"new"`` (recorded with its verdicts), ``"duplicate"`` (the same
    bytes were processed before: nothing changed), ``"quarantined"`` (unreadable or
    unparseable: recorded with ``error``, never dropped) or ``"not_bounce"``
    (recorded, no verdicts). ``newly_suppressed`` lists the addresses this message
    made actively suppressed.
    """

    sha256: str
    status: str
    #: The :class:`Report`, or the :class:`ParseResult` that unpickles it on first use
    #: (read it as :attr:`report`).
    _report: Report | ParseResult | None
    newly_suppressed: tuple[str, ...] = ()
    error: str | None = None
    #: The classification values of the verdicts (``None``: read them from the report).
    classes: tuple[str, ...] | None = None
    #: ``report.is_bounce`` (``None``: ask the report).
    bounce: bool | None = None

    @property
    def report(self) -> Report | None:
        """The parser's report (``None`` for duplicates and unreadable messages)."""
        r = self._report
        return r.report if isinstance(r, ParseResult) else r

    @property
    def is_bounce(self) -> bool:
        """True when the report has a hard or soft verdict."""
        if self.bounce is not None:
            return self.bounce
        report = self.report
        return report is not None and report.is_bounce


@dataclass
class IngestSummary:
    """Running totals over :class:`IngestOutcome` lists (the ``scan`` summary line)."""

    messages: int = 0
    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    not_bounce: int = 0
    by_classification: dict[str, int] = field(default_factory=dict)
    newly_suppressed: int = 0

    def add(self, outcomes: Iterable[IngestOutcome]) -> IngestSummary:
        """Add ``outcomes`` to the totals; return ``self``."""
        for o in outcomes:
            self.messages += 1
            if o.status == "duplicate":
                self.duplicates += 1
                continue
            if o.status == "quarantined":
                self.quarantined += 1
            elif o.status == "not_bounce":
                self.not_bounce += 1
            else:
                self.new += 1
            self.newly_suppressed += len(o.newly_suppressed)
            classes = o.classes
            if classes is None:
                report = o.report
                classes = () if report is None else tuple(
                    v.classification.value for v in report.verdicts)
            for key in classes:
                self.by_classification[key] = self.by_classification.get(key, 0) + 1
        return self

    def as_dict(self) -> dict[str, Any]:
        """Return the totals as a plain dict (for ``--json``)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        verdicts = sum(self.by_classification.values())
        parts = ", ".join(f"{k} {n}" for k, n in sorted(self.by_classification.items()))
        return (
            f"{self.messages} messages ({self.new} new, {self.duplicates} duplicates, "
            f"{self.not_bounce} not bounces, {self.quarantined} quarantined); "
            f"{verdicts} verdicts" + (f" ({parts})" if parts else "")
            + f"; {self.newly_suppressed} newly suppressed"
        )


def message_sha256(raw: RawMessage) -> str:
    """Return the dedupe key: sha256 of the raw bytes (of the source for unreadable files)."""
    if raw.error is not None and not raw.raw:
        return hashlib.sha256(b"unreadable:" + raw.source.encode("utf-8", "replace")).hexdigest()
    return hashlib.sha256(raw.raw).hexdigest()


def _safe_parse(raw: bytes) -> tuple[Report | None, str | None]:
    try:
        report = parse_message(raw)
    except Exception as exc:  # noqa: BLE001 - any parser failure quarantines, never drops
        return None, f"parser failed: {type(exc).__name__}: {exc}".rstrip(": ")
    return report, report.error


#: How much lower the parser processes' CPU priority is than the main process's.
WORKER_NICENESS = 10


def _init_worker(parent: int) -> None:
    """Set up a parser process: it leaves SIGINT/SIGTERM to the main process (which
    finishes its batch) and dies with it, even when the main process is SIGKILLed
    (Linux ``PR_SET_PDEATHSIG``, and a watchdog thread everywhere).

    It also runs :data:`WORKER_NICENESS` steps nicer. The main process is the one
    serial step (fetch, commit, file away) and the parsers work batches ahead of it,
    so they need only the CPU it leaves. At equal priority, two parsers on two cores
    left the main process two thirds of a core, and every batch waited for it.
    """
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import contextlib

    with contextlib.suppress(OSError):  # not permitted: parse at the main priority
        os.nice(WORKER_NICENESS)
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=orphaned, daemon=True).start()


class Prepared(NamedTuple):
    """What the database needs of one parsed message, without the :class:`Report`.

    Built by :func:`prepare` (in the parser processes, beside parsing): the
    ``messages`` columns, the ``bounces`` rows of :func:`bounce_rows` as tuples in
    :data:`BOUNCE_FIELDS` order (``policy_action`` and ``message_sha256`` are added
    by :func:`ingest_batch`, ``occurred_at`` is ``None`` where it falls back to the
    processing time), the verdicts' classifications and ``report.is_bounce``.
    """

    sha256: str | None
    parser: str | None
    message_id: str | None
    from_addr: str | None
    subject: str | None
    date: str | None
    bounces: tuple[tuple[Any, ...], ...]
    classes: tuple[str, ...]
    is_bounce: bool


#: The ``bounces`` columns a :class:`Prepared` row holds, in order.
BOUNCE_FIELDS = ("recipient", "domain", "classification", "reason", "rule_id", "action",
                 "status", "smtp_code", "diagnostic", "remote_mta", "reporting_mta",
                 "original_message_id", "original_subject", "occurred_at")


def prepare(report: Report | None, error: str | None, sha256: str | None = None) -> Prepared:
    """Return the :class:`Prepared` form of ``(report, error)`` (see :func:`bounce_rows`)."""
    if report is None:
        return Prepared(sha256, None, None, None, None, None, (), (), False)
    rows: tuple[tuple[Any, ...], ...] = ()
    if error is None and report.verdicts:
        fallback = store.to_utc(report.date)
        orig = report.original
        rows = tuple(
            (recipient, store.address_domain(recipient), v.classification.value, v.reason,
             v.rule_id, f.action, f.status, f.smtp_code, f.diagnostic, f.remote_mta,
             f.reporting_mta, orig.message_id, orig.subject, store.to_utc(f.date) or fallback)
            for v in report.verdicts
            for f in (v.finding,)
            for recipient in (store.normalise_address(f.recipient),)
        )
    return Prepared(sha256, report.parser, report.message_id, report.from_addr,
                    report.subject, report.date, rows,
                    tuple(v.classification.value for v in report.verdicts), report.is_bounce)


class ParseResult:
    """What a parser process hands back for one message: :func:`_safe_parse`'s
    ``(report, error)``, the raw bytes already packed for ``raw_messages`` and the
    :class:`Prepared` rows.

    From a parser process only ``error``, ``packed`` and ``prepared`` travel: storing
    and filing a message need nothing else, and pickling the report's dataclass tree
    there and rebuilding it here cost about 30 us of CPU a message. :attr:`report`
    parses the bytes again when someone reads it: parsing is pure, so it is the report
    the parser process had.
    """

    __slots__ = ("_report", "_raw", "error", "packed", "prepared")

    def __init__(self, report: Report | None, error: str | None, packed: bytes | None = None,
                 *, raw: bytes | None = None, prepared: Prepared | None = None) -> None:
        self._report = report
        self._raw = raw
        self.error = error
        self.packed = packed
        self.prepared = prepared

    @property
    def report(self) -> Report | None:
        """The parser's report."""
        if self._raw is not None:
            self._report = _safe_parse(self._raw)[0]
            self._raw = None
        return self._report

    def __repr__(self) -> str:
        return f"ParseResult(report={self.report!r}, error={self.error!r})"

    @classmethod
    def _from_worker(cls, item: tuple[Any, ...], raw: bytes) -> ParseResult:
        error, packed, prepared = item
        return cls(None, error, packed, raw=raw, prepared=Prepared._make(prepared))


def _parse_many(blobs: list[bytes]) -> list[tuple[Any, ...]]:
    # Compressing here too takes that work (about a sixth of an ingest) off the main
    # process, which also talks to the mailbox and the database; so do the sha256 and
    # the database rows. Plain tuples pickle and unpickle far faster than the
    # report's dataclass tree.
    out = []
    for b in blobs:
        report, error = _safe_parse(b)
        out.append((error, store.pack_raw(b) if b else None,
                    tuple(prepare(report, error, hashlib.sha256(b).hexdigest()))))
    return out


def default_jobs() -> int:
    """Parser processes to use: ``$MAILBOX_PROCESSOR_JOBS``, else the cores (max 4)."""
    value = os.environ.get("MAILBOX_PROCESSOR_JOBS", "")
    if value.strip().isdigit():
        return max(1, int(value))
    return max(1, min(4, os.cpu_count() or 1))


class ParsePool:
    """Parse each batch on several cores (a process pool), results in input order.

    Parsing is pure and CPU-bound, so a backlog drains about ``jobs`` times faster
    while everything that touches the database or the mailbox stays in this process,
    in the same order as before. With ``jobs <= 1``, for tiny batches, or if worker
    processes cannot be started or die, it parses here instead: never a lost message.
    """

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = default_jobs() if jobs is None else max(1, jobs)
        self._pool: Any = None
        if self.jobs > 1:
            try:
                from concurrent.futures import ProcessPoolExecutor

                self._pool = ProcessPoolExecutor(max_workers=self.jobs,
                                                 initializer=_init_worker,
                                                 initargs=(os.getpid(),))
            except (OSError, ImportError, NotImplementedError) as exc:
                log.warning("parsing in one process (%s)", exc)

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def parse(self, raws: Sequence[RawMessage]) -> list[ParseResult]:
        """``(report, error)`` per message, as :func:`ingest_batch` would compute them."""
        return self.submit(raws)()

    def submit(
        self, raws: Sequence[RawMessage]
    ) -> Callable[[], list[ParseResult]]:
        """Start parsing ``raws`` in the workers; call the result to wait for it.

        The caller can fetch or commit something else meanwhile.
        """
        blobs = [r.raw if r.error is None else b"" for r in raws]
        if self._pool is not None and len(blobs) >= 2 * self.jobs:
            try:
                # Two tasks per parser process and batch: each task costs this process
                # CPU in the pool's threads (pickling, result handling, wake-ups), and
                # with four per process that was ~2 us per message more; the next
                # batches are queued behind, so the parsers stay busy either way.
                chunk = max(1, len(blobs) // (self.jobs * 2))
                futures = [self._pool.submit(_parse_many, blobs[i:i + chunk])
                           for i in range(0, len(blobs), chunk)]
            except Exception as exc:  # a dead pool: parse here, keep going without
                log.warning("parser processes failed (%s): parsing in one process", exc)
                self.close()
            else:
                def wait() -> list[ParseResult]:
                    try:
                        done = [item for f in futures for item in f.result()]
                        return [ParseResult._from_worker(item, b)
                                for item, b in zip(done, blobs, strict=True)]
                    except Exception as exc:  # a worker died: parse this batch here
                        log.warning("parser processes failed (%s): parsing in one process",
                                    exc)
                        self.close()
                        return [ParseResult(*_safe_parse(b)) for b in blobs]
                return wait
        done = [ParseResult(*_safe_parse(b)) for b in blobs]
        return lambda: done


def _mailbox_of(raw: RawMessage) -> str | None:
    if raw.folder is None:
        return None
    if raw.source.startswith("imap://"):
        return "imap://" + raw.source[len("imap://"):].split("/", 1)[0]
    return raw.source


def bounce_rows(
    sha256: str, report: Report, policy: Policy, processed_at: str
) -> list[dict[str, Any]]:
    """Return the ``bounces`` rows of one report (one per verdict): the rows
    :func:`prepare` hands over, as :func:`ingest_batch` stores them."""
    return [_bounce_row(sha256, row, policy, processed_at)
            for row in prepare(report, None).bounces]


def ingest_batch(
    db: sqlite_utils.Database,
    raws: Sequence[RawMessage],
    *,
    checkpoint: tuple[str, str, int, int] | None = None,
    keep_raw: bool = True,
    policy: Policy | None = None,
    now: str | None = None,
    parsed: Sequence[ParseResult | tuple[Report | None, str | None]] | None = None,
) -> list[IngestOutcome]:
    """Parse and store a batch of messages in ONE transaction; return one outcome each.

    Messages, their verdicts (``bounces``), the suppressions they cause, the raw
    bytes (zlib, when ``keep_raw``) and the optional IMAP ``checkpoint``
    ``(mailbox, folder, uidvalidity, last_uid)`` are committed together or not at
    all. The same bytes seen twice (sha256) change nothing. A message that cannot be
    read or parsed is recorded as quarantined with its error, never dropped. Raw
    messages older than the ``raw_retention_days`` setting are pruned. ``parsed``
    (from :meth:`ParsePool.parse`, aligned with ``raws``) skips parsing here.
    """
    policy = policy or load_policy(db)
    if parsed is not None and len(parsed) != len(raws):
        raise ValueError("parsed must have one entry per raw message")
    now = now or store.now_utc()
    # (report, error, prepared rows, packed raw) per input: from the parser processes
    # when they did the work, else from parsing here.
    entries: list[tuple[Report | ParseResult | None, str | None, Prepared | None,
                        bytes | None]] = []
    for i, raw in enumerate(raws):
        if raw.error is not None:
            entries.append((None, raw.error, None, None))
        elif parsed is None:
            entries.append((*_safe_parse(raw.raw), None, None))
        else:
            entry = parsed[i]
            if isinstance(entry, ParseResult):
                entries.append((entry if entry.prepared is not None else entry.report,
                                entry.error, entry.prepared, entry.packed))
            else:
                entries.append((entry[0], entry[1], None, None))
    shas = [prep.sha256 if prep is not None and prep.sha256 is not None
            else message_sha256(raw) for raw, (_, _, prep, _) in zip(raws, entries, strict=True)]
    # (sha256, status, report, error, classes, is_bounce) per input, then the rows of
    # the new ones: every table is written once per batch, with one prepared statement
    # (executemany).
    results: list[tuple[str, str, Any, str | None, tuple[str, ...] | None, bool | None]] = []
    # Rows as tuples in the store's column order (store.MESSAGE_COLUMNS,
    # store.BOUNCE_COLUMNS): no dict per row to build and take apart again.
    messages: list[tuple[Any, ...]] = []
    raw_items: list[tuple[str, bytes, int]] = []
    bounces: list[tuple[Any, ...]] = []
    touched: list[tuple[str, tuple[str, ...]]] = []
    with store.transaction(db):
        store.expire_due(db, now)
        seen = store.existing_messages(db, shas)
        for raw, sha, (report, error, prep, packed) in zip(raws, shas, entries, strict=True):
            if sha in seen:
                results.append((sha, "duplicate", None, None, None, None))
                continue
            seen.add(sha)
            if prep is None:
                assert not isinstance(report, ParseResult)
                prep = prepare(report, error)
            has_report = report is not None
            if error is not None:
                status = "quarantined"
            elif not has_report or not prep.classes:
                status = "not_bounce"
            else:
                status = "new"
            messages.append((
                sha, raw.source, _mailbox_of(raw), raw.folder, raw.uidvalidity, raw.uid,
                raw.index, prep.message_id, prep.from_addr, prep.subject, prep.date,
                len(raw.raw), now, "parsed" if status == "new" else status, prep.parser,
                error,
            ))
            if keep_raw and raw.raw:
                raw_items.append((sha, packed or store.pack_raw(raw.raw), len(raw.raw)))
            if has_report and error is None and prep.bounces:
                bounces.extend(_bounce_values(sha, row, policy, now) for row in prep.bounces)
                addresses = tuple(dict.fromkeys(row[0] for row in prep.bounces if row[0]))
                if addresses:
                    touched.append((sha, addresses))
            results.append((sha, status, report, error, prep.classes if has_report else (),
                            prep.is_bounce))
        store.insert_message_rows(db, messages)
        store.store_packed_raws(db, raw_items)
        store.insert_bounce_rows(db, bounces)
        newly = dict(zip((sha for sha, _ in touched),
                         apply_to_messages(db, touched, policy, now=now), strict=True))
        if checkpoint is not None:
            store.set_checkpoint(db, *checkpoint)
        store.prune_raw(db, policy.raw_retention_days, now)
    return [IngestOutcome(sha, status, report, newly.get(sha, ()) if status != "duplicate"
                          else (), error, classes, bounce)
            for sha, status, report, error, classes, bounce in results]


def _bounce_values(sha256: str, row: tuple[Any, ...], policy: Policy,
                   processed_at: str) -> tuple[Any, ...]:
    """One ``bounces`` row from a :class:`Prepared` tuple (:data:`BOUNCE_FIELDS`
    order), in :data:`store.BOUNCE_COLUMNS` order: the message's sha256 first, the
    policy's action after ``reason``, the processing time for a missing ``occurred_at``."""
    return (sha256, *row[:4], policy.action_for(row[2], row[3]).value, *row[4:13],
            row[13] or processed_at)


def _bounce_row(sha256: str, row: tuple[Any, ...], policy: Policy,
                processed_at: str) -> dict[str, Any]:
    """One ``bounces`` row of :func:`bounce_rows` from a :class:`Prepared` tuple."""
    return dict(zip(store.BOUNCE_COLUMNS, _bounce_values(sha256, row, policy, processed_at),
                    strict=True))


def _batches(items: Iterable[RawMessage], size: int) -> Iterator[list[RawMessage]]:
    batch: list[RawMessage] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def scan_paths(
    db: sqlite_utils.Database,
    paths: Iterable[str | os.PathLike[str]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep_raw: bool = True,
    progress: Callable[[list[IngestOutcome]], None] | None = None,
) -> tuple[IngestSummary, list[tuple[str, str]]]:
    """Ingest every message under ``paths``; return the summary and the quarantined ones.

    Each batch of ``batch_size`` messages is one transaction. ``progress`` is called
    after each batch with its outcomes. The quarantined list holds ``(source, error)``.
    Raw messages older than the retention setting are pruned at the end.
    """
    policy = load_policy(db)
    summary = IngestSummary()
    quarantined: list[tuple[str, str]] = []
    with ParsePool() as pool:
        for batch in _batches(iter_paths(paths), batch_size):
            outcomes = ingest_batch(db, batch, keep_raw=keep_raw, policy=policy,
                                    parsed=pool.parse(batch))
            _account(batch, outcomes, summary, quarantined, progress)
    store.ensure_db_shape(db)
    return summary, quarantined


def _account(
    batch: Sequence[RawMessage],
    outcomes: list[IngestOutcome],
    summary: IngestSummary,
    quarantined: list[tuple[str, str]],
    progress: Callable[[list[IngestOutcome]], None] | None,
) -> None:
    summary.add(outcomes)
    for raw, o in zip(batch, outcomes, strict=True):
        if o.status == "quarantined":
            name = raw.source if raw.index is None else f"{raw.source}#{raw.index}"
            quarantined.append((name, o.error or "unparseable"))
    if progress is not None:
        progress(outcomes)


@dataclass
class ReclassifySummary:
    """What ``reclassify`` changed."""

    messages: int = 0
    changed_messages: int = 0
    events_before: int = 0
    events_after: int = 0
    suppressions_before: int = 0
    suppressions_after: int = 0

    def __str__(self) -> str:
        return (
            f"{self.messages} stored messages re-parsed ({self.changed_messages} changed); "
            f"events {self.events_before} -> {self.events_after}; active suppressions "
            f"{self.suppressions_before} -> {self.suppressions_after}"
        )


def reclassify(db: sqlite_utils.Database, *, now: str | None = None) -> ReclassifySummary:
    """Re-run the parser and the current policy over history, in one transaction.

    Every stored raw message is parsed again and its events replaced; every event's
    ``policy_action`` is recomputed from the current policy table; then every
    address's suppression is recomputed (manual and imported ones are kept).
    """
    policy = load_policy(db)
    now = now or store.now_utc()
    summary = ReclassifySummary()
    with store.transaction(db):
        summary.events_before = store.table_counts(db)["bounces"]
        summary.suppressions_before = sum(1 for _ in store.export_suppressions(db))
        for sha in store.raw_message_ids(db):
            raw, msg = store.get_raw_message(db, sha)
            summary.messages += 1
            report, error = _safe_parse(raw)
            old = sorted(
                (r["recipient"] or "", r["classification"], r["reason"] or "")
                for r in store.list_bounces_of(db, sha)
            )
            store.delete_bounces_of(db, sha)
            rows = bounce_rows(sha, report, policy, msg["processed_at"]) if report and not error \
                else []
            store.insert_bounces(db, rows)
            new = sorted(
                (r["recipient"] or "", r["classification"], r["reason"] or "") for r in rows
            )
            outcome = "quarantined" if error else ("parsed" if rows else "not_bounce")
            if new != old or outcome != msg["outcome"]:
                summary.changed_messages += 1
            store.update_message(
                db, sha,
                {"outcome": outcome, "error": error,
                 "parser": report.parser if report else None,
                 "message_id": report.message_id if report else msg["message_id"],
                 "from_addr": report.from_addr if report else msg["from_addr"],
                 "subject": report.subject if report else msg["subject"],
                 "date": report.date if report else msg["date"]},
            )
        for row in list(store.iter_bounce_actions(db)):
            action = policy.action_for(row["classification"], row["reason"]).value
            if action != row["policy_action"]:
                store.set_bounce_action(db, row["id"], action)
        apply_to_addresses(db, store.all_event_addresses(db), policy, now=now,
                           why="reclassify")
        summary.events_after = store.table_counts(db)["bounces"]
        summary.suppressions_after = sum(1 for _ in store.export_suppressions(db))
    return summary


# -- importing suppression lists ----------------------------------------------------------

#: Header names (lowercased, without spaces, ``_`` or ``-``) recognised per field.
#: Our own export, plus the suppression exports of Amazon SES (``EmailAddress``,
#: ``Reason``, ``LastUpdateTime``), Mailgun (``address``, ``code``, ``error``,
#: ``created_at``), Postmark (``EmailAddress`` / ``Email``, ``SuppressionReason``,
#: ``Origin``, ``CreatedAt``) and SendGrid (``email``, ``reason``, ``status``,
#: ``created``).
IMPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "address": ("address", "emailaddress", "email", "recipient", "emailaddr"),
    "type": ("type", "classification", "suppressionreason", "reason"),
    "reason": ("reason", "error", "status", "code", "suppressionreason"),
    "note": ("note", "origin", "comment"),
}


@dataclass
class ImportSummary:
    """What ``import`` did."""

    rows: int = 0
    imported: int = 0
    already: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"{self.rows} rows: {self.imported} suppressed, {self.already} already "
            f"suppressed, {self.skipped} skipped (no valid address)"
        )


def _header_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _import_type(text: str) -> str:
    low = text.lower()
    if "complaint" in low or "spam" in low or "abuse" in low:
        return "complaint"
    if "soft" in low or "transient" in low or low.startswith("4"):
        return "soft"
    return "hard"


def import_suppressions(
    db: sqlite_utils.Database, path: str | os.PathLike[str], *, actor: str | None = None
) -> ImportSummary:
    """Import a CSV suppression list, streaming, in one transaction.

    The file needs an address column (``address``, ``email``, ``EmailAddress``...);
    ``type``/``reason`` columns are optional (see :data:`IMPORT_COLUMNS`). Imported
    rows become active suppressions with source ``import``. Raises
    :class:`~mailbox_processor.errors.SourceError` (nothing written) for a file that
    cannot be read, is not UTF-8 CSV or has no address column.
    """
    import csv

    from mailbox_processor.errors import SourceError
    from mailbox_processor.models import REASONS
    from mailbox_processor.policy import suppress_address

    name = os.fspath(path)
    summary = ImportSummary()
    try:
        fh = open(name, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise SourceError(f"{name}: cannot read ({exc.strerror or exc})") from None
    try:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise SourceError(f"{name}: empty file: expected a CSV header with an "
                                  "address column")
            keys = [_header_key(h) for h in header]
            pos: dict[str, int] = {}
            for field_name, aliases in IMPORT_COLUMNS.items():
                for alias in aliases:
                    if alias in keys:
                        pos[field_name] = keys.index(alias)
                        break
            if "address" not in pos:
                shown = ", ".join(h for h in header[:8] if h) or "(none)"
                raise SourceError(
                    f"{name}: no address column (found: {shown}); name one column "
                    "'address' or 'email'"
                )
            with store.transaction(db):
                now = store.now_utc()
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue
                    summary.rows += 1

                    def cell(key: str, row: list[str] = row) -> str:
                        i = pos.get(key)
                        return row[i].strip() if i is not None and i < len(row) else ""

                    address = store.normalise_address(cell("address"))
                    if address is None:
                        summary.skipped += 1
                        continue
                    reason_text = cell("reason")
                    reason = reason_text.lower() if reason_text.lower() in REASONS else None
                    note = cell("note")
                    done = suppress_address(
                        db, address, source="import", actor=actor, now=now,
                        classification=_import_type(cell("type") or reason_text),
                        reason=reason, diagnostic=reason_text or None,
                        note=f"imported from {os.path.basename(name)}"
                        + (f" ({note})" if note else ""),
                    )
                    if done:
                        summary.imported += 1
                    else:
                        summary.already += 1
        except UnicodeDecodeError:
            raise SourceError(f"{name}: not a UTF-8 text file: expected CSV") from None
        except csv.Error as exc:
            raise SourceError(f"{name}: not a valid CSV file ({exc})") from None
    finally:
        fh.close()
    if summary.rows and summary.skipped == summary.rows:
        raise SourceError(f"{name}: no valid email address in {summary.rows} rows: check the "
                          "address column")
    store.ensure_db_shape(db)
    return summary
