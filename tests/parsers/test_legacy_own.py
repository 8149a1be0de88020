"""The legacy parser's own addresses (the bounce's From, To, ..., the returned
message's senders), made on the first question, give the findings of the set made
at once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from strategies import edited_samples, enough, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers import legacy

#: The plain versions are patched into the module: see tests/test_compiled.py.
pytestmark = pytest.mark.pure_python

SAMPLES = sample_paths()


class EagerOwn(set[str]):
    """The plain version: the set worked out before the parser reads the notice."""

    def __init__(self, mail: Mail, rest: str) -> None:
        super().__init__(legacy._own_addresses(mail) | legacy._returned_senders(mail, rest))


def findings(raw: bytes) -> list[tuple[object, object]]:
    found = legacy.Legacy().parse(Mail.from_bytes(raw))
    return [(f, f.context) for f in found]


def same(raw: bytes, patch: pytest.MonkeyPatch) -> bool:
    """Compare; True when the lazy set was never made (the case the shortcut saves)."""
    made: list[object] = []
    lazy_contains = legacy._OwnAddresses.__contains__

    def contains(self: legacy._OwnAddresses, addr: object) -> bool:
        made.append(addr)
        return lazy_contains(self, addr)

    with patch.context() as p:
        p.setattr(legacy._OwnAddresses, "__contains__", contains)
        lazy = findings(raw)
    with patch.context() as p:
        p.setattr(legacy, "_OwnAddresses", EagerOwn)
        eager = findings(raw)
    assert lazy == eager
    return not made and bool(lazy)


def test_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    unasked = sum(same(path.read_bytes(), monkeypatch) for path in SAMPLES)
    assert unasked >= enough(50, 3)


@settings(max_examples=300, deadline=None)
@given(edited_samples(SAMPLES, [
    b"\n", b"\n\n", b"From: a@example.org\n", b"To: b@example.org\n", b"Sender: <c@x.org>\n",
    b"Reply-To: d@x.org\n", b"Return-Path: <a@example.org>\n", b"a@example.org\n",
    b"<b@example.org>: user unknown\n", b"RCPT TO:<c@x.org>\n", b"X-Failed-Recipients: d@x.org\n",
    b"--- Below this line is a copy of the message.\n\nFrom: e@x.org\nTo: f@x.org\n\n"],
    max_edits=4, max_cut=200))
def test_edited(raw: bytes) -> None:
    with pytest.MonkeyPatch.context() as patch:
        same(raw, patch)
