"""engine.py: the blank-input test reads as the plain one (``not raw.strip()``), and the
headers of an inlined returned message are the plain search's."""

from __future__ import annotations

import pytest
from strategies import enough, sample_paths

from mailbox_processor import engine, parse_message
from mailbox_processor.mime import Mail
from mailbox_processor.models import OriginalMessage
from mailbox_processor.parsers.context import find_returned


@pytest.mark.parametrize("byte", range(256))
def test_blank_input_is_what_strip_leaves_empty(byte: int) -> None:
    for raw in (bytes([byte]), bytes([byte]) * 3 + b" \r\n", bytearray([byte, 32])):
        blank = not bytes(raw).strip()
        assert (parse_message(raw).error == "empty message") is blank
    assert parse_message(b"").error == "empty message"


def _inline_plain(mail: Mail) -> dict[str, str]:
    """The headers of an inlined returned message, read the plain way: the pattern's
    own finditer, up to 20,000 characters after the marker."""
    text = mail.notice_text
    m = find_returned(text)
    found: dict[str, str] = {}
    if m:
        for hm in engine._INLINE_HEADER.finditer(text, m.end(),
                                                 min(len(text), m.end() + 20000)):
            found.setdefault(hm.group(1).lower(), hm.group(2).strip())
    return found


def _as_original(found: dict[str, str]) -> OriginalMessage:
    return OriginalMessage(message_id=engine._msgid(found.get("message-id")),
                           subject=found.get("subject"), from_addr=found.get("from"),
                           to_addr=found.get("to"), date=found.get("date"))


def test_inlined_original_headers_as_the_plain_search() -> None:
    inlined = 0
    for path in sample_paths():
        mail = Mail.from_bytes(path.read_bytes())
        if mail.returned is not None:
            continue
        plain = _inline_plain(mail)
        inlined += bool(plain)
        assert engine._original(mail) == (_as_original(plain) if find_returned(
            mail.notice_text) else OriginalMessage()), path.name
    assert inlined >= enough(30, 2)


@pytest.mark.parametrize("gap", [0, 1, 19_990, 19_999, 20_000, 20_001, 25_000])
def test_inlined_original_headers_cut_at_20000_characters(gap: int) -> None:
    """A header line past the 20,000 characters is not read; one cut by the limit is
    read up to it, as the plain search's endpos does."""
    body = ("Delivery failed.\n\n--- Below this line is a copy of the message.\n\n"
            + "x" * gap + "\nSubject: far away\nFrom: a@example.com\n")
    mail = Mail.from_bytes(b"From: MAILER-DAEMON@example.com\nSubject: failure\n\n"
                           + body.encode())
    assert engine._original(mail) == _as_original(_inline_plain(mail))
