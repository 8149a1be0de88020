"""The views of a message that the legacy parser's flufl.bounce gates read are what
they stand for: the Mail's field names answer ``name in msg`` for the notice-only
message as the message itself does, and its content type is the notice-only
message's; the body is ``body_line_iterator``'s lines; the From is ``msg.get``'s."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.iterators import body_line_iterator
from email.message import Message

from flufl.bounce import all_failures
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import edited_samples, enough, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers.context import cut_returned
from mailbox_processor.parsers.legacy import (
    _detector_plan,
    _flufl_failures,
    _FluflView,
    _notice_only,
    _prepared,
)

SAMPLES = sample_paths()
# (Not Content-Transfer-Encoding: a single-part notice drops it, and no gate asks.)
NAMES = ("x-failed-recipients", "from", "x-mailer", "content-type")


def agree(raw: bytes) -> int:
    mail = Mail.from_bytes(raw)
    notice = _notice_only(mail, cut_returned(mail.notice_text))
    view = _FluflView(notice, mail.field_names, mail.content_type)
    for msg in (notice, mail.msg):
        assert outcome(lambda m=msg: _FluflView(m).body) == \
            outcome(lambda m=msg: "".join(body_line_iterator(m)))
        assert outcome(lambda m=msg: _FluflView(m).from_) == \
            outcome(lambda m=msg: m.get("from", ""))
    asked = 0
    for name in NAMES:
        assert view.has_field(name) == (name in notice)
        asked += name in notice
    assert view.ctype == notice.get_content_type() == _FluflView(notice).ctype
    assert outcome(lambda: _flufl_failures(notice, mail.field_names, mail.content_type)) == \
        outcome(lambda: _flufl_failures(notice))
    return asked


def outcome(call: Callable[[], object]) -> object:
    """What ``call`` returns, or the type of what it raises."""
    try:
        return call()
    except Exception as exc:
        return type(exc)


def test_samples() -> None:
    assert sum(agree(path.read_bytes()) for path in SAMPLES) > 5


@settings(max_examples=200, deadline=None)
@given(edited_samples(SAMPLES[:60], [b"X-Failed-Recipients: a@b.org\n", b"\n", b"\n\n", b":",
                                    b"\r", b"\r\n", b"\xc2\x85", b"\xe2\x80\xa8", b"\xff",
                                    b"Content-Type: multipart/mixed\n", b"From: \xe9 <a@b.org>\n",
                                    b"Content-Type: text/plain; charset=\"latin-1\"\n",
                                    b"Content-Transfer-Encoding: \xff\n"],
                      max_edits=4, max_cut=80))
def test_edited(raw: bytes) -> None:
    agree(raw)



def test_view_values_are_computed_once() -> None:
    msg = Mail.from_bytes(SAMPLES[0].read_bytes()).msg
    calls: list[object] = []
    original = msg.is_multipart
    # (The body is read through ``msg.is_multipart()`` first: count the reads.)
    msg.is_multipart = lambda: calls.append(1) or original()  # type: ignore[method-assign]
    view = _FluflView(msg)
    first = view.body
    reads = len(calls)
    assert reads >= 1
    assert view.body is first and view.lowered is view.lowered
    assert len(calls) == reads
    assert view.multipart is view.multipart and len(calls) == reads + 1


#: Notice text: flufl.bounce start phrases in other cases, with the characters that
#: re.I pairs with ASCII letters ("ſ", the Kelvin sign, "ı", "İ") and other non-ASCII
#: text (Cyrillic, accents, a replacement character) around and inside them.
BODY_PIECES = st.sampled_from([
    "Delivery has failed", "DELIVERY HAS FAILED", "delivery ha\u017f failed", "[a@example.org]",
    "Original message details:", "failed addresses follow:", "FAILED ADDRE\u017f\u017fES FOLLOW:",
    "b@example.org", "Your message", "your me\u017f\u017fage", "Intended recipient: c@x.org",
    "- no such user here", "- no such u\u017fer here", "Unable to deliver message to",
    "The following recipients did not receive this message:", "thi\u017f message:",
    "\u212a", "\u0130", "\u0131", "\u017f", "\u043e\u0448\u0438\u0431\u043a\u0430", "\xe9", "\xc9",
    "\ufffd", "\n", " ", "x"])


def lowered_premises(body: str) -> None:
    """Where the view has a lowered body, every flufl.bounce start pattern that
    matches the body has its literal hint in it, and ``in_body`` is a search."""
    from flufl.bounce._detectors import caiwireless

    msg = Message()
    msg.set_payload(body)
    view = _FluflView(msg)
    assert view.lowered in ("", body.lower())
    for _detector, _gate, patterns, _shortcut in _detector_plan():
        for entry, hint, _in_body in _prepared(patterns or []):
            plain = re.compile(entry[0].pattern, entry[0].flags | re.M)
            if view.lowered and plain.search(body):
                assert hint in view.lowered, plain.pattern
    phrase = "the following recipients did not receive this message:"
    assert view.in_body(phrase, caiwireless.tcre) == (caiwireless.tcre.search(body) is not None)
    assert outcome(lambda: _flufl_failures(msg)) == outcome(lambda: all_failures(msg))


@settings(max_examples=500, deadline=None)
@given(st.lists(BODY_PIECES, max_size=12).map("".join))
@example("delivery ha\u017f failed\n[a@example.org]\n")
@example("\xe9 Delivery has failed\n[a@example.org]\n")
@example("\u0130 THE FOLLOWING RECIPIENTS DID NOT RECEIVE THIS MESSAGE:")
def test_lowered_non_ascii(body: str) -> None:
    lowered_premises(body)


def test_lowered_on_samples() -> None:
    """Most notices in other scripts get a lowered body (the premise holds there too)."""
    lowered = 0
    for path in SAMPLES:
        mail = Mail.from_bytes(path.read_bytes())
        notice = _notice_only(mail, cut_returned(mail.notice_text))
        view = _FluflView(notice)
        try:
            body = view.body
        except Exception:  # a body flufl.bounce cannot read either
            continue
        if not body.isascii():
            lowered_premises(body)
            lowered += bool(view.lowered)
    assert lowered >= enough(5, 1)


def test_ascii_twins_are_all() -> None:
    """_ASCII_TWINS holds every non-ASCII character that re.I pairs with an ASCII one
    or whose lowercase holds one (the premise of the view's lowered body)."""
    from mailbox_processor.parsers.legacy import _ASCII_TWINS

    ascii_literal = re.compile("|".join(re.escape(chr(i)) for i in range(128)), re.I)
    twins = [chr(c) for c in range(0x80, 0x110000)
             if ascii_literal.fullmatch(chr(c)) or any(ord(x) < 128 for x in chr(c).lower())]
    assert sorted(twins) == sorted(_ASCII_TWINS)
