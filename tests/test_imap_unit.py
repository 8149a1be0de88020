"""Protocol-level tests of ImapSource and the poller with a fake client (no server).

Only what a real server can't be made to do on demand lives here (STYLE.md, convention
10): missing UIDPLUS, the ``UID n:*`` quirk, a body-less FETCH answer, the exact order
of commit and mailbox change. Everything else is in tests/integration/ (real Dovecot).
"""

from __future__ import annotations

import imaplib
import io
import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imapclient.exceptions import IMAPClientError, LoginError

from mailbox_processor import pipeline, poller
from mailbox_processor.config import MailboxConfig, build_mailbox
from mailbox_processor.errors import SourceError
from mailbox_processor.sources import imap as imap_mod
from mailbox_processor.sources.imap import (
    MAX_UID_SET,
    ImapAuthError,
    ImapConnectionError,
    ImapSource,
    ImapTLSError,
    uid_sets,
)

CAPS = (b"IMAP4REV1", b"IDLE", b"MOVE", b"UIDPLUS", b"STARTTLS")


def dsn(i: int) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: b@example.org\r\n"
        f"Subject: Undelivered Mail\r\nMessage-Id: <u{i}@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
        'report-type=delivery-status; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n'
        "\r\nfailed\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; user{i}@example.com\r\nAction: failed\r\n"
        f"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user{i}: User unknown\r\n"
        "\r\n--B--\r\n"
    ).encode()


def expand(uids: str | Sequence[int]) -> tuple[int, ...]:
    """The UIDs of an IMAP sequence set (``"1:3,7"``), or of a list of UIDs."""
    if not isinstance(uids, str):
        return tuple(uids)
    out: list[int] = []
    for part in uids.split(","):
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(out)


class FakeClient:
    """Just enough of IMAPClient, recording every command in ``log`` (shared)."""

    def __init__(self, log: list[Any], messages: dict[int, bytes | None], caps: Sequence[bytes],
                 uidvalidity: int = 7) -> None:
        self.log, self.messages, self.caps = log, messages, tuple(caps)
        self.uidvalidity = uidvalidity
        self.flags: dict[int, set[bytes]] = {u: set() for u in messages}
        self.folders = {"INBOX"}
        self.idle_responses: list[list[Any]] = []
        self.sent: list[Any] = []  # the UID sets as given to move, copy, store, expunge

    def has_capability(self, name: str) -> bool:
        return name.encode().upper() in self.caps

    def login(self, user: str, password: str) -> bytes:
        self.log.append(("login", user))
        if password != "right":
            raise LoginError(f"[AUTHENTICATIONFAILED] Authentication failed for {password}")
        return b"OK"

    def oauth2_login(self, user: str, token: str) -> bytes:
        self.log.append(("oauth2_login", user))
        return b"OK"

    def enable(self, *caps: str) -> list[bytes]:
        self.log.append(("enable", *caps))
        if b"REFUSE-ENABLE" in self.caps:
            raise IMAPClientError("ENABLE failed: NO not today")
        return [c.encode() for c in caps]

    def starttls(self, ctx: Any) -> None:
        self.log.append(("starttls",))

    def select_folder(self, name: str) -> dict[bytes, int]:
        self.log.append(("select", name))
        return {b"UIDVALIDITY": self.uidvalidity, b"UIDNEXT": max(self.messages, default=0) + 1,
                b"EXISTS": len(self.messages)}

    def search(self, criteria: list[Any]) -> list[int]:
        self.log.append(("search", tuple(criteria)))
        uids = sorted(self.messages)
        if "DELETED" in criteria:
            uids = [u for u in uids if b"\\Deleted" in self.flags[u]]
        if "UNDELETED" in criteria:
            uids = [u for u in uids if b"\\Deleted" not in self.flags[u]]
        if "UNSEEN" in criteria:
            uids = [u for u in uids if b"\\Seen" not in self.flags[u]]
        lo, _, hi = criteria[criteria.index("UID") + 1].partition(":")
        found = [u for u in uids if int(lo) <= u <= (max(uids, default=0) if hi == "*"
                                                        else int(hi))]
        if hi == "*" and not found and uids:  # RFC 3501: n:* always matches the last one
            found = [uids[-1]]
        return found

    def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        self.log.append(("fetch", tuple(uids)))
        return {u: ({b"BODY[]": self.messages[u]} if self.messages[u] is not None else {})
                for u in uids if u in self.messages}

    def folder_exists(self, name: str) -> bool:
        return name in self.folders

    def create_folder(self, name: str) -> None:
        self.log.append(("create", name))
        self.folders.add(name)

    def move(self, uid_set: str | list[int], folder: str) -> None:
        self.sent.append(uid_set)
        uids = expand(uid_set)
        self.log.append(("move", uids, folder))
        for u in uids:
            del self.messages[u]

    def copy(self, uid_set: str | list[int], folder: str) -> None:
        self.sent.append(uid_set)
        self.log.append(("copy", expand(uid_set), folder))

    def add_flags(self, uid_set: str | list[int], flags: list[bytes],
                  silent: bool = False) -> None:
        self.sent.append(uid_set)
        uids = expand(uid_set)
        self.log.append(("store", uids, tuple(flags)))
        for u in uids:
            self.flags[u].update(flags)

    def uid_expunge(self, uid_set: str | list[int]) -> None:
        self.sent.append(uid_set)
        uids = expand(uid_set)
        self.log.append(("uid_expunge", uids))
        self._expunge(list(uids))

    def expunge(self) -> None:
        self.log.append(("expunge",))
        self._expunge(list(self.messages))

    def _expunge(self, uids: list[int]) -> None:
        for u in uids:
            if b"\\Deleted" in self.flags.get(u, set()):
                self.messages.pop(u, None)

    def idle(self) -> None:
        self.log.append(("idle",))

    def idle_check(self, timeout: float) -> list[Any]:
        return self.idle_responses.pop(0) if self.idle_responses else []

    def idle_done(self) -> None:
        self.log.append(("idle_done",))
        if self.idle_responses == [["EOF"]]:
            raise imaplib.IMAP4.abort("socket error: EOF")

    def logout(self) -> None:
        self.log.append(("logout",))

    def shutdown(self) -> None:
        pass


