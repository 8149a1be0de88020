"""legacy._exim_failures reports what flufl.bounce's Exim detector reports."""

from __future__ import annotations

from email.message import Message

from flufl.bounce._detectors.exim import Exim
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbox_processor.parsers.legacy import _exim_failures

PIECES = ["a", "B.c", "@", "example.org", ".", "..", ",", ", ", " ", "\t", "\n ", "<", ">",
          "(x)", '"q"', "\\", "[1.2.3.4]", ":", ";", "é", "=?utf-8?q?x?=", "!#$%&'*+/=?^_`{|}~-"]


def _msg(values: list[str]) -> Message:
    msg = Message()
    for value in values:
        msg["X-Failed-Recipients"] = value
    return msg


def detector(values: list[str]) -> frozenset[bytes]:
    return frozenset(Exim().process(_msg(values))[1])


def check(values: list[str]) -> bool:
    """True when the shortcut answered (and agreed with the detector)."""
    fast = _exim_failures(_msg(values))
    if fast is not None:
        assert fast == detector(values)
    return fast is not None


@settings(max_examples=500)
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
                min_size=1, max_size=3))
def test_same_as_the_detector(values: list[str]) -> None:
    check(values)


def test_plain_lists_are_read_without_the_detector() -> None:
    assert check(["a@example.org"])
    assert check([" a.b@example.org ,\tc@x.y", "@d", ".e.@f.."])
    assert _exim_failures(_msg(["a@example.org, c@x.y"])) == {b"a@example.org", b"c@x.y"}
    # Anything else is left to the detector.
    assert not check(["<a@example.org>"])
    assert not check(["a@"])
    assert not check(["a@b,,c@d"])
    assert not check(["A <a@example.org>"])

