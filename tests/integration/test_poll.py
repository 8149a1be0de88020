"""``poll`` against a real Dovecot: the corpus, post-actions, checkpoints and faults."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from mailbox_processor import cli, poller, store
from mailbox_processor.errors import SourceError
from mailbox_processor.sources.imap import ImapConnectionError, ImapSource

from .conftest import GARBAGE, ROOT, Dovecot, corpus_files, sample_messages, wait_for
from .imap_hooks import factory

pytestmark = pytest.mark.integration


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.cli, list(args), catch_exceptions=False)


def counts(db_path: Path) -> dict[str, int]:
    db = sqlite_utils.Database(db_path)
    try:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("messages", "bounces", "suppressions")}
    finally:
        db.close()


def _stored(db_path: Path) -> int:
    """Messages stored so far (0 while the database is still being created)."""
    try:
        return counts(db_path)["messages"] if db_path.exists() else 0
    except sqlite3.Error:
        return 0


def verdicts(db_path: Path) -> list[tuple[Any, ...]]:
    """Every (recipient, classification, reason, status) stored, sorted."""
    db = sqlite_utils.Database(db_path)
    try:
        return sorted(db.execute(
            "SELECT recipient, classification, reason, status FROM bounces").fetchall(),
            key=repr)
    finally:
        db.close()


def test_poll_corpus_matches_scan(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    """The whole shared corpus + fixtures through IMAP gives the same rows as ``scan``."""
    files = corpus_files()
    dovecot.append(user, [f.read_bytes() for f in files])
    db_path = tmp_path / "imap.db"
    res = invoke("poll", *dovecot.cli_args(user), "--db", str(db_path), "--json",
                 "--batch-size", "100", "--not-bounce-folder", "NotBounces")
    assert res.exit_code in (poller.EXIT_OK, poller.EXIT_QUARANTINED), res.stderr
    summary = json.loads(res.stdout)
    assert summary["messages"] == len(files)
    assert summary["batches"] == (len(files) + 99) // 100

    # The same files through ``scan`` (no IMAP): the same rows, the same verdicts.
    ref_path = tmp_path / "scan.db"
    scan = invoke("scan", *map(str, files), "--db", str(ref_path), "--json", "--quiet")
    ref_summary = json.loads(scan.stdout)
    got, want = counts(db_path), counts(ref_path)
    assert got == want
    assert got["messages"] == len(files) and summary["duplicates"] == 0
    assert verdicts(db_path) == verdicts(ref_path)
    assert summary["quarantined"] == ref_summary["quarantined"]
    assert summary["not_bounce"] == ref_summary["not_bounce"]
    assert (res.exit_code == poller.EXIT_QUARANTINED) == (summary["quarantined"] > 0)

    folders = dovecot.counts(user)
    assert "INBOX" not in folders
    assert folders.get("Quarantine", 0) == summary["quarantined"]
    assert sum(folders.values()) == len(files)
    assert folders.get("Processed", 0) + folders.get("NotBounces", 0) == (
        len(files) - summary["quarantined"])

    # A second run finds nothing and changes nothing.
    res2 = invoke("poll", *dovecot.cli_args(user), "--db", str(db_path), "--json")
    assert res2.exit_code == 0, res2.stderr
    assert json.loads(res2.stdout)["messages"] == 0
    assert counts(db_path) == got
    assert dovecot.counts(user) == folders


@pytest.mark.parametrize("bufsize", [None, 100])
def test_fetch_reads_what_imapclient_reads(dovecot: Dovecot, user: str,
                                           bufsize: int | None) -> None:
    """ImapSource.fetch (its own reader of the FETCH answer) against imapclient's fetch,
    the oracle, over the corpus; with a 100-byte read buffer, most responses straddle
    a refill and go through imaplib's reader instead."""
    files = corpus_files()
    dovecot.append(user, [f.read_bytes() for f in files])
    cfg = dovecot.config(user, after="keep")
    with ImapSource(cfg) as src:
        status = src.select()
        uids = src.uids_after(0, status.uidnext)
        if bufsize:
            imap = src.client._imap
            imap.file = imap.sock.makefile("rb", buffering=bufsize)
        got = [m for batch in poller.chunks(uids, 100) for m in src.fetch(batch,
                                                                        status.uidvalidity)]
        want = src.client.fetch(uids, ["BODY.PEEK[]"])
    assert len(uids) == len(files)
    assert [(m.uid, m.raw, m.error) for m in got] == [(u, want[u][b"BODY[]"], None)
                                                      for u in uids]


