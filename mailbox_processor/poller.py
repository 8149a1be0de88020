"""Poll and watch IMAP folders: batches, post-actions, the lock, signals and backoff.

The order of work for each batch is what makes a run crash-safe (DESIGN.md,
invariant 1)::

    UID FETCH BODY.PEEK[]  ->  ingest_batch (one transaction, checkpoint included)
                           ->  MOVE / STORE / EXPUNGE in the mailbox

The last step is carried out for several committed batches at once (every
:data:`FILE_EVERY` UIDs, once everything is fetched, and at the end of a pass): a MOVE
costs the server about the same for 5,000 messages as for 500 plus a little per message.

Killed anywhere, the next run sees either an uncommitted batch (fetched again from the
checkpoint) or committed batches whose messages are still in the folder (filed again;
the sha256 dedupe keeps them from being counted twice). So one run, or a killed run
plus a second one, ends in the same database and the same folders.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import importlib
import logging
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from mailbox_processor.config import MailboxConfig, PostAction
from mailbox_processor.errors import MailboxProcessorError, SourceError
from mailbox_processor.pipeline import IngestSummary
from mailbox_processor.sources import RawMessage
from mailbox_processor.sources.imap import (
    IDLE_RENEW_SECONDS,
    ClientFactory,
    FolderStatus,
    ImapConnectionError,
    ImapSource,
)

log = logging.getLogger(__name__)

#: Documented exit statuses of ``poll`` and ``watch`` (README, "Exit statuses").
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_CONNECTION = 4
EXIT_LOCKED = 5
EXIT_QUARANTINED = 6

#: Reconnect backoff of ``watch``: first delay, cap (seconds).
BACKOFF_BASE = 1.0
BACKOFF_MAX = 300.0

Stop = Callable[[], bool]


class MailboxLockedError(MailboxProcessorError):
    """Another ``poll`` or ``watch`` is working on the same mailbox."""


# -- results -------------------------------------------------------------------------


@dataclass
class PollResult:
    """What ``poll`` (one pass) or ``watch`` (every pass so far) did to one folder.

    ``summary`` counts the stored messages exactly as ``scan`` does; ``filed`` counts
    the post-actions (``{"moved to Processed": 3}``).
    """

    mailbox: str
    folder: str
    uidvalidity: int = 0
    last_uid: int = 0
    rescanned: bool = False
    batches: int = 0
    summary: IngestSummary = field(default_factory=IngestSummary)
    filed: Counter[str] = field(default_factory=Counter)
    stopped: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``poll --json``); the counts are those of ``scan --json``."""
        return {
            "mailbox": self.mailbox,
            "folder": self.folder,
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "rescanned": self.rescanned,
            "batches": self.batches,
            **self.summary.as_dict(),
            "filed": dict(self.filed),
            "stopped": self.stopped,
        }

    def __str__(self) -> str:
        return (
            f"{self.mailbox}/{self.folder}: {self.summary}; {_describe(self.filed)}"
            + (" (stopped by signal)" if self.stopped else "")
        )


def _describe(filed: Counter[str]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(filed.items())) or "nothing filed"


@dataclass(frozen=True)
class BatchProgress:
    """Passed to the ``on_batch`` callback after each committed batch.

    Its messages may not be filed yet: filing follows every :data:`FILE_EVERY`
    committed UIDs, once everything is fetched and at the end of the pass.
    """

    done: int
    total: int
    summary: IngestSummary


# -- the lock ------------------------------------------------------------------------


def lock_dir() -> Path:
    """Where lock files live: ``$MAILBOX_PROCESSOR_LOCK_DIR``, ``$XDG_RUNTIME_DIR``, /tmp."""
    explicit = os.environ.get("MAILBOX_PROCESSOR_LOCK_DIR")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "mailbox-processor"
    return Path(tempfile.gettempdir()) / f"mailbox-processor-{os.getuid()}"


@contextlib.contextmanager
def mailbox_lock(cfg: MailboxConfig) -> Iterator[Path]:
    """Hold an exclusive lock on ``cfg``'s mailbox, or raise :class:`MailboxLockedError`.

    An ``flock`` on a file: the kernel drops it when the process dies, even by SIGKILL,
    so a crashed run never leaves a stale lock behind.
    """
    d = lock_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256(cfg.identity.encode()).hexdigest()[:16]
    path = d / f"{digest}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                raise MailboxLockedError(
                    f"mailbox {cfg.identity} is busy: another poll or watch "
                    f"(pid {holder or '?'}) holds {path}; wait for it to finish"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


