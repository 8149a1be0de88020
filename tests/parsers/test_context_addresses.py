"""context.find_addresses finds what ADDRESS.finditer finds."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import enough, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers.context import find_addresses
from mailbox_processor.text import ADDRESS

SAMPLES = sample_paths()


def agree(text: str) -> int:
    plain = [(m.span(), m.group(1)) for m in ADDRESS.finditer(text)]
    assert [(m.span(), m.group(1)) for m in find_addresses(text)] == plain
    return len(plain)


def test_real_notices() -> None:
    found = 0
    for path in SAMPLES:
        raw = path.read_bytes()
        found += agree(Mail.from_bytes(raw).notice_text)
        agree(raw.decode("latin-1"))
    assert found > enough(100, 40)


PIECES = st.sampled_from([
    "a", "b.c", "x" * 30, "y" * 64, "@", "@@", ".", "-", "+", "!", "#", "'", "{", "~", "=",
    "example.org", "[192.0.2.1]", "[::1", "]", "\u00e9", "\u0661", "_", " ", "\n", "<", ">",
    "user", "host-", ".com", ":", ";"])


@settings(max_examples=1000, deadline=None)
@given(st.lists(PIECES, max_size=20).map("".join))
@example("x" * 64 + "a@b.org")
@example("!" + "y" * 63 + "@b.org c@d.org")
@example("a@b@c.org")
@example("a.@b.org x+y@[192.0.2.1]")
def test_generated(text: str) -> None:
    agree(text)
