"""Ingest throughput: the same N messages into a fresh database, as ``scan`` does.

``pipeline.ingest_batch`` in batches of 500 (``scan``'s default: one transaction per
batch, raw messages kept), with the policy loaded once and ``ensure_db_shape`` at the
end, exactly like ``pipeline.scan_paths`` minus the file reading (the messages are in
memory already, so the figure is parse + store, not disk reads).

The stages are timed by wrapping the functions ``ingest_batch`` calls with a
``perf_counter`` accumulator (about a microsecond per call; no profiler):
parse (``_safe_parse``: parse_message), database writes (messages, raw_messages
zlib, raw_messages insert, bounces, dedupe lookup, expiry and prune, commit), and policy
(``apply_to_messages``: reads the batch's addresses at once, decides, writes in bulk).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
from common import Figure, emit, log, profile_report, timed, worker_args  # noqa: E402

from mailbox_processor.sources import DEFAULT_BATCH_SIZE  # noqa: E402

BATCH = DEFAULT_BATCH_SIZE  # scan's default


def instrument(acc: dict[str, float]) -> None:
    """Wrap the stage functions as seen from ``pipeline`` (no source change)."""
    from mailbox_processor import pipeline, store

    for name, key in (("_safe_parse", "parse"), ("apply_to_messages", "policy"),
                      ("message_sha256", "sha256"), ("bounce_rows", "bounce_rows")):
        setattr(pipeline, name, timed(acc, key, getattr(pipeline, name)))
    for name, key in (("existing_messages", "db: dedupe lookup"),
                      ("insert_message_rows", "db: messages insert"),
                      ("pack_raw", "db: raw_messages zlib"),
                      ("store_packed_raws", "db: raw_messages insert"),
                      ("insert_bounce_rows", "db: bounces insert"),
                      ("expire_due", "db: expire + prune"),
                      ("prune_raw", "db: expire + prune"),
                      ("set_checkpoint", "db: other")):
        setattr(store, name, timed(acc, key, getattr(store, name)))


def profile_ingest(messages: list[bytes], top: int = 25) -> str:
    """cProfile of ingest_batch over ``messages`` into a fresh database."""
    import cProfile

    from mailbox_processor import pipeline, store
    from mailbox_processor.policy import load_policy
    from mailbox_processor.sources import RawMessage

    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        db = store.open_db(Path(tmp) / "profile.db")
        policy = load_policy(db)
        raws = [RawMessage(source=f"bench/{i}.eml", raw=m) for i, m in enumerate(messages)]
        prof = cProfile.Profile()
        prof.enable()
        for i in range(0, len(raws), BATCH):
            pipeline.ingest_batch(db, raws[i : i + BATCH], policy=policy)
        prof.disable()
        db.close()
    return profile_report(prof, top)


def main() -> int:
    args = worker_args()
    n = int(args.get("messages", 50_000))
    log(f"ingest: building {n:,} messages")
    messages = corpus.build(n)

    from mailbox_processor import engine, pipeline, store
    from mailbox_processor.policy import load_policy
    from mailbox_processor.sources import RawMessage

    for raw in messages[:406]:  # warm the parser's imports and caches, as in classify
        engine.parse_message(raw)
    raws = [RawMessage(source=f"bench/{i:06d}.eml", raw=m) for i, m in enumerate(messages)]
    acc: dict[str, float] = defaultdict(float)
    instrument(acc)
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        db = store.open_db(path)
        policy = load_policy(db)
        outcomes = 0
        statuses: dict[str, int] = defaultdict(int)
        for i in range(0, len(raws), BATCH):
            tb = time.perf_counter()
            for o in pipeline.ingest_batch(db, raws[i : i + BATCH], policy=policy):
                statuses[o.status] += 1
                outcomes += 1
            acc["batch"] += time.perf_counter() - tb
            if (i // BATCH) % 50 == 49:
                done = i + BATCH
                log(f"ingest: {done:,} messages, {done / (time.perf_counter() - t0):,.0f}/s")
        te = time.perf_counter()
        store.ensure_db_shape(db)
        acc["db: ensure_db_shape"] += time.perf_counter() - te
        total = time.perf_counter() - t0
        counts = store.table_counts(db)
        db.close()
        size_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
    log(f"ingest: {n:,} in {total:.1f}s: {dict(statuses)}; tables {counts}")

    parse = acc.pop("parse")
    policy_t = acc.pop("policy")
    batch_t = acc.pop("batch")
    db_named = sum(v for k, v in acc.items() if k.startswith("db:"))
    # What ingest_batch spent outside the wrapped calls: BEGIN/COMMIT, the loop itself,
    # outcome records. Counted as database time (it is mostly the commit).
    rest = batch_t - parse - policy_t - sum(acc.values()) + acc.get("db: ensure_db_shape", 0)
    db_t = db_named + rest
    other = total - parse - policy_t - db_t
    figs = [
        Figure("ingest", f"ingest_batch x{BATCH} into a fresh db ({n:,} msgs, 1 run)", n / total,
               "emails/s"),
        Figure("ingest", "  parse + classify (_safe_parse)", 100 * parse / total, "%",
               note=f"{n / parse:,.0f} emails/s in place"),
        Figure("ingest", "  database writes (messages, raw, bounces, commit)",
               100 * db_t / total, "%"),
        Figure("ingest", "  policy (apply_to_messages: batch reads + bulk writes)",
               100 * policy_t / total, "%"),
        Figure("ingest", "  other (sha256, rows, open_db)",
               100 * other / total, "%"),
    ]
    breakdown = {k: round(v, 3) for k, v in sorted(acc.items())}
    breakdown.update(parse=round(parse, 3), policy=round(policy_t, 3),
                     db_unwrapped_commit_and_loop=round(rest, 3), total=round(total, 3))
    extra: dict[str, Any] = {"breakdown_seconds": breakdown, "tables": counts,
                             "statuses": dict(statuses), "db_mb": round(size_mb, 1),
                             "pid": os.getpid()}
    if args.get("profile"):
        log("ingest: profiling")
        extra["profile"] = profile_ingest(messages[: min(n, 4060)])
    emit(figs, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
