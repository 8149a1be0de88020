"""The context helpers' shortcuts give the plain versions' answers.

Each shortcut is compared with the code it replaced (kept here as the oracle) on the
fixtures, the shared corpus and generated input.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbox_processor.mime import Mail
from mailbox_processor.parsers import context
from mailbox_processor.text import ADDRESS

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"


def sample_paths() -> list[Path]:
    paths = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.is_file()
                   and p.suffix not in (".py", ".md"))
    if CORPUS.is_dir():
        paths += sorted(p for p in CORPUS.rglob("*") if p.is_file())
    return paths


@pytest.fixture(scope="module")
def mails() -> list[Mail]:
    return [Mail.from_bytes(p.read_bytes()) for p in sample_paths()]


# --- diagnostic_near ------------------------------------------------------------------

def plain_reply_below(lines: list[str], start: int, addr: str, max_lines: int = 8) -> str:
    taken: list[str] = []
    for j in range(start, min(len(lines), start + max_lines)):
        line = lines[j].strip()
        if not line:
            if any(context._CODE.search(t) for t in taken):
                break
            continue
        m = ADDRESS.search(line) if "@" in line else None
        if m and m.group(1).lower() != addr:
            return ""
        taken.append(line)
    return " ".join(taken) if any(context._CODE.search(t) for t in taken) else ""


def plain_diagnostic_near(text: str, address: str, *, max_lines: int = 8,
                          others: frozenset[str] = frozenset()) -> str | None:
    """``diagnostic_near`` before its shortcuts (every hit scored in full, every line
    tried for an address and a new block)."""
    if not text or not address:
        return None
    lowered, lines = text.lower(), text.split("\n")
    addr = address.lower()
    best: tuple[int, str] | None = None
    start = 0
    hits = 0
    n = 0
    counted = 0
    while hits < 20:
        i = lowered.find(addr, start)
        if i < 0:
            break
        hits += 1
        start = i + len(addr)
        n += text.count("\n", counted, i)
        counted = i
        line_start = i - (text.rfind("\n", 0, i) + 1)
        before = lines[n][:line_start].strip(" \t<\"'")
        rest = lines[n][line_start + len(addr):]
        chunk = [(before + " " + rest.strip(" \t>:;,.\"'")).strip()]
        for j in range(n + 1, min(len(lines), n + 1 + max_lines)):
            line = lines[j]
            if not line.strip():
                if any(c.strip() for c in chunk):
                    break
                continue
            low = line.lower()
            if (context._starts_with_address(line) and addr not in low) \
                    or context._NEW_BLOCK.match(line):
                break
            if others and any(o in low for o in others):
                break
            chunk.append(line.strip())
        ctx = " ".join(c for c in chunk if c)
        if not context._CODE.search(ctx):
            ctx = (ctx + " " + plain_reply_below(lines, n + len(chunk), addr)).strip()
        score = len(context._DIAG_HINT.findall(ctx.lower()))
        if not score and n > 0:
            above: list[str] = []
            for j in range(n - 1, max(-1, n - 4), -1):
                if not lines[j].strip():
                    break
                above.insert(0, lines[j].strip())
            ctx = (" ".join(above) + " " + ctx).strip()
            score = len(context._DIAG_HINT.findall(ctx.lower()))
        if best is None or score > best[0] or (score == best[0] and len(ctx) > len(best[1])
                                                and score > 0):
            best = (score, ctx)
    if best is None or not best[1]:
        return None
    return " ".join(best[1].split())[:2000] or None


def test_diagnostic_near_on_samples(mails: list[Mail]) -> None:
    asked = 0
    for mail in mails:
        notice = mail.notice_text
        found = list(dict.fromkeys(m.group(1).lower() for m in ADDRESS.finditer(notice)))
        for addr in found[:6]:
            others = frozenset(found[:6]) - {addr}
            for text in (notice, context.cut_returned(notice)):
                asked += 1
                assert context.diagnostic_near(text, addr, others=others) == \
                    plain_diagnostic_near(text, addr, others=others)
    assert asked > 200


_NOTICE_PARTS = st.sampled_from([
    "a@example.com", "A@Example.com", "<a@example.com>", "b@example.com", "c@other.org",
    "550", "5.1.1", "250 ok", "4.2.2", "user unknown", "mailbox full", "could not found",
    "While talking to mx:", "WHILE TALKING TO", "... ", "550 a@example.com (smtp)...",
    "... while talking to x", "\n", "\n\n", "\n \n", " ", "\t", "ı", "Σ", "İ", "K",
    "Delivery failed:", "The error that the other server returned was:", "host", ">",
    "RCPT TO:<a@example.com>", "-", "timed out", "text", "\nb@example.com: 550 no",
    "\n550 c@other.org", "\n<c@other.org>", "\nc@other.org", "\n  A@example.com said",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(_NOTICE_PARTS, max_size=40),
       st.sampled_from(["a@example.com", "b@example.com", "c@other.org"]),
       st.sets(st.sampled_from(["a@example.com", "b@example.com", "c@other.org"])))
def test_diagnostic_near_on_generated_text(parts: list[str], addr: str,
                                           others: set[str]) -> None:
    text = "".join(parts)
    other = frozenset(others) - {addr}
    assert context.diagnostic_near(text, addr, others=other) == \
        plain_diagnostic_near(text, addr, others=other)


def test_new_block_needs_its_literals() -> None:
    """The pre-check before _NEW_BLOCK: a match has "..." or " to " (in any case: re.I
    folds no other character to "t" or "o")."""
    assert "..." in context._NEW_BLOCK.pattern.replace("\\.", ".")
    for ch in map(chr, range(0x110000)):
        if ch not in "tT" and re.fullmatch("t", ch, re.I):
            raise AssertionError(repr(ch))
        if ch not in "oO" and re.fullmatch("o", ch, re.I):
            raise AssertionError(repr(ch))


# --- find_gateway -----------------------------------------------------------------------

def plain_find_gateway(mail: Mail, reporting: str | None = None) -> str | None:
    head = mail.raw[:4096].decode("latin-1").lower()
    for (gid, pattern, _why), head_pattern in zip(
            context.GATEWAYS, context._GATEWAYS_IN_HEAD, strict=True):
        if (reporting and pattern.search(reporting)) or head_pattern.search(head):
            return gid
    return None


def test_find_gateway_on_samples(mails: list[Mail]) -> None:
    for mail in mails:
        for reporting in (None, "inbound-smtp.us-east-1.amazonaws.com", "mx.example"):
            assert context.find_gateway(mail, reporting) == plain_find_gateway(mail, reporting)


_HEAD_PARTS = st.sampled_from([
    b"inbound-smtp.", b"INBOUND-SMTP.", b"us-east-1", b".amazonaws.com", b"\n",
    b"Active!Hunter", b"ACTIVE!hunter", b"active", b"!", b"hunter", b"X-Mailer: ",
    b"\xc0", b"\xff", b"From: a@b\n", b"-",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_HEAD_PARTS, max_size=12))
def test_find_gateway_on_generated_heads(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    mail = Mail(Mail.from_bytes(b"From: x@y\n\nbody").msg, raw)
    assert context.find_gateway(mail) == plain_find_gateway(mail)
