"""The views of a message that the legacy parser's flufl.bounce gates read are what
they stand for: the Mail's field names answer ``name in msg`` for the notice-only
message as the message itself does; the body is ``body_line_iterator``'s lines."""

from __future__ import annotations

from collections.abc import Callable
from email.iterators import body_line_iterator

from hypothesis import given, settings
from strategies import edited_samples, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers.context import cut_returned
from mailbox_processor.parsers.legacy import _flufl_failures, _FluflView, _notice_only

SAMPLES = sample_paths()
# (Not Content-Transfer-Encoding: a single-part notice drops it, and no gate asks.)
NAMES = ("x-failed-recipients", "from", "x-mailer", "content-type")


def agree(raw: bytes) -> int:
    mail = Mail.from_bytes(raw)
    notice = _notice_only(mail, cut_returned(mail.notice_text))
    view = _FluflView(notice, mail.field_names)
    for msg in (notice, mail.msg):
        assert outcome(lambda m=msg: _FluflView(m).body) == \
            outcome(lambda m=msg: "".join(body_line_iterator(m)))
    asked = 0
    for name in NAMES:
        assert view.has_field(name) == (name in notice)
        asked += name in notice
    assert outcome(lambda: _flufl_failures(notice, mail.field_names)) == \
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
                                    b"Content-Type: multipart/mixed\n"],
                      max_edits=4, max_cut=80))
def test_edited(raw: bytes) -> None:
    agree(raw)



def test_view_values_are_computed_once() -> None:
    descriptor = _FluflView.__dict__["body"]
    calls: list[object] = []
    original = descriptor.func
    descriptor.func = lambda view: calls.append(view) or original(view)
    try:
        view = _FluflView(Mail.from_bytes(SAMPLES[0].read_bytes()).msg)
        first = view.body
        assert view.body is first and vars(view)["body"] is first
        assert calls == [view]
    finally:
        descriptor.func = original