def make(messages: dict[int, bytes | None] | None = None, caps: Sequence[bytes] = CAPS,
         **settings: Any) -> tuple[MailboxConfig, list[Any], FakeClient, ImapSource]:
    cfg = build_mailbox("t", {"host": "imap.example.org", "user": "bounces@example.org",
                              "password_command": "echo right", "batch_size": 2, **settings})
    log: list[Any] = []
    client = FakeClient(log, dict(messages or {}), caps)
    src = ImapSource(cfg, client_factory=lambda c, ctx: client, secret=lambda c: "right")
    return cfg, log, client, src


def test_move_uses_move_when_advertised() -> None:
    _, log, _, src = make({1: b"x", 2: b"y"})
    with src:
        src.select()
        src.move([1, 2], "Processed")
    assert ("create", "Processed") in log
    assert ("move", (1, 2), "Processed") in log
    assert not any(e[0] == "copy" for e in log)


@pytest.mark.parametrize(("after", "extra", "enabled"), [
    ("move:Processed", (b"ENABLE", b"QRESYNC"), True),
    ("move:Processed", (b"ENABLE", b"QRESYNC", b"REFUSE-ENABLE"), True),  # and carries on
    ("move:Processed", (b"QRESYNC",), False),  # no ENABLE
    ("seen", (b"ENABLE", b"QRESYNC"), False),  # CONDSTORE would answer every STORE
])
def test_qresync_is_enabled_only_for_moves(after: str, extra: tuple[bytes, ...],
                                           enabled: bool) -> None:
    _, log, _, src = make({1: b"x"}, caps=CAPS + extra, after=after)
    with src:
        src.select()
    assert (("enable", "QRESYNC") in log) == enabled
    assert log.index(("select", "INBOX")) > (log.index(("enable", "QRESYNC")) if enabled else 0)


def test_move_falls_back_to_copy_store_uid_expunge() -> None:
    _, log, client, src = make({1: b"x", 2: b"y", 3: b"z"}, caps=(b"UIDPLUS",))
    with src:
        src.select()
        src.move([1, 3], "Processed")
    ops = [e for e in log if e[0] in ("copy", "store", "uid_expunge", "expunge", "move")]
    assert ops == [("copy", (1, 3), "Processed"), ("store", (1, 3), (b"\\Deleted",)),
                   ("uid_expunge", (1, 3))]
    assert list(client.messages) == [2]


