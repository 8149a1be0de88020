"""End-to-end poll and its memory, against a throwaway local Dovecot.

The server is started by tests/dovecot/dovecot-test-server.sh on free loopback ports
in a fresh directory, and always stopped at the end (then the directory is removed).

poll: N bounces (bench/corpus.py) are APPENDed to one user's INBOX (MULTIAPPEND, 500
per command). Then, over implicit TLS with certificate checks, as poll connects:

- raw FETCH: an imapclient loop that only does ``UID FETCH BODY.PEEK[]`` of the same
  UIDs in batches of poll's default batch size (500); a fresh connection each run,
  median of the runs (it does not change the mailbox);
- poll: ``python -m mailbox_processor poll`` with its default post-action
  (``move:Processed``) and batch size, into a fresh database: wall time of the
  whole command, interpreter start-up included.

poll floor: ``bench/poll_floor.py`` on the same N messages in another user's INBOX: the
same connection, FETCH reader, parser processes and filing as ``poll``, with nothing
stored (no database, raw copy or policy); wall time of the whole command too.

memory: peak RSS of the ``poll`` process on N1 and on N2 messages (two users, fresh
databases), read by GNU ``/usr/bin/time -f %M``. Not ``os.wait4``/``RUSAGE_CHILDREN`` of a
child started from this script: Linux carries the parent's RSS high-water mark into a
child across fork + exec, so every poll would report at least this process's size
(the 100,000 messages it holds).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
from common import ROOT, Figure, emit, log, median, profile_report, worker_args  # noqa: E402

from mailbox_processor.sources import DEFAULT_BATCH_SIZE  # noqa: E402

SCRIPT = ROOT / "tests" / "dovecot" / "dovecot-test-server.sh"
APPEND_BATCH = 500
FETCH_BATCH = DEFAULT_BATCH_SIZE  # poll's default --batch-size (and scan's)
PW_ENV = "MP_BENCH_IMAP_PASSWORD"
TIME = "/usr/bin/time"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    dir: Path
    port: int
    port_tls: int
    ca: str

    def client(self, user: str, *, tls: bool = True, timeout: float = 300) -> Any:
        from imapclient import IMAPClient

        if tls:
            ctx = ssl.create_default_context(cafile=self.ca)
            c = IMAPClient("127.0.0.1", port=self.port_tls, ssl=True, ssl_context=ctx,
                           timeout=timeout)
        else:
            c = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=timeout)
        c.login(user, user + "pw")
        return c


@contextmanager
def dovecot(users: list[str]) -> Iterator[Server]:
    """Start a throwaway Dovecot with ``users`` (password = name + "pw"); always stop it."""
    if shutil.which("dovecot") is None:
        raise SystemExit("dovecot is not installed: apt-get install -y dovecot-imapd")
    d = Path(tempfile.mkdtemp(prefix="mp-bench-dovecot-"))
    env = dict(os.environ, DOVECOT_TEST_USERS=" ".join(f"{u}:{u}pw" for u in users))
    server = None
    error = ""
    try:
        for _ in range(3):  # a probed free port can be taken before dovecot binds it
            pp, pt = _free_port(), _free_port()
            r = subprocess.run(["bash", str(SCRIPT), "start", str(d), str(pp), str(pt)],
                               capture_output=True, text=True, env=env, timeout=60)
            if r.returncode == 0:
                server = Server(dir=d, port=pp, port_tls=pt, ca=str(d / "cert.pem"))
                break
            error = r.stderr + r.stdout
        if server is None:
            raise RuntimeError(f"dovecot did not start: {error}")
        log(f"dovecot: started on 127.0.0.1:{server.port} (TLS {server.port_tls}) in {d}")
        yield server
    finally:
        # Stop before removing the directory (the script needs run/master.pid).
        subprocess.run(["bash", str(SCRIPT), "stop", str(d)], capture_output=True, text=True,
                       timeout=120)
        log("dovecot: stopped")
        shutil.rmtree(d, ignore_errors=True)


def server_cpu(server: Server) -> float:
    """CPU seconds (user + system) used so far by the Dovecot instance: its master and
    every process below it, with the children they have reaped (a finished imap
    session is counted in its parent's)."""
    master = int((server.dir / "run" / "master.pid").read_text().split()[0])
    stats: dict[int, tuple[int, list[str]]] = {}  # pid -> (ppid, fields after "(comm)")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            stats[int(entry.name)] = (int(fields[1]), fields)

    def below_master(pid: int) -> bool:
        while pid > 1:
            if pid == master:
                return True
            pid = stats[pid][0] if pid in stats else 0
        return False

    ticks = sum(sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
                for pid, (_, fields) in stats.items() if below_master(pid))
    return ticks / os.sysconf("SC_CLK_TCK")


def append(server: Server, user: str, messages: list[bytes]) -> float:
    """MULTIAPPEND ``messages`` to ``user``'s INBOX; return the rate (msgs/s)."""
    t0 = time.perf_counter()
    with server.client(user, tls=False) as c:
        for i in range(0, len(messages), APPEND_BATCH):
            typ, data = c.multiappend("INBOX", messages[i : i + APPEND_BATCH])
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
    return len(messages) / (time.perf_counter() - t0)


def raw_fetch(server: Server, user: str) -> tuple[float, int, int]:
    """Fetch every message of INBOX with UID FETCH BODY.PEEK[]; return (s, msgs, bytes)."""
    t0 = time.perf_counter()
    got = size = 0
    with server.client(user) as c:
        c.select_folder("INBOX", readonly=True)
        uids = c.search("ALL")
        for i in range(0, len(uids), FETCH_BATCH):
            data = c.fetch(uids[i : i + FETCH_BATCH], ["BODY.PEEK[]"])
            for item in data.values():
                size += len(item[b"BODY[]"])
                got += 1
    return time.perf_counter() - t0, got, size


def folder_counts(server: Server, user: str) -> dict[str, int]:
    with server.client(user, tls=False) as c:
        out = {}
        for _flags, _sep, name in c.list_folders():
            out[name] = int(c.folder_status(name, ["MESSAGES"])[b"MESSAGES"])
        return out


def _poll_env(user: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_PROCESSOR_")}
    env.update({PW_ENV: user + "pw", "XDG_CONFIG_HOME": str(work / "config"),
                "MAILBOX_PROCESSOR_LOCK_DIR": str(work / "locks")})
    return env


def _poll_args(server: Server, user: str, work: Path) -> list[str]:
    return ["-m", "mailbox_processor", "poll", "--host", "127.0.0.1",
            "--port", str(server.port_tls), "--user", user, "--password-env", PW_ENV,
            "--cafile", server.ca, "--db", str(work / f"{user}.db"), "--quiet", "--json"]


def profile_poll(server: Server, user: str, work: Path, top: int = 30) -> str:
    """Run ``poll`` once under cProfile; return its top functions."""
    out = work / f"{user}.prof"
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out),
                    *_poll_args(server, user, work)], cwd=work, env=_poll_env(user, work),
                   capture_output=True, check=False)
    return profile_report(str(out), top)