@pytest.mark.parametrize("every", [None, 4])
@pytest.mark.parametrize("after", ["keep", "seen", "delete", "move:Done/Bounces"])
def test_post_actions(dovecot: Dovecot, user: str, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch, after: str, every: int | None) -> None:
    """Each post-action, filed at the end (poll's default here) or every 4 UIDs."""
    if every:
        monkeypatch.setattr(poller, "FILE_EVERY", every)
    msgs = sample_messages(4, tag=user) + [GARBAGE] + sample_messages(3, tag=user + "b")
    dovecot.append(user, msgs)
    db_path = tmp_path / "b.db"
    res = invoke("poll", *dovecot.cli_args(user), "--db", str(db_path), "--after", after,
                 "--batch-size", "3", "--json")
    summary = json.loads(res.stdout)
    assert summary["messages"] == 8
    assert summary["batches"] == 3
    q = summary["quarantined"]
    assert sum(summary["filed"].values()) == 8 and summary["filed"].get("moved to Quarantine") == q
    folders = dovecot.counts(user)
    assert folders.get("Quarantine", 0) == q
    if after == "keep":
        assert folders["INBOX"] == 8 - q
        assert all(b"\\Seen" not in f for f in dovecot.flags(user))
    elif after == "seen":
        assert folders["INBOX"] == 8 - q
        assert all(b"\\Seen" in f for f in dovecot.flags(user))
    elif after == "delete":
        assert "INBOX" not in folders
        assert sum(folders.values()) == q
    else:
        assert "INBOX" not in folders
        assert folders["Done/Bounces"] == 8 - q
    # Nothing new on a second run, whatever the action left in INBOX.
    res2 = invoke("poll", *dovecot.cli_args(user), "--db", str(db_path), "--after", after,
                  "--json")
    assert json.loads(res2.stdout)["messages"] == 0, res2.stderr
    assert dovecot.counts(user) == folders


