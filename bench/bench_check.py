"""check: A addresses on stdin against a database of S suppressions.

The database is made by ``store.open_db`` (the real schema, indexes and views), then
filled with plain SQL ``executemany`` into the real ``suppressions`` table: S rows,
80 % hard (no expiry), 10 % soft with an expiry in the future, 10 % expired (state
``expired``: must not be reported). The input: 10 % of the addresses actively
suppressed, 5 % expired ones, 85 % unknown; a quarter in mixed case and some wrapped
in ``<...>``, so that normalisation is exercised.

Timed: the whole command ``python -m mailbox_processor check - --db DB`` (interpreter
start-up included, as a sending script sees it), stdin from a file, stdout to a file;
median of the runs. The output is checked against the expected hits. The library call
``store.check_addresses`` alone is timed beside it.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Figure, emit, log, median, worker_args  # noqa: E402

NOW = "2026-11-29 12:00:00"
FUTURE = "2099-01-01 00:00:00"


def address(i: int) -> str:
    return f"user{i:07d}@d{i % 9973}.example.com"


def build_db(path: Path, n: int) -> float:
    """Fill a fresh database with ``n`` suppressions; return seconds."""
    from mailbox_processor import store

    t0 = time.perf_counter()
    db = store.open_db(path)
    conn = db.conn

    def rows() -> Any:
        for i in range(n):
            kind = i % 10
            state = "expired" if kind == 9 else "active"
            hard = kind < 8
            yield (address(i), f"d{i % 9973}.example.com", state,
                   "hard" if hard else "soft", "userunknown" if hard else "mailboxfull",
                   "550 5.1.1 user unknown" if hard else "452 4.2.2 mailbox full",
                   NOW, NOW, 1 if hard else 0, 0 if hard else 3, 0, NOW,
                   None if hard else (FUTURE if kind == 8 else NOW), "bounce", NOW)

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO suppressions (address, domain, state, classification, reason, diagnostic,"
        " first_seen, last_seen, hard_count, soft_count, complaint_count, suppressed_at,"
        " expires_at, source, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows(),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - t0


def make_input(n_addresses: int, n_suppressions: int, seed: int = 5) -> tuple[list[str], int]:
    """Input lines and the number of distinct active hits among them."""
    rng = random.Random(seed)
    lines: list[str] = []
    hits: set[int] = set()
    for _ in range(n_addresses):
        x = rng.random()
        if x < 0.10:  # actively suppressed (hard or future-expiring soft)
            i = rng.randrange(n_suppressions)
            while i % 10 == 9:
                i = rng.randrange(n_suppressions)
            hits.add(i)
        elif x < 0.15:  # suppressed once, expired now
            i = rng.randrange(n_suppressions // 10) * 10 + 9
        else:  # unknown
            i = n_suppressions + rng.randrange(10 * n_addresses)
        a = address(i)
        y = rng.random()
        if y < 0.25:
            a = a.upper()
        elif y < 0.30:
            a = f"<{a}>"
        lines.append(a)
    return lines, len(hits)


def main() -> int:
    args = worker_args()
    n_supp = int(args.get("suppressions", 1_000_000))
    n_addr = int(args.get("addresses", 100_000))
    rounds = int(args.get("rounds", 3))
    with tempfile.TemporaryDirectory(prefix="mp-bench-check-") as tmp:
        work = Path(tmp)
        db_path = work / "check.db"
        log(f"check: building a database of {n_supp:,} suppressions")
        build_s = build_db(db_path, n_supp)
        log(f"check: built in {build_s:.1f}s ({db_path.stat().st_size / 1e6:.0f} MB)")
        lines, expected = make_input(n_addr, n_supp)
        stdin_path = work / "addresses.txt"
        stdin_path.write_text("".join(a + "\n" for a in lines))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_PROCESSOR_")}
        cmd = [sys.executable, "-m", "mailbox_processor", "check", "-", "--db", str(db_path)]
        walls = []
        for r in range(rounds):
            out_path = work / "out.txt"
            with open(stdin_path, "rb") as fin, open(out_path, "wb") as fout:
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE,
                                      env=env, cwd=work)
                walls.append(time.perf_counter() - t0)
            got = len(set(out_path.read_text().split()))
            if proc.returncode != 1 or got != expected:
                raise RuntimeError(f"check: exit {proc.returncode}, {got} hits, expected "
                                   f"{expected}: {proc.stderr.decode()[-1000:]}")
            log(f"check: run {r + 1}: {walls[-1]:.2f}s, {got:,} suppressed")
        # The library call alone (no interpreter start-up, no output).
        from mailbox_processor import store

        lib = []
        for _ in range(rounds):
            db = store.open_db(db_path)
            t0 = time.perf_counter()
            n = len(list(store.check_addresses(db, lines)))
            lib.append(time.perf_counter() - t0)
            db.close()
            assert n == expected, (n, expected)
        startup = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mailbox_processor", "--version"],
                           capture_output=True, env=env, cwd=work, check=True)
            startup.append(time.perf_counter() - t0)
    wall = median(walls)
    how = f"median of {rounds}" if rounds > 1 else "1 run"
    figs = [
        Figure("check", f"check - : {n_addr:,} addresses vs {n_supp:,} suppressions ({how})",
               wall, "s", "< 1 s", wall < 1.0, note=f"{expected:,} suppressed found"),
        Figure("check", "  addresses/s (whole command)", n_addr / wall, "addr/s"),
        Figure("check", "  store.check_addresses alone", median(lib), "s"),
        Figure("check", "  interpreter + CLI start-up (--version)", median(startup), "s"),
    ]
    emit(figs, {"walls": walls, "library": lib, "startup": startup, "build_seconds": build_s,
                "expected_hits": expected, "pid": os.getpid()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