# -- signals -------------------------------------------------------------------------


class StopFlag:
    """Set by SIGTERM/SIGINT: the current batch finishes, then the run ends cleanly.

    A second SIGINT (Ctrl-C twice) interrupts at once.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.info("%s received: finishing the current batch", signal.Signals(signum).name)

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Install the handlers for the duration of the block."""
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


# -- poll ----------------------------------------------------------------------------


def chunks(seq: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    """Split ``seq`` into consecutive slices of at most ``size`` items."""
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def poll_folder(
    db: Any,
    cfg: MailboxConfig,
    source: ImapSource,
    *,
    stop: Stop = lambda: False,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[BatchProgress], None] | None = None,
    into: PollResult | None = None,
) -> PollResult:
    """Fetch, store and file everything new in ``cfg.folder`` on a connected ``source``.

    Returns a :class:`PollResult` (``into``, when given: ``watch`` adds every pass to
    one). Stops between batches when ``stop()`` is true.

    Committed messages are filed every :data:`FILE_EVERY` UIDs, once every batch is
    fetched, and before returning, also when ``stop()`` ended the pass or a later batch
    raised (unless the connection is gone). A run killed meanwhile leaves up to
    ``FILE_EVERY`` plus a batch of committed but unfiled messages in the folder; the
    next run files them (fetched and parsed again, counted as duplicates).
    """
    from mailbox_processor import store

    result = into or PollResult(mailbox=cfg.identity, folder=cfg.folder)
    importer = import_engine()
    try:
        status, uids, stored_uv = _prepare_pass(db, cfg, source, result, on_start)
    finally:
        importer.join()  # before any parser process is forked (see import_engine)
    if not uids and stored_uv != status.uidvalidity:
        store.set_checkpoint(db, cfg.identity, cfg.folder, status.uidvalidity, result.last_uid)
    filing = _Filing(cfg, source, result)
    try:
        _run_batches(db, cfg, source, status, uids, filing, stop, on_batch)
    except ImapConnectionError:
        # The connection is gone: what is held stays in the folder, committed, for
        # the next run (or watch's next pass) to file.
        raise
    except Exception:
        # A later batch failed (a database error, a FETCH the server refused): the
        # committed ones are still filed, as they would have been one by one.
        try:
            filing.flush()
        except SourceError as exc:
            log.warning("%s: could not file committed messages (%s): the next run "
                        "files them", cfg.url, exc)
        raise
    filing.flush()
    return result


def _prepare_pass(
    db: Any, cfg: MailboxConfig, source: ImapSource, result: PollResult,
    on_start: Callable[[int], None] | None,
) -> tuple[FolderStatus, list[int], int | None]:
    """SELECT the folder, read the checkpoint, list the UIDs to process (and report
    their number to ``on_start``); returns the folder status, the UIDs and the stored
    UIDVALIDITY."""
    from mailbox_processor import store

    status = source.select(cfg.folder)
    stored_uv, last = store.get_checkpoint(db, cfg.identity, cfg.folder)
    last = last or 0
    if stored_uv is not None and stored_uv != status.uidvalidity:
        log.warning(
            "%s: UIDVALIDITY changed (%s -> %s): rescanning the folder; "
            "already stored messages are recognised by their sha256",
            cfg.url,
            stored_uv,
            status.uidvalidity,
        )
        result.rescanned = True
        last = 0
    result.uidvalidity, result.last_uid = status.uidvalidity, last
    uids = _pending_uids(cfg, source, last, status.uidnext)
    log.debug("%s: UIDVALIDITY %d, checkpoint UID %d, %d messages to process",
              cfg.url, status.uidvalidity, last, len(uids))
    if on_start:
        on_start(len(uids))
    return status, uids, stored_uv


def import_engine() -> threading.Thread:
    """Start importing the parsing engine in a thread; join it before forking.

    The import compiles the rule table, about 0.1 s of CPU. Started before the
    SELECT, it runs while the server works on it (a first read-write SELECT of freshly
    delivered mail made Dovecot sync for 0.34 s on the 20,000-message benchmark)
    instead of at start-up, one after the other. The thread must be joined before
    the parser processes are forked: a child forked while another thread holds an
    import lock would inherit the lock held. A failed import is left to the first
    parse, which raises it where it can be reported.
    """

    def run() -> None:
        with contextlib.suppress(BaseException):
            importlib.import_module("mailbox_processor.engine")

    thread = threading.Thread(target=run, name="import-engine", daemon=True)
    thread.start()
    return thread