def _run_timed(args: list[str], user: str, work: Path, what: str,
               ok: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Run ``python *args`` once as a child process under GNU time, in ``work`` with
    poll's environment for ``user``; return its wall and CPU seconds, peak RSS, exit
    status and standard output. Raises when the exit status is not in ``ok``."""
    out_path, err_path = work / f"{user}.out", work / f"{user}.err"
    rss_path = work / f"{user}.rss"
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"{TIME} is missing (GNU time, apt-get install -y time): it measures "
                         f"{what}'s peak RSS and CPU")
    cmd = [TIME, "-f", "%M %U %S", "-o", str(rss_path), sys.executable, *args]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=out, stderr=err, cwd=work, env=_poll_env(user, work))
        wall = time.perf_counter() - t0
    code = proc.returncode
    if code not in ok:
        raise RuntimeError(f"{what} exit {code}: {err_path.read_text(errors='replace')[-2000:]}")
    # GNU time writes "Command exited with non-zero status N" first when N != 0.
    maxrss_kb, utime, stime = rss_path.read_text().split("\n")[-2].split()
    return {"wall": wall, "maxrss_mb": int(maxrss_kb) / 1024, "exit": code,
            "cpu": float(utime) + float(stime), "stdout": out_path.read_text(errors="replace")}


def run_poll(server: Server, user: str, work: Path) -> dict[str, Any]:
    """Run ``poll`` once as a child process; return wall seconds, maxrss, its summary."""
    res = _run_timed(_poll_args(server, user, work), user, work, "poll", ok=(0, 6))
    lines = res.pop("stdout").splitlines()
    res["summary"] = json.loads([ln for ln in lines if ln.strip().startswith("{")][-1])
    return res


def run_floor(server: Server, user: str, work: Path) -> dict[str, Any]:
    """Run bench/poll_floor.py once as a child process (as :func:`run_poll` runs
    ``poll``); return its wall seconds, CPU seconds and the messages it filed."""
    args = [str(Path(__file__).resolve().parent / "poll_floor.py"), "--host", "127.0.0.1",
            "--port", str(server.port_tls), "--user", user, "--password-env", PW_ENV,
            "--cafile", server.ca]
    res = _run_timed(args, user, work, "poll floor")
    res["messages"] = int(json.loads(res.pop("stdout").strip().splitlines()[-1])["messages"])
    return res


def classify_rate(messages: list[bytes]) -> float:
    from mailbox_processor import parse_message

    for raw in messages[:406]:
        parse_message(raw)
    t0 = time.perf_counter()
    for raw in messages:
        parse_message(raw)
    return len(messages) / (time.perf_counter() - t0)


def main() -> int:
    args = worker_args()
    poll_n = int(args.get("poll_messages", 20_000))
    mem_sizes = [int(x) for x in args.get("memory_messages", [20_000, 100_000])]
    rounds = int(args.get("rounds", 3))
    do_poll = bool(args.get("poll", True))
    do_memory = bool(args.get("memory", True))
    small_n = mem_sizes[0] if not do_poll else poll_n
    sizes = sorted({small_n, *(mem_sizes if do_memory else [])})
    log(f"imap: building {max(sizes):,} messages")
    messages = corpus.build(max(sizes))
    figs: list[Figure] = []
    extra: dict[str, Any] = {"pid": os.getpid()}
    users = [f"u{n}" for n in sizes]
    profile_n = min(5_000, small_n) if args.get("profile") else 0
    if do_poll:
        users.append("floor")
    if profile_n:
        users.append("prof")
    polls: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mp-bench-poll-") as tmp, dovecot(users) as server:
        work = Path(tmp)
        for n, user in zip(sizes, users[: len(sizes)], strict=True):
            rate = append(server, user, messages[:n])
            log(f"imap: appended {n:,} to {user} at {rate:,.0f}/s")
            extra[f"append_rate_{n}"] = rate
            if n == small_n and do_poll:
                fetch_s = []
                for r in range(rounds):
                    secs, got, size = raw_fetch(server, user)
                    if got != n:
                        raise RuntimeError(f"raw FETCH got {got} of {n} messages")
                    fetch_s.append(secs)
                    log(f"imap: raw FETCH run {r + 1}: {n / secs:,.0f}/s ({size / 1e6:.0f} MB)")
                extra["raw_fetch_seconds"] = fetch_s
            log(f"imap: poll of {n:,} ({user})")
            before = server_cpu(server)
            res = run_poll(server, user, work)
            res["server_cpu"] = server_cpu(server) - before
            counts = folder_counts(server, user)
            res["folders"] = counts
            summ = res["summary"]
            fetched = int(summ.get("messages", summ.get("counts", {}).get("fetched", -1)))
            if fetched != n or counts.get("INBOX", 0) != 0:
                raise RuntimeError(f"poll of {user} did not take every message: "
                                   f"fetched {fetched} of {n}, folders {counts}")
            log(f"imap: poll {n:,}: {n / res['wall']:,.0f}/s, peak RSS {res['maxrss_mb']:.1f} MB,"
                f" folders {counts}")
            polls[n] = res
            if n == small_n and do_poll:
                append(server, "floor", messages[:n])
                log(f"imap: poll floor of {n:,} (FETCH + parse + MOVE, nothing stored)")
                before = server_cpu(server)
                floor = run_floor(server, "floor", work)
                floor["server_cpu"] = server_cpu(server) - before
                counts = folder_counts(server, "floor")
                if floor["messages"] != n or counts.get("INBOX", 0) != 0:
                    raise RuntimeError(f"poll floor did not take every message: parsed "
                                       f"{floor['messages']} of {n}, folders {counts}")
                log(f"imap: poll floor {n:,}: {n / floor['wall']:,.0f}/s")
                extra["floor"] = floor
        if profile_n:
            append(server, "prof", messages[:profile_n])
            log(f"imap: poll of {profile_n:,} under cProfile")
            extra["profile"] = f"poll of {profile_n:,} messages:\n" + profile_poll(
                server, "prof", work)
    extra["polls"] = {str(k): v for k, v in polls.items()}

    if do_poll:
        n = small_n
        poll_rate = n / polls[n]["wall"]
        fetch_rate = n / median(extra["raw_fetch_seconds"])
        how = f"median of {rounds}" if rounds > 1 else "1 run"
        given = args.get("classify_rate")
        if given:
            crate, where = float(given), "from the classify benchmark of this run"
        else:
            log(f"imap: classify-only rate on the same {n:,} messages")
            crate, where = classify_rate(messages[:n]), f"measured here on the {n:,}"
        slower = min(fetch_rate, crate)
        figs += [
            Figure("poll", f"poll, default post-action move:Processed ({n:,} msgs, 1 run)",
                   poll_rate, "emails/s", note="wall time of the command, start-up included"),
            Figure("poll", f"raw imapclient UID FETCH BODY.PEEK[] x{FETCH_BATCH} ({how})",
                   fetch_rate, "emails/s"),
            Figure("poll", "classify-only (parse_message)", crate, "emails/s", note=where),
            Figure("poll", "poll / raw FETCH", poll_rate / fetch_rate, "x"),
            Figure("poll", "poll / slower of (raw FETCH, classify-only)",
                   100 * poll_rate / slower, "%", ">= 80 %", poll_rate / slower >= 0.80),
        ]
        # The floor: the same reading, parsing and filing with nothing stored. Its
        # ratio says whether the IMAP side keeps up with parsing; poll / floor is
        # what the database, the raw copy and the policy cost.
        floor = extra["floor"]
        floor_rate = n / floor["wall"]
        figs += [
            Figure("poll", "poll floor: FETCH + parse + MOVE, nothing stored (1 run)",
                   floor_rate, "emails/s", note="bench/poll_floor.py, start-up included"),
            Figure("poll", "  poll floor / slower of (raw FETCH, classify-only)",
                   100 * floor_rate / slower, "%"),
            Figure("poll", "  poll / poll floor", 100 * poll_rate / floor_rate, "%",
                   note="what storing costs"),
            Figure("poll", "  CPU of the poll floor command", 1e6 * floor["cpu"] / n,
                   "us/msg", note=f"Dovecot: {1e6 * floor['server_cpu'] / n:.1f} us/msg"),
        ]
        # Where the CPU of the poll went: the command (main + parser processes, GNU
        # time) and the server. Both share this machine's cores.
        ours_us = 1e6 * polls[n]["cpu"] / n
        server_us = 1e6 * polls[n]["server_cpu"] / n
        cores = os.cpu_count() or 1
        limit = cores * 1e6 / (ours_us + server_us)
        figs += [
            Figure("poll", "  CPU of the poll command (main + parser processes)", ours_us,
                   "us/msg"),
            Figure("poll", "  CPU of Dovecot during the poll (FETCH, MOVE, TLS)", server_us,
                   "us/msg"),
            Figure("poll", f"  poll / CPU limit ({cores} cores / both CPU figures)",
                   100 * poll_rate / limit, "%", note=f"limit {limit:,.0f} emails/s"),
        ]
    if do_memory:
        a, b = mem_sizes[0], mem_sizes[-1]
        ra, rb = polls[a]["maxrss_mb"], polls[b]["maxrss_mb"]
        figs += [
            Figure("memory", f"poll peak RSS, {a:,} msgs", ra, "MB"),
            Figure("memory", f"poll peak RSS, {b:,} msgs", rb, "MB",
                   note=f"{b / polls[b]['wall']:,.0f} emails/s"),
            Figure("memory", f"peak RSS {b:,} / {a:,}", rb / ra, "x", "< 1.2x", rb / ra < 1.2),
        ]
    emit(figs, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
