"""What ingest_batch stores per message equals the message's own fields, read plainly.

ingest_batch builds its ``messages`` and ``bounces`` rows as tuples in the store's
column order (no dict per row); the oracle here builds each row as a dict, field by
field, from the raw message and its report, and compares it with what was stored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from mailbox_processor import store
from mailbox_processor.pipeline import ParsePool, _safe_parse, ingest_batch
from mailbox_processor.policy import Policy
from mailbox_processor.sources import RawMessage
from tests.strategies import enough, sample_paths
from tests.test_parse_pool import plain_bounce_rows

NOW = "2026-01-02 03:04:05"


def plain_message_row(raw: RawMessage, report: Any, error: str | None) -> dict[str, Any]:
    """The ``messages`` row of one new message, field by field (the oracle)."""
    if error is not None:
        outcome = "quarantined"
    elif report is None or not report.verdicts:
        outcome = "not_bounce"
    else:
        outcome = "parsed"
    return {
        "sha256": hashlib.sha256(raw.raw).hexdigest(),
        "source": raw.source,
        "mailbox": "imap://u@h" if raw.folder is not None else None,
        "folder": raw.folder,
        "uidvalidity": raw.uidvalidity,
        "uid": raw.uid,
        "mbox_index": raw.index,
        "message_id": report.message_id if report else None,
        "from_addr": report.from_addr if report else None,
        "subject": report.subject if report else None,
        "date": report.date if report else None,
        "size": len(raw.raw),
        "processed_at": NOW,
        "outcome": outcome,
        "parser": report.parser if report else None,
        "error": error,
    }


@pytest.mark.parametrize("pool_jobs", [0, 2])
def test_stored_rows_equal_the_plain_ones(tmp_path: Path, pool_jobs: int) -> None:
    """Parsed here or in the parser processes, every stored row is the plain one."""
    paths = sample_paths()
    raws = [RawMessage(source=f"imap://u@h/INBOX;UID={i + 1}", raw=p.read_bytes(),
                       folder="INBOX", uidvalidity=7, uid=i + 1, index=i % 3 or None)
            for i, p in enumerate(paths)]
    # The same bytes twice (fixtures and corpus share some) are one message: the first.
    firsts: dict[str, RawMessage] = {}
    for r in raws:
        firsts.setdefault(hashlib.sha256(r.raw).hexdigest(), r)
    db = store.open_db(str(tmp_path / "rows.db"))
    policy = Policy()
    with ParsePool(max(1, pool_jobs)) as pool:
        for i in range(0, len(raws), 100):
            batch = raws[i:i + 100]
            parsed = pool.parse(batch) if pool_jobs else None
            ingest_batch(db, batch, policy=policy, now=NOW, parsed=parsed)
    messages, bounces = [], []
    for raw in firsts.values():
        report, error = _safe_parse(raw.raw)
        messages.append(plain_message_row(raw, report, error))
        if report is not None and error is None:
            bounces += plain_bounce_rows(messages[-1]["sha256"], report, policy, NOW)
    # Every row, in input order (rowids and ids follow it).
    assert list(db.query("SELECT * FROM messages ORDER BY rowid")) == messages
    stored = list(db.query("SELECT * FROM bounces ORDER BY id"))
    assert [r.pop("id") for r in stored] == list(range(1, len(bounces) + 1))
    assert stored == bounces
    assert len(bounces) >= enough(400, 25)
    db.close()

