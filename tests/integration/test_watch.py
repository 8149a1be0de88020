"""``watch`` against a real Dovecot: IDLE pick-up, polling, kicks, a server restart, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import sqlite_utils

from mailbox_processor import poller

from .conftest import ROOT, Dovecot, sample_messages, wait_for

pytestmark = pytest.mark.integration


def stored(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    db = sqlite_utils.Database(db_path)
    try:
        if "messages" not in db.table_names():
            return 0
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        db.close()


class Watcher:
    """``mailbox-processor watch`` in a child process, its log in a file."""

    def __init__(self, dovecot: Dovecot, user: str, tmp_path: Path, *extra: str) -> None:
        self.db = tmp_path / "w.db"
        self.log = tmp_path / "watch.log"
        self._err: IO[Any] = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailbox_processor", "watch", *dovecot.cli_args(user),
             "--db", str(self.db), "--json", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self._err, text=True,
        )

    def text(self) -> str:
        return self.log.read_text()

    def wait_log(self, needle: str, timeout: float = 10.0, count: int = 1) -> None:
        assert wait_for(lambda: self.text().count(needle) >= count, timeout), self.text()

    def stop(self) -> tuple[int, dict[str, Any]]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=15)
        self._err.close()
        return self.proc.returncode, (json.loads(out) if out.strip() else {})

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


@pytest.fixture
def watcher(dovecot: Dovecot, user: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Watcher] = []

    def start(*extra: str) -> Watcher:
        w = Watcher(dovecot, user, tmp_path, *extra)
        made.append(w)
        return w

    yield start
    for w in made:
        w.kill()


def test_watch_idle_picks_up_new_mail_and_survives_restart(
    dovecot: Dovecot, user: str, watcher: Any
) -> None:
    dovecot.append(user, sample_messages(3, tag=user + "a"))
    w = watcher()
    w.wait_log("watching (IMAP IDLE)")
    assert wait_for(lambda: stored(w.db) == 3, 10), w.text()

    # Another connection APPENDs: IDLE wakes the watcher (Dovecot notifies after ~0.5 s).
    t0 = time.monotonic()
    dovecot.append(user, sample_messages(1, tag=user + "b"))
    assert wait_for(lambda: stored(w.db) == 4, 5), w.text()
    assert time.monotonic() - t0 < 5

    # The server restarts under it: reconnect with backoff, then carry on.
    dovecot.restart()
    dovecot.append(user, sample_messages(2, tag=user + "c"))
    assert wait_for(lambda: stored(w.db) == 6, 20), w.text()
    assert "reconnecting in" in w.text() and "reconnected" in w.text()
    assert wait_for(lambda: dovecot.counts(user) == {"Processed": 6}, 5)

    code, summary = w.stop()
    assert code == 0, w.text()
    assert summary["new"] == 6 and summary["stopped"] is True


def test_watch_kicked_while_idle(dovecot: Dovecot, user: str, watcher: Any) -> None:
    w = watcher()
    w.wait_log("watching (IMAP IDLE)")
    time.sleep(0.3)  # let it enter IDLE
    dovecot.doveadm("kick", user)
    w.wait_log("watching (IMAP IDLE)", count=2, timeout=10)
    dovecot.append(user, sample_messages(2, tag=user))
    assert wait_for(lambda: stored(w.db) == 2, 5), w.text()
    code, _ = w.stop()
    assert code == 0


def test_watch_polls_without_idle(dovecot: Dovecot, user: str, watcher: Any) -> None:
    w = watcher("--no-idle", "--interval", "1")
    w.wait_log("watching (polling every 1s)")
    dovecot.append(user, sample_messages(2, tag=user))
    assert wait_for(lambda: stored(w.db) == 2, 5), w.text()
    code, summary = w.stop()
    assert code == 0 and summary["new"] == 2


def test_watch_wrong_password_exits(dovecot: Dovecot, user: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRONG_PW", "nope")
    args = dovecot.cli_args(user)
    args[args.index("--password-env") + 1] = "WRONG_PW"
    proc = subprocess.run([sys.executable, "-m", "mailbox_processor", "watch", *args, "--db",
                           str(tmp_path / "w.db")], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == poller.EXIT_CONNECTION
    assert "IMAP login failed" in proc.stderr