def test_uid_sets_examples() -> None:
    assert uid_sets([]) == []
    assert uid_sets([5, 1, 2, 3, 3, 7, 8]) == ["1:3,5,7:8"]
    assert uid_sets(range(1, 20_001)) == ["1:20000"]
    # Split where the next part would pass the limit; a part is never cut.
    assert uid_sets([1, 3, 5, 10, 11, 12, 20], limit=7) == ["1,3,5", "10:12", "20"]
    assert uid_sets([123456], limit=2) == ["123456"]


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=200),
       st.integers(min_value=1, max_value=40))
def test_uid_sets_hold_exactly_the_uids(uids: list[int], limit: int) -> None:
    """The compact sets against the plain list imapclient would send (its oracle)."""
    plain = ",".join(str(u) for u in sorted(set(uids)))
    sets = uid_sets(uids, limit=limit)
    assert ",".join(",".join(map(str, expand(s))) for s in sets) == plain
    for s in sets:
        assert len(s) <= limit or ("," not in s)  # only a lone part may pass the limit
        assert len(s) <= len(plain)
    # Fewest commands: two consecutive sets would not fit in one.
    for a, b in zip(sets, sets[1:], strict=False):
        assert len(a) + 1 + len(b.split(",")[0]) > limit


def test_a_long_uid_set_is_split_across_commands() -> None:
    _, log, client, src = make({u: b"x" for u in range(1, 6000, 2)})  # no two consecutive
    with src:
        src.move(list(client.messages), "Processed")
    assert len(client.sent) > 1
    assert all(len(s) <= MAX_UID_SET for s in client.sent)
    assert sum(len(e[1]) for e in log if e[0] == "move") == 3000 and client.messages == {}


def test_without_uidplus_plain_expunge() -> None:
    _, log, _, src = make({1: b"x"}, caps=())
    with src:
        src.delete([1])
    assert ("expunge",) in log and not any(e[0] == "uid_expunge" for e in log)


def test_uids_after_ignores_the_n_star_quirk() -> None:
    _, _, _, src = make({3: b"a", 5: b"b"})
    with src:
        assert src.uids_after(0) == [3, 5]
        assert src.uids_after(4) == [5]
        assert src.uids_after(5) == []  # server answers 5 to "UID 6:*"


def test_fetch_converts_and_flags_missing_bodies() -> None:
    _, _, _, src = make({1: b"x", 2: None})
    with src:
        raws = src.fetch([1, 2, 9], uidvalidity=7)  # 9 was expunged meanwhile
    assert [(r.uid, r.raw, r.error is None) for r in raws] == [(1, b"x", True), (2, b"", False)]
    assert raws[0].source == "imap://bounces@example.org@imap.example.org:993/INBOX;UID=1"
    assert (raws[0].folder, raws[0].uidvalidity) == ("INBOX", 7)


def test_login_failure_hides_the_secret() -> None:
    cfg, _, client, _ = make()
    src = ImapSource(cfg, client_factory=lambda c, ctx: client, secret=lambda c: "hunter2")
    with pytest.raises(ImapAuthError) as info:
        src.connect()
    text = str(info.value)
    assert text.startswith("IMAP login failed for bounces@example.org at imap.example.org:993")
    assert "check --user and the password source" in text
    assert "hunter2" not in text and "***" in text


def test_starttls_required_but_not_offered() -> None:
    _, _, _, src = make(caps=(b"IMAP4REV1",), tls="starttls")
    with pytest.raises(ImapTLSError, match="does not offer STARTTLS"):
        src.connect()


def test_starttls_then_xoauth2() -> None:
    _, log, _, src = make(tls="starttls", auth="xoauth2", oauth2_token_command="echo t")
    with src:
        pass
    assert [e[0] for e in log][:2] == ["starttls", "oauth2_login"]


def test_connection_refused_is_a_connection_error() -> None:
    cfg = build_mailbox("t", {"host": "127.0.0.1", "port": 1, "user": "u",
                              "password_command": "echo x", "tls": "plain"})
    with pytest.raises(ImapConnectionError, match="cannot connect to IMAP server 127.0.0.1:1"):
        ImapSource(cfg).connect()


