"""QuickPattern (context.py) finds exactly its pattern's matches: on real notices, on
generated text, for every QuickPattern the parsers use; and it refuses patterns whose
lowercase twin would not."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import enough, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers import context, dsn, legacy
from mailbox_processor.parsers.context import QuickPattern

SAMPLES = sample_paths()


def used() -> list[QuickPattern[str] | QuickPattern[bytes]]:
    """Every QuickPattern the parser modules define (alone or in a list)."""
    out: list[QuickPattern[str] | QuickPattern[bytes]] = []
    for module in (context, dsn, legacy):
        for value in vars(module).values():
            values = value if isinstance(value, (list, tuple)) else [value]
            out.extend(v for v in values if isinstance(v, QuickPattern))
    return out


QUICK = [q for q in used() if isinstance(q.pattern.pattern, str)]
QUICK_BYTES = [q for q in used() if isinstance(q.pattern.pattern, bytes)]


def test_both_rewrites_are_in_use() -> None:
    assert any(q._line_start for q in QUICK)
    assert any(q._ascii is not q._any for q in QUICK)
    assert len(QUICK) >= 8
    assert QUICK_BYTES


def agree(text: str) -> None:
    for q in QUICK:
        plain = [(m.span(), m.groups()) for m in q.pattern.finditer(text)]
        lowered = text.lower()
        for given_lowered in (None, lowered):
            quick = [(m.span(), m.groups()) for m in q.finditer(text, given_lowered)]
            assert quick == plain, q.pattern.pattern
            first = q.search(text, given_lowered)
            assert (first.span() if first else None) == (plain[0][0] if plain else None)
            assert q.found_in(text, given_lowered) == bool(plain)


def agree_bytes(raw: bytes) -> None:
    for q in QUICK_BYTES:
        plain = [(m.span(), m.groups()) for m in q.pattern.finditer(raw)]
        assert [(m.span(), m.groups()) for m in q.finditer(raw)] == plain
        assert [(m.span(), m.groups()) for m in q.finditer(raw, raw.lower())] == plain
        assert q.found_in(raw) == bool(plain)


def test_real_notices() -> None:
    seen = 0
    for path in SAMPLES:
        raw = path.read_bytes()
        agree_bytes(raw)
        mail = Mail.from_bytes(raw)
        for text in (mail.notice_text, mail.subject, mail.from_addr):
            agree(text)
            seen += 1
    assert seen > enough(100, 40)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    b"Message-ID: <a@b.org>", b"\nIn-Reply-To:", b"\nREFERENCES: <x@y>", b"\n> Content-ID:",
    b"\n", b"\r\n", b" ", b"\t", b"<", b">", b"@", b"\xff", b"\xc9", b"x"]), max_size=14)
    .map(b"".join))
def test_generated_bytes(raw: bytes) -> None:
    agree_bytes(raw)


PIECES = st.sampled_from([
    "Original-Recipient: rfc822;a@b.org", "FINAL-RECIPIENT: <c@d.org>", "<e@f.org>:",
    "550 <g@h.org>... User unknown", "  i@j.org", "k@l.org: reason", "RCPT TO:<m@n.org>",
    "Recipient address: o@p.org", "\nTo: u@v.org", "\nEmpf\u00e4nger: y@z.org",
    "From: x <s@t.org>", "Return-Path: <r@q.org>", "Sender: a@b.org", "message from",
    "Sent by", "Mail Delivery System", "MAILER-DAEMON", "Undeliverable", "delivery failed",
    "error", "ERROR", "@", "\n", "\n\n", " ", "\t", ":", "<", ">", "\u017f", "\u212a",
    "\u0130", "\u0131", "to", "\r\n", "sender:", "\n  "])


@settings(max_examples=600, deadline=None)
@given(st.lists(PIECES, max_size=14).map("".join))
@example("Sender:\n\nFrom: a@b.org")
@example("\n\nReturn-Path: <x@y.org>\nTo: a@b.org\n c@d.org")
@example("Mail Deliver\u0131 failed")
@example("Return-Path: <a@b.org>\u212a")
def test_generated(text: str) -> None:
    agree(text)


@pytest.mark.parametrize("source", [
    r"\S+a", r"\Wa", r"[0-Z]x", r"[\x00-\x7f]a", r"\x41b", "\u017fa", "\u0130a", r"(a)\1"])
def test_unsafe_twins_are_refused(source: str) -> None:
    with pytest.raises(ValueError):
        QuickPattern(re.compile(source, re.I))


def test_unsafe_bytes_twins_are_refused() -> None:
    with pytest.raises(ValueError):
        QuickPattern(re.compile(rb"\S+a", re.I))


def test_safe_twins_are_taken() -> None:
    q = QuickPattern(re.compile(r"[a-f0-9]+\s*x", re.I))
    assert q._ascii is not q._any
    assert [m.group() for m in q.finditer("AB x, 12X")] == ["AB x", "12X"]


@pytest.mark.parametrize("source", [r"^(?<=\n)a", r"^a?", r"x*"])
def test_unsafe_line_patterns_are_refused(source: str) -> None:
    with pytest.raises(ValueError):
        QuickPattern(re.compile(source, re.M))


def test_a_top_level_alternative_is_not_a_line_pattern() -> None:
    q = QuickPattern(re.compile(r"^a|b", re.M))
    assert not q._line_start
    assert [m.span() for m in q.finditer("xb\na")] == [(1, 2), (3, 4)]


def flufl_start_tests() -> list[tuple[re.Pattern[str], Callable[[str, str | None], bool]]]:
    """Each flufl.bounce start pattern (multi-line) with the legacy parser's test."""
    out = []
    for _detector, _gate, patterns, _shortcut in legacy._detector_plan():
        for entry, _hint, in_body in legacy._prepared(patterns or []):
            out.append((re.compile(entry[0].pattern, entry[0].flags | re.M), in_body))
    return out


FLUFL_STARTS = flufl_start_tests()


def agree_flufl(body: str) -> int:
    lowered = body.lower() if body.isascii() else None
    hits = 0
    for plain, in_body in FLUFL_STARTS:
        expected = plain.search(body) is not None
        assert in_body(body, lowered) == expected, plain.pattern
        hits += expected
    return hits


def test_flufl_starts_on_real_notices() -> None:
    assert len(FLUFL_STARTS) > 40
    assert sum(agree_flufl(Mail.from_bytes(path.read_bytes()).notice_text)
               for path in SAMPLES) > enough(20, 8)


FLUFL_PIECES = st.sampled_from([
    "Your message", "YOUR MESSAGE", "your message\n", "A message that you sent could not be "
    "delivered", "Unable to deliver message to", "Intended recipient: a@b.org",
    "--> Error description:", "Delivery has failed", "Del", "ivery to the following recipients "
    "failed", "\n", " ", "  \n", "\u017f", "\u212a", "\u0130", "x"])


@settings(max_examples=400, deadline=None)
@given(st.lists(FLUFL_PIECES, max_size=12).map("".join))
@example("\nYour message  \n")
@example("Your me\u017f\u017fage")
def test_flufl_starts_on_generated_text(body: str) -> None:
    agree_flufl(body)
