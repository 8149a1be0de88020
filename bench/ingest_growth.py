"""How the cost of storing grows with the database: not part of ``run.py``.

The benchmarks of ``run.py`` start from a fresh database. This one fills one database
step by step with N distinct messages (bench/corpus.py) and prints, for each step of
``--step`` messages, what ``pipeline.ingest_batch`` (batches of 500, as poll and scan)
costs the process that stores: parsing is done beforehand in parser processes, as in a
poll, so the figures are the database writes, the policy and the commit alone.

    python bench/ingest_growth.py --messages 200000      # about 2 minutes here
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
from common import log  # noqa: E402

from mailbox_processor.sources import DEFAULT_BATCH_SIZE  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=200_000, help="messages in all [200000]")
    ap.add_argument("--step", type=int, default=20_000, help="messages per step [20000]")
    args = ap.parse_args()

    from mailbox_processor import store
    from mailbox_processor.pipeline import ParsePool, ingest_batch
    from mailbox_processor.sources import RawMessage

    log(f"ingest growth: building {args.messages:,} messages")
    messages = corpus.build(args.messages)
    raws = [RawMessage(source=f"imap://bench@localhost/INBOX;UID={i + 1}", raw=m,
                       folder="INBOX", uidvalidity=1, uid=i + 1)
            for i, m in enumerate(messages)]
    print("| messages stored before | store CPU µs/msg | store wall µs/msg | database MB |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="mp-bench-growth-") as tmp, ParsePool() as pool:
        path = os.path.join(tmp, "growth.db")
        db = store.open_db(path)
        for start in range(0, len(raws), args.step):
            step = raws[start:start + args.step]
            parsed = pool.parse(step)
            cpu, wall = time.process_time(), time.perf_counter()
            for b in range(0, len(step), DEFAULT_BATCH_SIZE):
                last = step[min(b + DEFAULT_BATCH_SIZE, len(step)) - 1].uid or 0
                ingest_batch(db, step[b:b + DEFAULT_BATCH_SIZE],
                             parsed=parsed[b:b + DEFAULT_BATCH_SIZE],
                             checkpoint=("bench@localhost", "INBOX", 1, last))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
            print(f"| {start:,} | {1e6 * cpu / len(step):.0f} | {1e6 * wall / len(step):.0f} "
                  f"| {size / 1e6:,.0f} |", flush=True)
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