def test_protocol_error_is_a_source_error() -> None:
    _, _, client, src = make()

    def broken(name: str) -> Any:
        raise imaplib.IMAP4.error("select failed: [SERVERBUG] Internal error")

    client.select_folder = broken  # type: ignore[method-assign]
    with src, pytest.raises(SourceError, match="IMAP SELECT INBOX failed on imap://"):
        src.select()


def test_idle_bye_is_a_connection_error() -> None:
    _, _, client, src = make()
    client.idle_responses = [[], [(b"BYE", b"Server shutting down.")]]
    with src, pytest.raises(ImapConnectionError, match="closed the connection"):
        src.wait_for_changes(10, lambda: False)


def test_idle_wakes_on_exists_and_stops_on_request() -> None:
    _, log, client, src = make()
    client.idle_responses = [[], [(3, b"EXISTS")]]
    with src:
        assert src.wait_for_changes(10, lambda: False) is True
        assert src.wait_for_changes(10, lambda: True) is False
    assert log.count(("idle",)) == 2 and log.count(("idle_done",)) == 2


# -- the poller: ordering and leftovers -------------------------------------------------


@pytest.fixture
def db() -> Any:
    from mailbox_processor import store

    database = store.open_db(":memory:")
    yield database
    database.close()


def run(db: Any, cfg: MailboxConfig, src: ImapSource, log: list[Any],
        monkeypatch: pytest.MonkeyPatch, **kw: Any) -> poller.PollResult:
    real = pipeline.ingest_batch

    def recording(db_: Any, raws: Any, **k: Any) -> Any:
        out = real(db_, raws, **k)
        log.append(("commit", tuple(r.uid for r in raws), k.get("checkpoint")))
        return out

    monkeypatch.setattr(pipeline, "ingest_batch", recording)
    with src:
        return poller.poll_folder(db, cfg, src, **kw)


@pytest.mark.parametrize("every", [1, poller.FILE_EVERY])
def test_commit_comes_before_any_mailbox_change(db: Any, monkeypatch: pytest.MonkeyPatch,
                                                every: int) -> None:
    monkeypatch.setattr(poller, "FILE_EVERY", every)
    cfg, log, client, src = make({u: dsn(u) for u in (1, 2, 3)})
    progress: list[tuple[int, int]] = []
    result = run(db, cfg, src, log, monkeypatch,
                 on_batch=lambda p: progress.append((p.done, p.total)))
    ops = [e[:2] for e in log if e[0] in ("fetch", "commit", "move")]
    # The next batch is fetched (BODY.PEEK: no change) while this one is committed;
    # nothing of a batch is moved before its commit. Batch by batch, or held and
    # filed together at the end of the pass.
    if every == 1:
        assert ops == [("fetch", (1, 2)), ("fetch", (3,)), ("commit", (1, 2)),
                       ("move", (1, 2)), ("commit", (3,)), ("move", (3,))]
    else:
        assert ops == [("fetch", (1, 2)), ("fetch", (3,)), ("commit", (1, 2)),
                       ("commit", (3,)), ("move", (1, 2, 3))]
    commits = [e[2] for e in log if e[0] == "commit"]
    assert commits == [(cfg.identity, "INBOX", 7, 2), (cfg.identity, "INBOX", 7, 3)]
    assert (result.summary.new, result.batches, client.messages) == (3, 2, {})
    assert result.filed == {"moved to Processed": 3}
    assert progress == [(2, 3), (3, 3)]