#: Batches fetched and handed to the parser processes ahead of the one being committed:
#: enough to keep the parsers busy while this process fetches, commits and files. Four
#: (2,000 messages, about 0.2 s of parsing on two cores) outlast the MOVE of a
#: FILE_EVERY group (about 0.17 s); with two the parsers ran dry during each one. On the
#: 20,000 poll: 88.5-89.6 % of the CPU limit with 2, 91.5-91.9 % with 4.
LOOKAHEAD = 4

#: Committed UIDs held before they are filed. A MOVE (or STORE, UID EXPUNGE) costs
#: Dovecot ~18 ms however many UIDs it names (it syncs the folder) plus ~40 us per
#: message. On the 20,000-message poll benchmark Dovecot used 141-151 us of CPU per
#: message filed batch by batch (500), 107-108 filed every 2,000 UIDs, 104-105 every
#: 5,000 and 102-105 every 20,000: past a few thousand the gain is lost in the noise,
#: while a run killed before filing leaves up to this many committed messages for the
#: next run to fetch and parse again.
FILE_EVERY = 5_000


def _run_batches(
    db: Any,
    cfg: MailboxConfig,
    source: ImapSource,
    status: FolderStatus,
    uids: Sequence[int],
    filing: _Filing,
    stop: Stop,
    on_batch: Callable[[BatchProgress], None] | None,
) -> None:
    """The batches of :func:`poll_folder`: fetch, parse (in other processes), commit."""
    from mailbox_processor.pipeline import ParsePool

    result = filing.result
    done = 0

    def commit(batch: Sequence[int], raws: list[RawMessage], parsed: Any) -> None:
        nonlocal done
        _process_batch(db, cfg, status, batch, raws, parsed, result, filing)
        if filing.held >= FILE_EVERY:
            filing.flush()
        done += len(batch)
        if on_batch:
            on_batch(BatchProgress(done=done, total=len(uids), summary=result.summary))

    # Parser processes only when there is a backlog worth their start-up.
    # While the parsers work on the next LOOKAHEAD batches, this process commits the
    # oldest one: each batch is still committed before anything of it changes in the
    # mailbox, and batches are committed in UID order.
    with ParsePool(None if len(uids) > cfg.batch_size else 1) as pool:
        pending: deque[tuple[Sequence[int], list[RawMessage], Any]] = deque()
        for batch in chunks(uids, cfg.batch_size):
            if stop():
                result.stopped = True
                break
            raws = source.fetch(batch, status.uidvalidity)
            pending.append((batch, raws, pool.submit(raws)))
            if len(pending) > LOOKAHEAD:
                commit(*pending.popleft())
                if stop():
                    # The batches fetched since are not committed: they stay in the
                    # folder, above the checkpoint, for the next run.
                    result.stopped = True
                    pending.clear()
                    break
        # All fetched: file what is committed while the parsers finish the last
        # batches, so that only those are left to file after them, with nothing else
        # to do meanwhile.
        filing.flush()
        while pending:
            commit(*pending.popleft())
            if stop() and pending:
                result.stopped = True
                pending.clear()


def _pending_uids(
    cfg: MailboxConfig, source: ImapSource, last: int, uidnext: int | None = None
) -> list[int]:
    """UIDs to process: all above the checkpoint, plus those at or below it that a killed
    run committed but did not file yet (still in the folder, still unseen; up to
    :data:`FILE_EVERY` plus a batch of them: every UID up to the checkpoint is searched)."""
    new = source.uids_after(last, uidnext)
    if last <= 0:
        return new
    action = cfg.post_action
    if action.kind in ("move", "delete"):
        # A COPY + STORE \Deleted fallback that died before its EXPUNGE: finish it.
        flagged = source.search_uids(["DELETED", "UID", f"1:{last}"])
        if flagged:
            log.info("%s: expunging %d messages a previous run had filed", cfg.url, len(flagged))
            source.expunge(flagged)
        left = source.search_uids(["UNDELETED", "UID", f"1:{last}"])
    elif action.kind == "seen":
        left = source.search_uids(["UNSEEN", "UNDELETED", "UID", f"1:{last}"])
    else:
        left = []
    left = [u for u in left if u <= last]
    if left:
        log.info("%s: %d committed messages were not filed by a previous run: filing them",
                 cfg.url, len(left))
    return sorted(set(left) | set(new))


