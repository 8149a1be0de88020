"""Parsing on several cores: same results, and no worker outlives its parent."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mailbox_processor import store
from mailbox_processor.pipeline import ParsePool, _safe_parse
from mailbox_processor.sources.files import iter_paths

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_pool_results_equal_parsing_in_process() -> None:
    raws = list(iter_paths([FIXTURES / "maildir", FIXTURES / "malformed"]))
    assert len(raws) > 20
    with ParsePool(2) as pool:
        assert pool.jobs == 2
        parallel = pool.parse(raws)
    serial = [_safe_parse(r.raw if r.error is None else b"") for r in raws]
    assert [(p.report, p.error) for p in parallel] == serial
    # The workers also pack each message for raw_messages, as the store would.
    assert [p.packed for p in parallel] == [
        store.pack_raw(r.raw) if r.error is None and r.raw else None for r in raws]


def test_one_job_parses_in_process() -> None:
    raws = list(iter_paths([FIXTURES / "maildir"]))
    with ParsePool(1) as pool:
        assert pool._pool is None
        assert len(pool.parse(raws)) == len(raws)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_die_with_a_killed_parent() -> None:
    """A SIGKILLed poll must not leave parser processes behind (they would hold its
    pipes open and run forever)."""
    code = (
        "import os, sys\n"
        "from mailbox_processor.pipeline import ParsePool\n"
        "from mailbox_processor.sources import RawMessage\n"
        "pool = ParsePool(2)\n"
        "pool.parse([RawMessage(source='x', raw=b'Subject: x\\n\\nhi')] * 8)\n"
        "print(' '.join(str(p) for p in pool._pool._processes), flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == -signal.SIGKILL
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def test_ingest_keeps_the_packed_raw_of_the_workers(tmp_path: Path) -> None:
    from mailbox_processor.pipeline import ingest_batch

    raws = list(iter_paths([FIXTURES / "maildir"]))
    db = store.open_db(str(tmp_path / "b.db"))
    with ParsePool(2) as pool:
        ingest_batch(db, raws, parsed=pool.parse(raws))
    kept = {sha: raw for sha, raw, _row in store.iter_raw_messages(db)}
    assert sorted(kept.values()) == sorted(r.raw for r in raws)


def test_workers_run_nicer_than_the_main_process() -> None:
    """The parsers leave the CPU to the main process, the one serial step."""
    import os

    from mailbox_processor.pipeline import WORKER_NICENESS

    with ParsePool(2) as pool:
        pool.parse(list(iter_paths([FIXTURES / "maildir"])))
        pids = list(pool._pool._processes)
        assert len(pids) == 2
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        for pid in pids:
            assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + WORKER_NICENESS)


def plain_bounce_rows(sha256: str, report: Any, policy: Any,
                      processed_at: str) -> list[dict[str, Any]]:
    """The ``bounces`` rows of a report, read field by field from it (the oracle)."""
    fallback = store.to_utc(report.date) or processed_at
    rows = []
    for v in report.verdicts:
        f = v.finding
        recipient = store.normalise_address(f.recipient)
        rows.append({
            "message_sha256": sha256, "recipient": recipient,
            "domain": store.address_domain(recipient),
            "classification": v.classification.value, "reason": v.reason,
            "policy_action": policy.action_for(v.classification.value, v.reason).value,
            "rule_id": v.rule_id, "action": f.action, "status": f.status,
            "smtp_code": f.smtp_code, "diagnostic": f.diagnostic, "remote_mta": f.remote_mta,
            "reporting_mta": f.reporting_mta,
            "original_message_id": report.original.message_id,
            "original_subject": report.original.subject,
            "occurred_at": store.to_utc(f.date) or fallback,
        })
    return rows


def test_prepared_rows_equal_the_plain_ones() -> None:
    """What the parser processes hand back (:func:`prepare`, turned into rows by
    ingest_batch) equals the plain path: bounce_rows, the report's own fields and
    classifications, and ``report.is_bounce`` (the oracle)."""
    from mailbox_processor.pipeline import _bounce_row, bounce_rows, prepare
    from mailbox_processor.policy import Policy
    from tests.strategies import enough, sample_paths

    policy = Policy()
    now = "2026-01-02 03:04:05"
    checked = 0
    for path in sample_paths():
        report, error = _safe_parse(path.read_bytes())
        prep = prepare(report, error, "s")
        assert prep.sha256 == "s"
        if report is None:
            assert prep.bounces == () and prep.classes == () and not prep.is_bounce
            continue
        assert (prep.parser, prep.message_id, prep.from_addr, prep.subject, prep.date) == (
            report.parser, report.message_id, report.from_addr, report.subject, report.date)
        assert prep.classes == tuple(v.classification.value for v in report.verdicts)
        assert prep.is_bounce == report.is_bounce
        if error is None:
            plain = plain_bounce_rows("s", report, policy, now)
            assert [_bounce_row("s", row, policy, now) for row in prep.bounces] == plain
            assert bounce_rows("s", report, policy, now) == plain
            checked += len(prep.bounces)
    assert checked >= enough(400, 25)


def test_pool_reports_are_parsed_again_on_demand() -> None:
    """A worker's result carries no report; reading it parses the bytes here."""
    raws = list(iter_paths([FIXTURES / "maildir"]))
    with ParsePool(2) as pool:
        parallel = pool.parse(raws)
    assert all(p.prepared is not None and p._report is None for p in parallel)
    assert [p.report for p in parallel] == [_safe_parse(r.raw)[0] for r in raws]
