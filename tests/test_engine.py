"""engine.py: the blank-input test reads as the plain one (``not raw.strip()``)."""

from __future__ import annotations

import pytest

from mailbox_processor import parse_message


@pytest.mark.parametrize("byte", range(256))
def test_blank_input_is_what_strip_leaves_empty(byte: int) -> None:
    for raw in (bytes([byte]), bytes([byte]) * 3 + b" \r\n", bytearray([byte, 32])):
        blank = not bytes(raw).strip()
        assert (parse_message(raw).error == "empty message") is blank
    assert parse_message(b"").error == "empty message"