def _process_batch(
    db: Any,
    cfg: MailboxConfig,
    status: FolderStatus,
    batch: Sequence[int],
    raws: list[RawMessage],
    parsed: Callable[[], Any],
    result: PollResult,
    filing: _Filing,
) -> None:
    from mailbox_processor import store
    from mailbox_processor.pipeline import ingest_batch

    t0 = time.monotonic()
    new_last = max(result.last_uid, max(batch))
    checkpoint = (cfg.identity, cfg.folder, status.uidvalidity, new_last)
    # The one commit: results and checkpoint together, before any change in the mailbox.
    if raws:
        outcomes = ingest_batch(db, raws, checkpoint=checkpoint, parsed=parsed())
    else:
        outcomes = []
        store.set_checkpoint(db, *checkpoint)
    result.last_uid = new_last
    result.batches += 1
    result.summary.add(outcomes)
    by_kind: dict[str, list[int]] = {}
    for raw, outcome in zip(raws, outcomes, strict=True):
        assert raw.uid is not None
        by_kind.setdefault(_kind_of(raw, outcome), []).append(raw.uid)
    for kind, uids in by_kind.items():  # the action of a kind: once a batch, not a message
        filing.add(_action_for(cfg, kind), uids)
    if log.isEnabledFor(logging.INFO):  # the summary costs a pass over the batch
        log.info(
            "%s: batch UIDs %d-%d: %s (%.2fs)",
            cfg.url,
            batch[0],
            batch[-1],
            IngestSummary().add(outcomes),
            time.monotonic() - t0,
        )


class _Filing:
    """The post-actions of committed messages, held to be carried out together."""

    def __init__(self, cfg: MailboxConfig, source: ImapSource, result: PollResult) -> None:
        self.cfg, self.source, self.result = cfg, source, result
        self.plan: dict[PostAction, list[int]] = {}
        self.held = 0

    def add(self, action: PostAction, uids: list[int]) -> None:
        """Hold ``action`` for ``uids``, whose results are committed."""
        self.plan.setdefault(action, []).extend(uids)
        self.held += len(uids)

    def flush(self) -> None:
        """Carry out everything held (one command per action and UID set); count it in
        ``result.filed`` as it is done."""
        plan, self.plan, self.held = self.plan, {}, 0
        if not plan:
            return
        t0 = time.monotonic()
        filed = _apply(self.source, plan, self.result.filed)
        log.info("%s: filed UIDs %d-%d: %s (%.2fs)", self.cfg.url,
                 min(min(u) for u in plan.values()), max(max(u) for u in plan.values()),
                 _describe(filed), time.monotonic() - t0)


def _kind_of(raw: RawMessage, outcome: Any) -> str:
    """``bounce``, ``quarantined`` or ``not_bounce``: decides the folder a message goes to.

    A hard or soft verdict makes a bounce. A duplicate (stored by an earlier,
    interrupted run) is parsed again to find its kind: parsing is pure, so the answer
    is the one the first run had.
    """
    if outcome.status == "quarantined":
        return "quarantined"
    if outcome.status != "duplicate":
        # Stored just now: not quarantined, so the parse had no error. Auto-replies,
        # delay warnings and delivery reports carry verdicts but are no bounce.
        return "bounce" if outcome.is_bounce else "not_bounce"
    if raw.error is not None:
        return "quarantined"
    from mailbox_processor.engine import parse_message

    try:
        report = parse_message(raw.raw)
    except Exception:  # noqa: BLE001 - ingest quarantined it the first time too
        return "quarantined"
    if report.error:
        return "quarantined"
    return "bounce" if report.is_bounce else "not_bounce"


def _action_for(cfg: MailboxConfig, kind: str) -> PostAction:
    if kind == "quarantined" and cfg.quarantine_folder:
        return PostAction("move", cfg.quarantine_folder)
    if kind == "not_bounce":
        return cfg.not_bounce_action
    return cfg.post_action


