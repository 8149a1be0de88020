"""The Message-ID field finder's shortcut gives the plain scan's matches."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mailbox_processor.parsers.legacy import _MSGID, _msgid_fields

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"


def spans(raw: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    fast = [m.span() for m in _msgid_fields(raw)]
    # The same when the lowered bytes are handed in (as the parser does).
    assert [m.span() for m in _msgid_fields(raw, raw.lower())] == fast
    return fast, [m.span() for m in _MSGID.finditer(raw)]


def test_real_messages() -> None:
    paths = sorted((ROOT / "fixtures").rglob("*.eml"))
    if CORPUS.is_dir():
        paths += sorted(CORPUS.iterdir())
    hits = 0
    for path in paths:
        fast, slow = spans(path.read_bytes())
        assert fast == slow
        hits += len(slow)
    assert hits > 20


PIECES = [b"Message-ID", b"message-id", b"MESSAGE-ID", b"In-Reply-To", b"References",
          b"X-Message-ID", b"Content-ID", b"Resent-Message-Id", b">", b"> ", b" ", b"\t",
          b":", b"<a@b.example>", b"<x@y>", b"\n", b"\r\n", b"\r", b"x", b"\xff"]


@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_generated(pieces: list[bytes]) -> None:
    fast, slow = spans(b"".join(pieces))
    assert fast == slow
