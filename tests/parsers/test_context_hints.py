"""The diagnostic-hint and error-paragraph patterns of context.py, written as tries,
match what their plain flat forms match; the error-word test on folded lowercase
text is re.I's."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers import context

SAMPLES = sample_paths()

PLAIN_DIAG_HINT = re.compile(
    r"(?<![\d.])[245]\d\d(?![\d.])|\b[245]\.\d{1,3}\.\d{1,3}\b|"
    + "|".join(re.escape(w) for w in context._DIAG_WORDS))


def plain_error_paragraphs(text: str, exclude: list[str], limit: int = 1500) -> str | None:
    """``error_paragraphs`` before its shortcuts: re.I on every paragraph."""
    out: list[str] = []
    size = 0
    for para in re.split(r"\n\s*\n", text):
        low = para.lower()
        if not context._ERRORISH.search(low) or any(a in low for a in exclude):
            continue
        chunk = " ".join(para.split())
        out.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return " ".join(out)[:limit] or None


def agree(text: str) -> None:
    low = text.lower()
    if low.isascii():
        # (_ERRORISH_LC answers only whether there is a match.)
        assert bool(context._ERRORISH_LC.search(low)) == bool(context._ERRORISH.search(low))
    presence = re.compile(context._literal_presence(context._DIAG_WORDS))
    assert bool(presence.search(low)) == \
        any(w in low for w in context._DIAG_WORDS)
    assert context._DIAG_HINT.findall(low) == PLAIN_DIAG_HINT.findall(low)
    assert [m.span() for m in context._DIAG_HINT.finditer(low)] == \
        [m.span() for m in PLAIN_DIAG_HINT.finditer(low)]
    assert context.error_paragraphs(text, []) == plain_error_paragraphs(text, [])
    addresses = re.findall(r"[\w.]+@[\w.]+", low)[:2]
    assert context.error_paragraphs(text, addresses) == plain_error_paragraphs(text, addresses)


def test_real_notices() -> None:
    hints = 0
    for path in SAMPLES:
        text = Mail.from_bytes(path.read_bytes()).notice_text
        agree(text)
        hints += len(PLAIN_DIAG_HINT.findall(text.lower()))
    assert hints > 100


PIECES = st.sampled_from([
    "550", "5.1.1", "4.2.2", "250 2.0.0", "x550", "550.", ".5.1.1", "5.1.1x", "\u0665\u0665\u0660",
    "error", "unknown", "fail", "not exist", "no such", "not", "no", "such", "quota",
    "timed out", "timeout", "couldn't", "could not", "unreachable", "unrouteable",
    "di\u017fabled", "inval\u0131d", "\u0130nvalid", "SUSPENDED", "\u212anown", "a@b.org",
    " ", "\n", "\n\n", "\n \n", ".", "x", "\u00e9"])


@settings(max_examples=800, deadline=None)
@given(st.lists(PIECES, max_size=16).map("".join))
@example("di\u017fabled")
@example("inval\u0131d 5.1.1")
@example("unknown\n\n\u0130NVALID")
def test_generated(text: str) -> None:
    agree(text)
