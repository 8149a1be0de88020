"""The Message-ID field finder's shortcut gives the plain scan's matches, and the
per-address look-up answers as the set of every Message-ID does."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import edited_samples, enough, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers.legacy import _MSGID, _message_ids, _MessageIds, _msgid_fields

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


def probes(raw: bytes, ids: set[str]) -> set[str]:
    """Addresses to ask about: the Message-IDs, every ``<...>`` token and address-like
    word of the message, as they stand and lowercased, and near misses of the IDs."""
    out = set(ids)
    out |= {i.upper() for i in ids} | {i + "x" for i in ids} | {i[1:] for i in ids}
    for m in re.finditer(rb"<([^<>]*)>|[^\s<>\"]+@[^\s<>\"]+", raw):
        word = (m.group(1) if m.group(1) is not None else m.group(0)).decode("latin-1")
        out |= {word, word.lower()}
    return out


def same_ids(raw: bytes) -> int:
    """``_MessageIds`` answers as the full set does, for every probe; returns how
    many Message-IDs the message has."""
    mail = Mail.from_bytes(raw)
    ids = _message_ids(mail.raw, mail.raw_lower)
    asked = _MessageIds(mail)
    for addr in sorted(probes(mail.raw, ids)):
        assert (addr in asked) == (addr in ids), addr
        assert (addr in asked) == (addr in ids), addr  # (the second answer is remembered)
    return len(ids)


def test_ids_on_real_messages() -> None:
    assert sum(same_ids(path.read_bytes()) for path in sample_paths()) > enough(300, 20)


@settings(max_examples=200, deadline=None)
@given(edited_samples(sample_paths(), [
    b"\n", b"\r\n", b"\n ", b"\n\t", b" ", b">", b"> ", b"Message-ID: ", b"References:",
    b"<0123456789abc@host.example>", b"\xc9"], max_edits=4, max_cut=40))
def test_ids_on_edited_messages(raw: bytes) -> None:
    same_ids(raw)


ID_PIECES = [
    b"Message-ID:", b"message-id: ", b"REFERENCES:", b"In-Reply-To:\t", b"X-Message-ID:",
    b"Resent-Message-Id:", b"Content-ID:", b"Subject:", b"To: ", b"> ", b">", b"\n", b"\r\n",
    b"\n ", b"\n\t", b" ", b"<0123456789abc@host.example>", b"<0123456789ABC@Host.Example>",
    b"<short@x.example>", b"<a@b.example>", b"<0123456789abc@host.example",
    b"0123456789abc@host.example>", b"<\xc9\xe9abcdefghij@host>", b"<abc@def@0123456789@x>",
    b"x", b"\xe9"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(ID_PIECES), max_size=25))
@example([b"Message-ID:", b"\n ", b"<0123456789abc@host.example>"])
@example([b"Subject:", b"\n ", b"<0123456789abc@host.example>"])
@example([b"> ", b"References:", b"\n", b"\t", b"<0123456789ABC@Host.Example>"])
@example([b"To: ", b"<0123456789abc@host.example>", b"\n", b"Message-ID:",
          b"<0123456789abc@host.example>"])
@example([b"Message-ID:", b"<\xc9\xe9abcdefghij@host>"])
def test_ids_on_generated_messages(pieces: list[bytes]) -> None:
    same_ids(b"From: a@b.example\n" + b"".join(pieces))