def _apply(source: ImapSource, plan: dict[PostAction, list[int]],
           total: Counter[str]) -> Counter[str]:
    """Carry out the post-actions; returns counts like ``{"moved to Processed": 3}``,
    also added to ``total`` as each command succeeds."""
    done: Counter[str] = Counter()
    deletes: list[int] = []
    try:
        for action, uids in plan.items():
            if action.kind == "move":
                assert action.folder is not None
                source.move(uids, action.folder)
                done[f"moved to {action.folder}"] += len(uids)
            elif action.kind == "seen":
                source.mark_seen(uids)
                done["marked seen"] += len(uids)
            elif action.kind == "delete":
                deletes.extend(uids)
            else:
                done["kept"] += len(uids)
        if deletes:
            source.delete(deletes)
            done["deleted"] += len(deletes)
    finally:
        total.update(done)
    return done


def poll(
    db: Any,
    cfg: MailboxConfig,
    *,
    stop: Stop = lambda: False,
    client_factory: ClientFactory | None = None,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[BatchProgress], None] | None = None,
    locked: bool = False,
) -> PollResult:
    """One pass over one mailbox: lock, connect, :func:`poll_folder`, log out.

    ``locked=True`` means the caller already holds :func:`mailbox_lock` (the CLI takes
    it before opening the database, so a second run never even touches the file).
    """
    lock = contextlib.nullcontext() if locked else mailbox_lock(cfg)
    with lock, ImapSource(cfg, client_factory=client_factory) as source:
        return poll_folder(db, cfg, source, stop=stop, on_start=on_start, on_batch=on_batch)


# -- watch ---------------------------------------------------------------------------


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX,
                  rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with "full jitter": a random delay in [d/2, d], d = base * 2^n."""
    d = min(cap, base * (2 ** min(attempt, 30)))
    return float(d / 2 + rng() * d / 2)


def sleep_until(seconds: float, stop: Stop, *, step: float = 0.2) -> None:
    """Sleep ``seconds``, waking early when ``stop()`` turns true."""
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(step, left))


def watch(
    db: Any,
    cfg: MailboxConfig,
    *,
    stop: Stop = lambda: False,
    client_factory: ClientFactory | None = None,
    on_pass: Callable[[PollResult], None] | None = None,
    backoff_base: float = BACKOFF_BASE,
    backoff_max: float = BACKOFF_MAX,
    locked: bool = False,
) -> PollResult:
    """Poll ``cfg`` until ``stop()``: IDLE where advertised, else every ``cfg.interval`` s.

    A dropped connection or an unreachable server (a restart, say) is retried with
    exponential backoff and jitter; login and TLS failures are not, they end the watch.
    Returns the totals of every pass (``on_pass`` sees them after each one).
    ``locked`` as for :func:`poll`.
    """
    total = PollResult(mailbox=cfg.identity, folder=cfg.folder)
    attempt = 0
    with contextlib.nullcontext() if locked else mailbox_lock(cfg):
        while not stop():
            try:
                with ImapSource(cfg, client_factory=client_factory) as source:
                    if attempt:
                        log.info("%s: reconnected", cfg.url)
                    attempt = 0
                    use_idle = cfg.idle and source.has_capability("IDLE")
                    log.info("%s: watching (%s)", cfg.url,
                             "IMAP IDLE" if use_idle else f"polling every {cfg.interval:g}s")
                    while not stop():
                        poll_folder(db, cfg, source, stop=stop, into=total)
                        if on_pass:
                            on_pass(total)
                        if stop():
                            break
                        if use_idle:
                            source.wait_for_changes(IDLE_RENEW_SECONDS, stop)
                        else:
                            sleep_until(cfg.interval, stop)
            except ImapConnectionError as exc:
                if stop():
                    break
                delay = backoff_delay(attempt, base=backoff_base, cap=backoff_max)
                attempt += 1
                log.warning("%s; reconnecting in %.1fs (attempt %d)", exc, delay, attempt)
                sleep_until(delay, stop)
            except SourceError as exc:
                # e.g. SELECT failing on a folder being recreated: retry, but say why.
                if not _retryable(exc) or stop():
                    raise
                delay = backoff_delay(attempt, base=backoff_base, cap=backoff_max)
                attempt += 1
                log.warning("%s; retrying in %.1fs", exc, delay)
                sleep_until(delay, stop)
    total.stopped = True
    return total


def _retryable(exc: SourceError) -> bool:
    from mailbox_processor.sources.imap import ImapAuthError, ImapTLSError

    return not isinstance(exc, (ImapAuthError, ImapTLSError))