def test_checkpoint_only_new_messages(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    db_path = tmp_path / "b.db"
    dovecot.append(user, sample_messages(5, tag=user + "a"))
    r1 = invoke("poll", *dovecot.cli_args(user, "--after", "keep"), "--db", str(db_path),
                "--json")
    assert json.loads(r1.stdout)["new"] == 5
    dovecot.append(user, sample_messages(3, tag=user + "b"))
    r2 = invoke("poll", *dovecot.cli_args(user, "--after", "keep"), "--db", str(db_path),
                "--json")
    s2 = json.loads(r2.stdout)
    assert (s2["messages"], s2["new"], s2["duplicates"]) == (3, 3, 0)
    assert counts(db_path)["messages"] == 8


def test_uidvalidity_reset_rescans_without_double_counting(
    dovecot: Dovecot, user: str, tmp_path: Path
) -> None:
    db_path = tmp_path / "b.db"
    old = sample_messages(6, tag=user + "old")
    dovecot.append(user, old, folder="Bounces")
    args = dovecot.cli_args(user, "--folder", "Bounces", "--db", str(db_path), "--json")
    s1 = json.loads(invoke("poll", *args).stdout)
    assert s1["new"] == 6
    before = counts(db_path)
    # The folder is deleted and recreated: new UIDVALIDITY, UIDs start again at 1 (below
    # the checkpoint). The old messages come back, plus two new ones.
    with dovecot.client(user) as c:
        c.delete_folder("Bounces")
        c.create_folder("Bounces")
    dovecot.append(user, old + sample_messages(2, tag=user + "new"), folder="Bounces")
    res = invoke("poll", *args)
    s2 = json.loads(res.stdout)
    assert s2["rescanned"] is True
    assert (s2["messages"], s2["new"], s2["duplicates"]) == (8, 2, 6)
    after = counts(db_path)
    assert after["messages"] == before["messages"] + 2
    assert dovecot.counts(user) == {"Processed": 14}


def test_uidvalidity_changed_by_doveadm(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    db_path = tmp_path / "b.db"
    dovecot.append(user, sample_messages(4, tag=user))
    args = dovecot.cli_args(user, "--after", "keep", "--db", str(db_path), "--json")
    assert json.loads(invoke("poll", *args).stdout)["new"] == 4
    dovecot.doveadm("mailbox", "update", "-u", user, "--uid-validity", "12345", "INBOX")
    s = json.loads(invoke("poll", *args).stdout)
    assert (s["rescanned"], s["uidvalidity"], s["new"], s["duplicates"]) == (True, 12345, 0, 4)
    assert counts(db_path)["messages"] == 4


# -- faults --------------------------------------------------------------------------


def test_wrong_password(dovecot: Dovecot, user: str, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRONG_PW", "not-the-password-s3cret")
    args = dovecot.cli_args(user)
    args[args.index("--password-env") + 1] = "WRONG_PW"
    res = invoke("poll", *args, "--db", str(tmp_path / "b.db"))
    assert res.exit_code == poller.EXIT_CONNECTION
    assert "IMAP login failed for " + user in res.stderr
    assert "AUTHENTICATIONFAILED" in res.stderr
    assert "s3cret" not in res.stderr + res.stdout


def test_missing_password_is_config_error(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    args = dovecot.cli_args(user)
    args[args.index("--password-env") + 1] = "MP_TEST_UNSET_VARIABLE"
    res = invoke("poll", *args, "--db", str(tmp_path / "b.db"))
    assert res.exit_code == poller.EXIT_CONFIG
    assert "MP_TEST_UNSET_VARIABLE is not set" in res.stderr


def test_untrusted_certificate_refused(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    dovecot.append(user, sample_messages(2, tag=user))
    args = dovecot.cli_args(user)
    i = args.index("--cafile")
    del args[i : i + 2]
    res = invoke("poll", *args, "--db", str(tmp_path / "b.db"))
    assert res.exit_code == poller.EXIT_CONNECTION
    assert "not trusted" in res.stderr and "--cafile" in res.stderr
    assert dovecot.counts(user) == {"INBOX": 2}  # untouched
    # STARTTLS on the plain port checks the certificate the same way.
    res = invoke("poll", *args, "--tls", "starttls", "--port", str(dovecot.port),
                 "--db", str(tmp_path / "b.db"))
    assert res.exit_code == poller.EXIT_CONNECTION and "not trusted" in res.stderr
    # --insecure is the explicit way out.
    res = invoke("poll", *args, "--insecure", "--db", str(tmp_path / "b.db"), "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["new"] == 2


def test_starttls_and_explicit_plaintext(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    dovecot.append(user, sample_messages(3, tag=user))
    res = invoke("poll", *dovecot.cli_args(user, "--tls", "starttls", "--port",
                                           str(dovecot.port)),
                 "--db", str(tmp_path / "b.db"), "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["new"] == 3
    # Plaintext only when asked for by name (loopback counts as secure for Dovecot).
    dovecot.append(user, sample_messages(2, tag=user + "p"))
    res = invoke("poll", *dovecot.cli_args(user, "--tls", "plain", "--port", str(dovecot.port)),
                 "--db", str(tmp_path / "b.db"), "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["new"] == 2


def test_second_poll_on_same_mailbox_exits_at_once(
    dovecot: Dovecot, user: str, tmp_path: Path
) -> None:
    cfg = dovecot.config(user)
    with poller.mailbox_lock(cfg):
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "mailbox_processor", "poll", *dovecot.cli_args(user),
             "--db", str(tmp_path / "b.db")],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ),
        )
        assert time.monotonic() - t0 < 10
    assert proc.returncode == poller.EXIT_LOCKED, proc.stderr
    assert "is busy: another poll or watch" in proc.stderr


def test_two_polls_at_once(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    """Started together: one works, the other exits 5 (or runs after it, finding nothing)."""
    dovecot.append(user, sample_messages(150, tag=user))
    db_path = tmp_path / "b.db"
    cmd = [sys.executable, "-m", "mailbox_processor", "poll", *dovecot.cli_args(user),
           "--db", str(db_path), "--batch-size", "10", "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, poller.EXIT_LOCKED]), outs
    assert counts(db_path)["messages"] == 150
    fetched = sum(json.loads(o[0])["messages"] for o, p in zip(outs, procs, strict=True)
                  if p.returncode == 0)
    assert fetched == 150
    assert dovecot.counts(user) == {"Processed": 150}


@pytest.mark.parametrize(
    ("where", "every", "filed", "duplicates"),
    [
        ("fetch", 10, 10, 0),  # batch 1 committed and filed, batch 2 fetched, not stored
        ("move", 10, 20, 10),  # batches 1-2 filed, batch 3 committed, not filed
        # Filed as poll does by default: first once all is fetched (all but the
        # LOOKAHEAD batches with the parsers committed by then); kicked then, none filed.
        ("move", None, 0, 60 - 10 * poller.LOOKAHEAD),
    ],
)
def test_connection_kicked_mid_run(dovecot: Dovecot, user: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, where: str,
                                   every: int | None, filed: int, duplicates: int) -> None:
    """``doveadm kick`` on a FETCH after the first commit (before its batch is stored)
    or on a MOVE (after its batches are committed, before they are filed); the next run
    finishes the job. Filed every batch (``every`` = the batch size), the kick hits the
    3rd MOVE; filed as poll does by default, its first."""
    if every:
        monkeypatch.setattr(poller, "FILE_EVERY", every)
    dovecot.append(user, sample_messages(60, tag=user))
    cfg = dovecot.config(user, batch_size=10)
    db = store.open_db(tmp_path / "b.db")
    # Fetches run LOOKAHEAD batches ahead of the commits.
    at = {"fetch": poller.LOOKAHEAD + 2, "move": 3 if every else 1}[where]

    def kick(n: int) -> None:
        if n == at:
            dovecot.doveadm("kick", user)
            # Gone before the command is sent: the MOVE may be the run's last one.
            assert wait_for(lambda: user not in dovecot.doveadm("who", check=False).stdout)

    with pytest.raises(ImapConnectionError):
        poller.poll(db, cfg, client_factory=factory({where: kick}))
    stored = counts(tmp_path / "b.db")["messages"]
    assert store.get_checkpoint(db, cfg.identity, "INBOX")[1] == stored
    assert stored == filed + duplicates
    assert dovecot.counts(user) == {"INBOX": 60 - filed, **({"Processed": filed} if filed else {})}
    result = poller.poll(db, cfg)
    assert counts(tmp_path / "b.db")["messages"] == 60
    assert counts(tmp_path / "b.db")["suppressions"] == 60
    assert result.summary.duplicates == duplicates
    assert result.filed == {"moved to Processed": 60 - filed}
    assert dovecot.counts(user) == {"Processed": 60}


def test_server_without_move(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    """No MOVE advertised: COPY + STORE \\Deleted + UID EXPUNGE, and MOVE is never sent."""
    dovecot.append(user, sample_messages(25, tag=user) + [GARBAGE])

    def no_move(n: int) -> None:
        raise AssertionError("MOVE sent to a server that does not advertise it")

    cfg = dovecot.config(user, batch_size=10)
    db = store.open_db(tmp_path / "b.db")
    result = poller.poll(db, cfg, client_factory=factory({"move": no_move}, hide=(b"MOVE",)))
    assert result.summary.messages == 26
    folders = dovecot.counts(user)
    assert "INBOX" not in folders
    assert folders["Processed"] + folders.get("Quarantine", 0) == 26
    with dovecot.client(user) as c:  # nothing left behind flagged \Deleted either
        c.select_folder("INBOX")
        assert c.search() == []


# -- SIGKILL -------------------------------------------------------------------------

_KILL_SCRIPT = """
import os, signal, sys
from mailbox_processor import poller, store
from mailbox_processor.config import build_mailbox
from imap_hooks import factory
cfg = build_mailbox("k", dict(host="127.0.0.1", port=int(sys.argv[1]), user=sys.argv[2],
    password_env="KPW", cafile=sys.argv[3], batch_size=10, after=sys.argv[6]))
hook, nth = sys.argv[4], int(sys.argv[5])
if sys.argv[8] != "default":
    poller.FILE_EVERY = int(sys.argv[8])
def die(n):
    if n == nth:
        os.kill(os.getpid(), signal.SIGKILL)
hide = (b"MOVE",) if hook in ("add_flags", "uid_expunge", "copy") else ()
poller.poll(store.open_db(sys.argv[7]), cfg, client_factory=factory({hook: die}, hide=hide))
"""


@pytest.mark.parametrize(
    ("hook", "nth", "after", "every"),
    [
        ("fetch", 3, "move:Processed", "10"),  # killed before batch 3 is fetched
        ("move", 2, "move:Processed", "10"),  # batch 2 committed, not moved
        ("uid_expunge", 2, "move:Processed", "10"),  # no MOVE: copied + \\Deleted, not expunged
        ("add_flags", 2, "seen", "10"),  # committed, not flagged \\Seen
        ("add_flags", 2, "delete", "10"),  # committed, not deleted
        # Filed as poll does by default: first once all is fetched (all but the
        # LOOKAHEAD batches with the parsers are committed by then), killed then.
        ("move", 1, "move:Processed", "default"),
        ("uid_expunge", 1, "move:Processed", "default"),
        ("add_flags", 1, "seen", "default"),
        ("add_flags", 1, "delete", "default"),
        # Filed every 20 UIDs: batches 1-2 are filed, then batch 3 once all is fetched;
        # killed on that second filing.
        ("move", 2, "move:Processed", "20"),
    ],
)
def test_sigkill_then_rerun(dovecot: Dovecot, user: str, tmp_path: Path, hook: str, nth: int,
                            after: str, every: str) -> None:
    """SIGKILL at a precise point, then a normal run: same result as one clean run."""
    dovecot.append(user, sample_messages(45, tag=user) + [GARBAGE])
    db_path = tmp_path / "b.db"
    env = dict(os.environ, KPW=f"{user}pw", PYTHONPATH=f"{ROOT}:{ROOT / 'tests' / 'integration'}")
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(dovecot.port_tls), user, dovecot.ca, hook,
         str(nth), after, str(db_path), every],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if hook != "fetch":  # killed while filing: what was committed by then
        assert counts(db_path)["messages"] == {"10": 20, "20": 30,
                                                "default": 50 - 10 * poller.LOOKAHEAD}[every]
    res = invoke("poll", *dovecot.cli_args(user), "--after", after, "--db", str(db_path),
                 "--json")
    assert res.exit_code in (0, poller.EXIT_QUARANTINED), res.stderr
    got = counts(db_path)
    assert got["messages"] == 46
    assert got["suppressions"] == 45  # one hard bounce per sample address, none twice
    folders = dovecot.counts(user)
    q = folders.get("Quarantine", 0)
    if after == "move:Processed":
        assert folders == {"Processed": 46 - q, **({"Quarantine": q} if q else {})}
    elif after == "seen":
        assert folders["INBOX"] == 46 - q
        assert all(b"\\Seen" in f for f in dovecot.flags(user))
    else:
        assert "INBOX" not in folders
    with dovecot.client(user) as c:
        c.select_folder("INBOX")
        assert len(c.search(["DELETED"])) == 0


def test_sigkill_real_cli_at_random_points(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    """The real command, killed -9 three times at arbitrary moments, then run to the end."""
    n = 400
    dovecot.append(user, sample_messages(n, tag=user))
    db_path = tmp_path / "b.db"
    cmd = [sys.executable, "-m", "mailbox_processor", "poll", *dovecot.cli_args(user),
           "--db", str(db_path), "--batch-size", "20", "--quiet"]
    for delay in (0.8, 1.1, 1.4):
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    final = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert counts(db_path)["messages"] == n
    assert counts(db_path)["suppressions"] == n
    assert dovecot.counts(user) == {"Processed": n}


def test_sigterm_finishes_current_batch(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    # Enough that the run is surely still going when the signal comes (300 were once:
    # a poll that had finished and removed its handler was killed by the SIGTERM).
    total = 3000
    dovecot.append(user, sample_messages(total, tag=user))
    db_path = tmp_path / "b.db"
    cmd = [sys.executable, "-m", "mailbox_processor", "poll", *dovecot.cli_args(user),
           "--db", str(db_path), "--batch-size", "10", "--json"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    # Once the first batch is committed the handler is surely installed: stop mid-run.
    assert wait_for(lambda: _stored(db_path) > 0, 30)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    s = json.loads(out)
    c = counts(db_path)["messages"]
    assert c == s["messages"]
    folders = dovecot.counts(user)
    assert folders.get("Processed", 0) == c  # every stored message filed, none half-done
    assert 0 < c < total and folders.get("INBOX", 0) == total - c


def test_source_error_is_typed(dovecot: Dovecot, tmp_path: Path) -> None:
    """A mailbox the server cannot open: SourceError with the server's words, exit 4."""
    cfg = dovecot.config("brokenmail", password_env="BMPW")
    os.environ["BMPW"] = "brokenmailpw"
    with pytest.raises(SourceError, match="SERVERBUG|Internal error"):
        poller.poll(store.open_db(tmp_path / "b.db"), cfg)


def test_config_file_with_two_mailboxes(dovecot: Dovecot, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A TOML file names two mailboxes; one login fails: the other is still polled, and
    the exit status reports the failure (4), not the quarantine (6)."""
    good, bad = dovecot.new_user(), dovecot.new_user()
    dovecot.append(good, sample_messages(3, tag=good) + [GARBAGE])
    dovecot.append(bad, sample_messages(2, tag=bad))
    (tmp_path / "pw").write_text(f"{good}pw\n")
    conf = tmp_path / "mp.toml"
    conf.write_text(f"""
host = "127.0.0.1"
port = {dovecot.port_tls}
cafile = "{dovecot.ca}"
after = "move:Archive"
[mailboxes.good]
user = "{good}"
password_file = "{tmp_path / 'pw'}"
[mailboxes.bad]
user = "{bad}"
password_command = "echo wrong"
""")
    conf.chmod(0o600)
    res = invoke("poll", "--config", str(conf), "--db", str(tmp_path / "b.db"), "--json")
    assert res.exit_code == poller.EXIT_CONNECTION
    assert f"IMAP login failed for {bad}" in res.stderr
    (summary,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert (summary["name"], summary["new"], summary["quarantined"]) == ("good", 3, 1)
    assert dovecot.counts(good) == {"Archive": 3, "Quarantine": 1}
    assert dovecot.counts(bad) == {"INBOX": 2}


def test_missing_folder(dovecot: Dovecot, user: str, tmp_path: Path) -> None:
    res = invoke("poll", *dovecot.cli_args(user, "--folder", "NoSuchFolder"),
                 "--db", str(tmp_path / "b.db"))
    assert res.exit_code == poller.EXIT_CONNECTION
    assert "IMAP SELECT NoSuchFolder failed" in res.stderr and "check --folder" in res.stderr


def test_secret_never_in_output_logs_or_database(dovecot: Dovecot, user: str,
                                                 tmp_path: Path) -> None:
    dovecot.append(user, sample_messages(3, tag=user) + [GARBAGE])
    db_path = tmp_path / "b.db"
    secret = f"{user}pw".encode()
    res = invoke("poll", *dovecot.cli_args(user), "--db", str(db_path), "--verbose", "--json")
    assert res.exit_code == poller.EXIT_QUARANTINED, res.stderr
    assert secret.decode() not in res.stdout + res.stderr
    for f in tmp_path.glob("b.db*"):  # the database, its WAL and shared memory
        assert secret not in f.read_bytes(), f
