"""legacy._two_paragraphs is the split-and-join it replaces."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailbox_processor.parsers.legacy import _two_paragraphs


def plain(text: str) -> str:
    return "\n\n".join(text.split("\n\n", 2)[:2])


@given(st.lists(st.sampled_from(["\n", "\n\n", "\n\n\n", "a", "From: x@y", " ", "\r\n"]),
                max_size=30))
def test_same_as_split_and_join(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert _two_paragraphs(text) == plain(text)


def test_cuts_at_the_second_blank_line() -> None:
    assert _two_paragraphs("a\n\nb\n\nc\n\nd") == "a\n\nb"
    assert _two_paragraphs("a\n\n\n\nc") == "a\n\n"
    assert _two_paragraphs("a\nb") == "a\nb"
