"""A real, throwaway Dovecot for the IMAP tests (tests/dovecot/dovecot-test-server.sh).

One server per session, on free loopback ports, with its own config, certificate and
users under a ``mkdtemp`` directory (pytest's tmp dirs are 0700 and the mail processes
run as ``dovecot``: see the recipe's gotcha 4). Every test gets its own IMAP user, so
tests never see each other's folders, and ``doveadm kick`` hits only that test.

Never skipped: without Dovecot the session fails (``scripts/test.sh`` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from mailbox_processor.config import MailboxConfig, build_mailbox

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "dovecot" / "dovecot-test-server.sh"
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"
FIXTURES = ROOT / "fixtures"

#: One IMAP user per test (password = name + "pw"), created up front: passwd-file
#: reloads are unreliable mid-run (recipe gotcha 12).
N_USERS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    """The running test server and helpers to drive it."""

    dir: Path
    conf: str
    ca: str
    log: Path
    port: int
    port_tls: int
    host: str = "127.0.0.1"
    _next_user: int = 0
    _users: list[str] = field(default_factory=lambda: [f"t{i:02d}" for i in range(N_USERS)])

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["doveadm", "-c", self.conf, *args], capture_output=True,
                              text=True, check=check, timeout=30)

    def new_user(self) -> str:
        if self._next_user >= len(self._users):
            raise RuntimeError("out of test users: raise N_USERS in tests/integration/conftest")
        user = self._users[self._next_user]
        self._next_user += 1
        return user

    def start(self) -> None:
        env = dict(os.environ, DOVECOT_TEST_USERS=" ".join(f"{u}:{u}pw" for u in self._users))
        r = subprocess.run(["bash", str(SCRIPT), "start", str(self.dir), str(self.port),
                            str(self.port_tls)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"dovecot start failed: {r.stderr}{r.stdout}")

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.dir)], capture_output=True,
                       text=True, check=True, timeout=60)

    def restart(self) -> None:
        self.stop()
        self.start()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def client(self, user: str) -> IMAPClient:
        c = IMAPClient(self.host, port=self.port_tls, ssl=True, ssl_context=self.ssl_context(),
                       timeout=30)
        c.login(user, f"{user}pw")
        return c

    def config(self, user: str, **settings: Any) -> MailboxConfig:
        """A MailboxConfig for ``user`` over implicit TLS, trusting the test CA."""
        values: dict[str, Any] = {"host": self.host, "port": self.port_tls, "user": user,
                                  "password_env": "MP_TEST_PASSWORD_" + user.upper(),
                                  "cafile": self.ca, "batch_size": 50}
        os.environ[values["password_env"]] = f"{user}pw"
        values.update(settings)
        return build_mailbox(user, values)

    def cli_args(self, user: str, *extra: str) -> list[str]:
        """Flags for ``poll``/``watch`` as ``user`` (password from an env variable)."""
        os.environ["MP_TEST_PASSWORD_" + user.upper()] = f"{user}pw"
        return ["--host", self.host, "--port", str(self.port_tls), "--user", user,
                "--password-env", "MP_TEST_PASSWORD_" + user.upper(), "--cafile", self.ca,
                *extra]

    # -- mailbox helpers --------------------------------------------------------------

    def append(self, user: str, messages: Sequence[bytes], folder: str = "INBOX") -> None:
        with self.client(user) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for i in range(0, len(messages), 200):
                typ, data = c.multiappend(folder, list(messages[i : i + 200]))
                if typ != "OK":  # imapclient returns NO instead of raising
                    raise RuntimeError(f"APPEND to {user}/{folder} failed: {data!r}")

    def counts(self, user: str) -> dict[str, int]:
        """Messages per folder (not counting those flagged \\Deleted)."""
        out = {}
        with self.client(user) as c:
            for flags, _sep, name in c.list_folders():
                if {f.lower() for f in flags} & {b"\\noselect", b"\\nonexistent"}:
                    continue
                c.select_folder(name, readonly=True)
                n = len(c.search(["UNDELETED"]))
                if n:
                    out[name] = n
        return out

    def flags(self, user: str, folder: str = "INBOX") -> list[tuple[bytes, ...]]:
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search()
            return [v[b"FLAGS"] for v in c.fetch(uids, ["FLAGS"]).values()] if uids else []


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if shutil.which("dovecot") is None or not SCRIPT.is_file():
        pytest.fail("dovecot is not installed: run ./scripts/test.sh (it apt-get installs "
                    "dovecot-imapd) or apt-get install -y dovecot-imapd")
    d = Path(tempfile.mkdtemp(prefix="mp-dovecot-"))
    server = None
    last_error: Exception | None = None
    for _ in range(3):  # a free port can be taken between probe and bind: retry
        candidate = Dovecot(dir=d, conf=str(d / "dovecot.conf"), ca=str(d / "cert.pem"),
                            log=d / "dovecot.log", port=_free_port(), port_tls=_free_port())
        try:
            candidate.start()
        except RuntimeError as exc:
            last_error = exc
            continue
        server = candidate
        break
    if server is None:
        shutil.rmtree(d, ignore_errors=True)
        pytest.fail(str(last_error))
    try:
        yield server
    finally:
        server.stop()  # before rmtree: recipe gotcha 15
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    """A fresh IMAP user (empty mailbox) for this test."""
    return dovecot.new_user()


@pytest.fixture(autouse=True)
def _isolated_lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOX_PROCESSOR_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("MAILBOX_PROCESSOR_DB", raising=False)
    monkeypatch.delenv("MAILBOX_PROCESSOR_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def _dovecot_log_on_failure(request: pytest.FixtureRequest, dovecot: Dovecot) -> Iterator[None]:
    start = dovecot.log.stat().st_size if dovecot.log.exists() else 0
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and dovecot.log.exists():
        with dovecot.log.open("rb") as fh:
            fh.seek(start)
            tail = fh.read()[-4000:].decode(errors="replace")
        print(f"\n--- dovecot.log during this test ---\n{tail}", file=sys.stderr)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, "rep_" + rep.when, rep)


# -- messages ------------------------------------------------------------------------


#: Fixture files larger than this are left out (make_large.py's 50 MB message would
#: make the suite slow without testing anything IMAP-specific).
MAX_FIXTURE_BYTES = 2_000_000


def corpus_files() -> list[Path]:
    """The shared corpus plus the project's fixtures: every file that is one message.

    Empty files are left out: IMAP cannot hold a zero-byte message (Dovecot answers
    APPEND with "NO Can't save a zero byte message").
    """
    # The shared corpus sits beside the project root (CI has it); without it, the
    # project's own fixtures still make a meaningful run.
    files = sorted(p for p in CORPUS.iterdir() if p.is_file() and p.suffix == ".eml") \
        if CORPUS.is_dir() else []
    files += sorted(
        p for p in FIXTURES.rglob("*")
        if p.is_file() and not p.name.startswith(".")
        and (p.suffix == ".eml" or p.parent.name in ("cur", "new"))
    )
    return [p for p in files if 0 < p.stat().st_size <= MAX_FIXTURE_BYTES]


def sample_messages(n: int, tag: str = "") -> list[bytes]:
    """``n`` distinct small DSNs (hard bounces for distinct addresses)."""
    out = []
    for i in range(n):
        out.append(DSN_TEMPLATE.format(i=i, tag=tag or "x").replace("\n", "\r\n").encode())
    return out


DSN_TEMPLATE = """\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: bounces@example.org
Subject: Undelivered Mail Returned to Sender
Message-Id: <dsn-{tag}-{i}@mx.example.net>
Date: Mon, 2 Nov 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{i}"

--B{i}
Content-Type: text/plain

This is the mail system at host mx.example.net.
<user{i}-{tag}@example.com>: host mx.example.com said: 550 5.1.1 User unknown

--B{i}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; user{i}-{tag}@example.com
Original-Recipient: rfc822; user{i}-{tag}@example.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 5.1.1 <user{i}-{tag}@example.com>: User unknown

--B{i}--
"""

GARBAGE = b"\x00\x01not a message at all\xff\xfe"


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