def test_filing_waits_for_file_every_uids(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Filed once ``FILE_EVERY`` committed UIDs are held, and the rest at the end."""
    monkeypatch.setattr(poller, "FILE_EVERY", 4)
    cfg, log, client, src = make({u: dsn(u) for u in range(1, 8)})
    moved: list[int] = []
    result = run(db, cfg, src, log, monkeypatch,
                 on_batch=lambda p: moved.append(7 - len(client.messages)))
    ops = [e[:2] for e in log if e[0] in ("commit", "move")]
    assert ops == [("commit", (1, 2)), ("commit", (3, 4)), ("move", (1, 2, 3, 4)),
                   ("commit", (5, 6)), ("commit", (7,)), ("move", (5, 6, 7))]
    assert moved == [0, 4, 4, 4]  # on_batch follows the commit, filed or not
    assert result.filed == {"moved to Processed": 7} and client.messages == {}


def test_committed_batches_are_filed_when_a_later_one_fails(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbox_processor import store

    cfg, log, client, src = make({u: dsn(u) for u in range(1, 8)})
    real = pipeline.ingest_batch
    calls: list[int] = []

    def failing(db_: Any, raws: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(db_, raws, **k)

    monkeypatch.setattr(pipeline, "ingest_batch", failing)
    with src, pytest.raises(RuntimeError, match="disk full"):
        poller.poll_folder(db, cfg, src)
    assert [e[1:] for e in log if e[0] == "move"] == [((1, 2, 3, 4), "Processed")]
    assert sorted(client.messages) == [5, 6, 7]
    assert store.get_checkpoint(db, cfg.identity, "INBOX") == (7, 4)


def test_nothing_is_filed_once_the_connection_is_gone(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dropped connection leaves the committed messages in the folder; the next run
    files them (fetched again, counted as duplicates)."""
    from mailbox_processor import store

    monkeypatch.setattr(poller, "LOOKAHEAD", 2)  # the figures below assume it
    cfg, log, client, src = make({u: dsn(u) for u in range(1, 8)})
    real_fetch = client.fetch

    def dropping(uids: list[int], items: list[str]) -> Any:
        if uids[0] == 7:
            raise imaplib.IMAP4.abort("socket error: EOF")
        return real_fetch(uids, items)

    monkeypatch.setattr(client, "fetch", dropping)
    with pytest.raises(ImapConnectionError):
        run(db, cfg, src, log, monkeypatch)
    assert not any(e[0] == "move" for e in log)
    assert store.get_checkpoint(db, cfg.identity, "INBOX") == (7, 2)
    monkeypatch.setattr(client, "fetch", real_fetch)
    result = run(db, cfg, src, log, monkeypatch)
    assert (result.summary.duplicates, result.summary.new) == (2, 5)
    assert client.messages == {}


def test_server_without_move_files_in_as_few_commands(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COPY + STORE + UID EXPUNGE for several batches at once: batches 1-3 once all is
    fetched (4 and 5 are with the parsers), then 4-5 at the end."""
    monkeypatch.setattr(poller, "LOOKAHEAD", 2)  # the order below assumes it
    cfg, log, client, src = make({u: dsn(u) for u in range(1, 6)}, caps=(b"UIDPLUS",),
                                 batch_size=1)
    result = run(db, cfg, src, log, monkeypatch)
    ops = [e for e in log if e[0] in ("copy", "store", "uid_expunge", "move", "commit")]
    assert [e[:2] for e in ops] == [
        ("commit", (1,)), ("commit", (2,)), ("commit", (3,)),
        ("copy", (1, 2, 3)), ("store", (1, 2, 3)), ("uid_expunge", (1, 2, 3)),
        ("commit", (4,)), ("commit", (5,)),
        ("copy", (4, 5)), ("store", (4, 5)), ("uid_expunge", (4, 5))]
    assert client.sent == ["1:3"] * 3 + ["4:5"] * 3
    assert result.filed == {"moved to Processed": 5} and client.messages == {}


def test_committed_but_unfiled_messages_are_filed_next_time(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbox_processor import store

    cfg, log, client, src = make({u: dsn(u) for u in (1, 2, 3, 4)})
    # A previous run stored 1-3 and died before moving them; 2 got \Deleted by the
    # COPY fallback but not expunged.
    with src:
        pipeline.ingest_batch(db, src.fetch([1, 2, 3], 7),
                              checkpoint=(cfg.identity, "INBOX", 7, 3))
    client.flags[2].add(b"\\Deleted")
    cfg2, log2, _, src2 = make()
    src2._factory = lambda c, ctx: client  # same mailbox, fresh log
    client.log = log2
    result = run(db, cfg, src2, log2, monkeypatch)
    assert ("uid_expunge", (2,)) in log2
    assert [e[1] for e in log2 if e[0] == "fetch"] == [(1, 3), (4,)]
    assert (result.summary.duplicates, result.summary.new) == (2, 1)
    assert client.messages == {}
    assert store.get_checkpoint(db, cfg.identity, "INBOX") == (7, 4)


def test_stop_between_batches(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, log, client, src = make({u: dsn(u) for u in range(1, 7)})
    batches: list[int] = []
    result = run(db, cfg, src, log, monkeypatch, stop=lambda: len(batches) >= 1,
                 on_batch=lambda p: batches.append(p.done))
    assert result.stopped and result.batches == 1 and batches == [2]
    assert sorted(client.messages) == [3, 4, 5, 6]


def test_quarantine_and_not_bounce_folders(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    autoreply = (b"From: someone@example.com\r\nTo: b@example.org\r\nSubject: Out of office"
                 b"\r\nAuto-Submitted: auto-replied\r\nMessage-Id: <ar@example.com>\r\n\r\n"
                 b"I am away until Monday.\r\n")
    cfg, log, client, src = make({1: dsn(1), 2: None, 3: autoreply}, batch_size=10,
                                 not_bounce_folder="Other")
    result = run(db, cfg, src, log, monkeypatch)
    moves = {e[2]: e[1] for e in log if e[0] == "move"}
    assert moves == {"Processed": (1,), "Quarantine": (2,), "Other": (3,)}
    assert result.summary.quarantined == 1


def test_backoff_grows_with_jitter_and_caps() -> None:
    lows = [poller.backoff_delay(n, rng=lambda: 0.0) for n in range(12)]
    highs = [poller.backoff_delay(n, rng=lambda: 1.0) for n in range(12)]
    assert lows[:4] == [0.5, 1.0, 2.0, 4.0] and highs[:4] == [1.0, 2.0, 4.0, 8.0]
    assert highs[-1] == poller.BACKOFF_MAX and lows[-1] == poller.BACKOFF_MAX / 2


def test_lock_is_exclusive_and_released(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOX_PROCESSOR_LOCK_DIR", str(tmp_path))
    cfg, *_ = make()
    with poller.mailbox_lock(cfg):
        busy = pytest.raises(poller.MailboxLockedError, match="is busy: another poll or watch")
        with busy, poller.mailbox_lock(cfg):
            pass
        other = build_mailbox("o", {"host": "other.example.org", "user": "u",
                                    "password_env": "X"})
        with poller.mailbox_lock(other):
            pass
    with poller.mailbox_lock(cfg):
        pass


def test_watch_reconnects_after_drop(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, log, client, _ = make({1: dsn(1)}, interval=1, idle=False)
    attempts: list[int] = []

    def factory(c: Any, ctx: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 2:
            raise ConnectionRefusedError(111, "Connection refused")
        return client

    monkeypatch.setattr(poller, "sleep_until", lambda s, stop, step=0.2: None)
    monkeypatch.setenv("MAILBOX_PROCESSOR_LOCK_DIR", "/tmp")
    passes: list[poller.PollResult] = []

    def on_pass(r: poller.PollResult) -> None:
        passes.append(r)
        if len(passes) == 1:
            client.messages[2], client.flags[2] = dsn(2), set()
            raise ImapConnectionError("dropped")

    result = poller.watch(db, cfg, client_factory=factory, on_pass=on_pass,
                          stop=lambda: len(passes) >= 2)
    assert len(attempts) == 3  # connect, refused, reconnect
    assert result.summary.new == 2 and client.messages == {}


def test_idle_is_renewed_before_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """IDLE ends (DONE) after IDLE_RENEW_SECONDS (25 min, under RFC 2177's 29) even
    when the caller asked to wait longer; watch then polls and IDLEs again."""
    from mailbox_processor.sources import imap

    assert imap.IDLE_RENEW_SECONDS < 29 * 60
    monkeypatch.setattr(imap, "IDLE_RENEW_SECONDS", 0.05)
    _, log, _, src = make()
    with src:
        assert src.wait_for_changes(3600, lambda: False) is False
    assert log.count(("idle",)) == 1 and log.count(("idle_done",)) == 1


def test_a_large_backlog_is_searched_in_uid_windows() -> None:
    """Parsing one SEARCH response for 100k UIDs costs tens of MB: windows keep it flat."""
    uids = {u: b"x" for u in range(1, 25_001, 5)}  # 5,000 messages over 25,000 UIDs
    _, log, _, src = make(uids)
    with src:
        src.select()
        found = src.uids_after(0, uidnext=25_001)
    assert found == sorted(uids)
    searches = [entry[1] for entry in log if entry[0] == "search"]
    assert searches[:3] == [("UID", "1:10000"), ("UID", "10001:20000"), ("UID", "20001:25000")]
    assert searches[-1] == ("UID", "25001:*")  # arrivals after SELECT


def test_unsolicited_expunge_responses_are_dropped() -> None:
    """imaplib keeps every untagged EXPUNGE a MOVE produces unless someone drains them."""

    class Imap:
        untagged_responses: dict[str, list[bytes]] = {"EXPUNGE": [b"1"] * 1000, "OK": [b"x"]}

    _, _, client, src = make({1: b"x"})
    client._imap = Imap()  # type: ignore[attr-defined]
    with src:
        src.select()
        src.move([1], "Processed")
    assert "EXPUNGE" not in Imap.untagged_responses
    assert Imap.untagged_responses["OK"] == [b"x"]


def test_imaplib_tracing_is_off_unless_its_logger_listens() -> None:
    """imapclient's ``debug = 5`` makes imaplib repr() every fetched message for a
    logger nobody reads; the connection turns it off, unless that logger is at DEBUG."""
    import logging

    from imapclient import IMAPClient

    from mailbox_processor.sources.imap import _quiet_imaplib

    class Imap:
        debug = 5

    client = FakeClient([], {}, CAPS)
    client._imap = Imap()  # type: ignore[attr-defined]
    _quiet_imaplib(client)
    assert client._imap.debug == 0  # type: ignore[attr-defined]
    traced = logging.getLogger("imapclient.imaplib")
    old = traced.level
    traced.setLevel(logging.DEBUG)
    try:
        client._imap = Imap()  # type: ignore[attr-defined]
        _quiet_imaplib(client)
        assert client._imap.debug == 5  # type: ignore[attr-defined]
    finally:
        traced.setLevel(old)
    # The attribute this relies on is still where imapclient keeps it.
    assert "self._imap.debug = 5" in __import__("inspect").getsource(IMAPClient)


def test_fast_fetch_parse_equals_imapclients() -> None:
    """The regex reading of ``UID FETCH (BODY.PEEK[])`` answers gives what imapclient's
    parser gives (the oracle), and declines every shape it does not know."""
    from imapclient.response_parser import parse_fetch_response

    from mailbox_processor.sources.imap import _parse_bodies
    from tests.strategies import enough, sample_paths

    bodies = [p.read_bytes() for p in sample_paths()]
    assert len(bodies) >= enough(400, 30)
    bodies += [b"", b"x", b")", b"{3}\r\nabc", b"BODY[] {5}"]
    data: list[Any] = []
    for i, body in enumerate(bodies, 1):
        data += [(b"%d (UID %d BODY[] {%d}" % (i, 1000 + 7 * i, len(body)), body), b")"]
    for n in (0, 1, 2, len(bodies)):
        part = data[: 2 * n]
        fast = _parse_bodies(part)
        assert fast == dict(parse_fetch_response(part or [None], True, True))
        assert fast is not None and len(fast) == n
    one = (b"1 (UID 9 BODY[] {3}", b"abc")
    declined = [
        [one],                                              # no trailer
        [one, b" FLAGS (\\Seen))"],                         # more items after the body
        [(b"1 (BODY[] {3}", b"abc"), b" UID 9)"],           # UID after the body
        [(b"1 (UID 9 BODY[] {4}", b"abc"), b")"],           # size does not match
        [one, b")", (b"2 (UID 9 BODY[] {3}", b"abd"), b")"],  # the same UID twice
        [b"1 (UID 9 BODY[] NIL)", b")"],                     # no literal
        [b"3 (FLAGS (\\Seen))", b")"],                       # unsolicited FETCH
        [(b"1 (uid 9 body[] {3}", b"abc"), b")"],           # other case
    ]
    for shape in declined:
        assert _parse_bodies(shape) is None, shape


# -- the FETCH reader against imaplib's own -------------------------------------------


class CannedIMAP(imaplib.IMAP4):
    """imaplib.IMAP4 reading ``stream`` (through a buffer of ``bufsize`` bytes, so that
    responses straddle its refills) instead of a socket; commands are tagged T0, T1..."""

    def __init__(self, stream: bytes, bufsize: int) -> None:
        self._stream = io.BufferedReader(io.BytesIO(stream), buffer_size=bufsize)
        super().__init__()

    def open(self, host: str = "", port: int = 0, timeout: float | None = None) -> None:
        self.file = self._stream

    def _connect(self) -> None:
        self.tagpre = b"T"
        self.tagre = re.compile(rb"(?P<tag>T\d+) (?P<type>[A-Z]+) (?P<data>.*)", re.ASCII)
        self.state = "SELECTED"
        self.capabilities = ("IMAP4REV1",)
        self._cmd_log_len, self._cmd_log_idx, self._cmd_log = 10, 0, {}

    def send(self, data: bytes) -> None:
        pass


def _answer(imap: CannedIMAP, fast: bool) -> tuple[Any, ...]:
    tag = imap._command("UID", "FETCH", "1:*", "(BODY.PEEK[])")
    try:
        if fast:
            imap_mod._read_fetch_literals(imap, tag)
        typ, data = imap._command_complete("FETCH", tag)
    except imaplib.IMAP4.error as exc:  # abort included
        return ("raised", type(exc).__name__, imap._stream.read())
    return typ, data, imap.untagged_responses, imap._stream.read()


_BODY = st.binary(max_size=60) | st.sampled_from(
    [b"", b"\r\n* 9 FETCH (UID 9 BODY[] {3}\r\nabc\r\n)\r\nT0 OK x\r\n", b"{5}\r\n", b")"])


@st.composite
def _responses(draw: st.DrawFn) -> bytes:
    """A server's answer to T0 UID FETCH: the usual shape and everything around it."""
    out = b""
    for seq in range(1, draw(st.integers(0, 6)) + 1):
        kind = draw(st.sampled_from(["body", "body", "flags-after", "two-literals",
                                     "no-literal", "exists", "expunge", "alert", "bye"]))
        body = draw(_BODY)
        head = b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (seq, seq * 3, len(body))
        if kind == "body":
            out += head + body + b")\r\n"
        elif kind == "flags-after":
            out += head + body + b" FLAGS (\\Seen))\r\n"
        elif kind == "two-literals":
            out += (b"* %d FETCH (UID %d BODY[HEADER] {2}\r\nab BODY[] {%d}\r\n"
                    % (seq, seq, len(body)) + body + b")\r\n")
        elif kind == "no-literal":
            out += b"* %d FETCH (UID %d FLAGS (\\Seen))\r\n" % (seq, seq)
        elif kind == "exists":
            out += b"* %d EXISTS\r\n" % (seq + 10)
        elif kind == "expunge":
            out += b"* %d EXPUNGE\r\n" % seq
        elif kind == "alert":
            out += b"* OK [ALERT] disk almost full\r\n"
        else:
            out += b"* BYE shutting down\r\n"
    ending = draw(st.sampled_from([b"T0 OK done\r\n", b"T0 NO [SERVERBUG] oops\r\n",
                                   b"T0 BAD what\r\n", b"", b"* 1 FETCH (UID 1 BODY[] {9}\r\nab"]))
    return out + ending + draw(st.sampled_from([b"", b"* 7 EXISTS\r\n"]))


@given(_responses(), st.integers(min_value=1, max_value=80))
def test_fetch_reader_leaves_what_imaplibs_loop_leaves(stream: bytes, bufsize: int) -> None:
    """Same result, same untagged responses, same bytes left unread as imaplib's loop
    (the oracle), whatever the answer and wherever the buffer refills fall."""
    assert _answer(CannedIMAP(stream, bufsize), True) == _answer(CannedIMAP(stream, bufsize),
                                                                 False)


def test_fetch_reader_reads_the_usual_answer_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = b"".join(b"* %d FETCH (UID %d BODY[] {4}\r\nbody)\r\n" % (i, i)
                      for i in range(1, 4)) + b"T0 OK done\r\n"
    imap = CannedIMAP(stream, 4096)
    calls: list[int] = []
    real = imaplib.IMAP4._get_response
    monkeypatch.setattr(imaplib.IMAP4, "_get_response",
                        lambda self: calls.append(1) or real(self))
    typ, data, untagged, _ = _answer(imap, True)
    assert typ == "OK" and len(calls) == 1  # the tagged completion only
    assert untagged["FETCH"] == [(b"1 (UID 1 BODY[] {4}", b"body"), b")",
                                 (b"2 (UID 2 BODY[] {4}", b"body"), b")",
                                 (b"3 (UID 3 BODY[] {4}", b"body"), b")"]
