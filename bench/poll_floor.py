"""The poll floor: a poll that reads, parses and files a folder, and does nothing else.

Run as a child process by bench_imap.py, like ``poll``, with the same flags (host,
port, user, --password-env, --cafile). It reads and files the folder the way ``poll``
does, with the project's own pieces, and does nothing else:

- one :class:`~mailbox_processor.sources.imap.ImapSource` connection (implicit TLS,
  certificate checked, QRESYNC when moving), UID FETCH in batches of poll's default
  size, with poll's FETCH reader;
- ``parse_message`` of every message in parser processes (as many as ``poll`` starts,
  two tasks per process and batch, :data:`poller.LOOKAHEAD` batches ahead), the
  reports thrown away;
- MOVE to ``Processed`` every :data:`poller.FILE_EVERY` UIDs, once everything is
  fetched and at the end, as poll files them.

No database, no stored raw copy, no sha256, no rows, no policy. ``poll``'s rate over
this one's, measured in the same run on the same messages, is what those duties cost;
this one's rate over the classify-only rate shows whether reading and filing the
folder, with parsing on the cores beside them, can keep up with parsing on one core.

Prints one JSON line: ``{"messages": N}``, the messages parsed and filed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any


def _parse_only(blobs: list[bytes]) -> int:
    from mailbox_processor import parse_message

    for blob in blobs:
        parse_message(blob)
    return len(blobs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-env", required=True)
    ap.add_argument("--cafile", required=True)
    args = ap.parse_args()

    from mailbox_processor.config import build_mailbox
    from mailbox_processor.pipeline import _init_worker, default_jobs
    from mailbox_processor.poller import FILE_EVERY, LOOKAHEAD, chunks, import_engine
    from mailbox_processor.sources.imap import ImapSource

    cfg = build_mailbox("floor", {"host": args.host, "port": args.port, "user": args.user,
                                  "password_env": args.password_env, "cafile": args.cafile})
    folder = cfg.post_action.folder
    assert folder, cfg.after
    jobs = default_jobs()
    done = 0
    with ImapSource(cfg) as source:
        # As poll: the engine is imported while the server answers the SELECT, and
        # the parser processes are forked once that import is done.
        importer = import_engine()
        try:
            status = source.select(cfg.folder)
        finally:
            importer.join()
        uids = source.uids_after(0, status.uidnext)
        with ProcessPoolExecutor(jobs, initializer=_init_worker,
                                 initargs=(os.getpid(),)) as pool:
            pending: deque[tuple[list[int], list[Future[Any]]]] = deque()
            held: list[int] = []

            def finish_oldest() -> None:
                nonlocal done, held
                batch, futures = pending.popleft()
                done += sum(f.result() for f in futures)
                held += batch
                if len(held) >= FILE_EVERY:
                    source.move(held, folder)
                    held = []

            for batch in chunks(uids, cfg.batch_size):
                blobs = [r.raw for r in source.fetch(batch, status.uidvalidity)]
                chunk = max(1, len(blobs) // (jobs * 2))
                pending.append((list(batch), [pool.submit(_parse_only, blobs[i:i + chunk])
                                              for i in range(0, len(blobs), chunk)]))
                if len(pending) > LOOKAHEAD:
                    finish_oldest()
            # As poll: what is parsed is filed while the parsers finish the last batches.
            source.move(held, folder)
            held = []
            while pending:
                finish_oldest()
            source.move(held, folder)
    print(json.dumps({"messages": done}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
