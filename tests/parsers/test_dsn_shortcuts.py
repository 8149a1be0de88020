"""The DSN parser's and the context helpers' shortcuts give the plain versions' answers.

Each shortcut is compared with the code it replaced (kept here as the oracle) on the
fixtures, the shared corpus and generated input.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import eager_context, enough, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers import context, dsn
from mailbox_processor.text import ADDRESS, normalise_address

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"


@pytest.fixture(scope="module")
def mails() -> list[Mail]:
    return [Mail.from_bytes(p.read_bytes()) for p in sample_paths()]


# --- delivery-status parts read field by field -------------------------------------

def read_both(part: object) -> tuple[object, object] | None:
    """(shortcut, plain) readings of a delivery-status part, or None when the shortcut
    declines it. A reading is the parse and the count of Final-Recipient lines."""
    lines = dsn._ds_lines(part)  # type: ignore[arg-type]
    if lines is None:
        return None
    text = dsn._ds_text(part)  # type: ignore[arg-type]
    *read, finals = dsn._read_blocks(lines)
    fast = (tuple(read), finals)
    plain = (dsn._parse_blocks(text), dsn._count_final_recipients(text))
    return fast, plain


def test_ds_lines_on_samples(mails: list[Mail]) -> None:
    taken = 0
    for mail in mails:
        for part in mail.find_parts(*dsn._DS_TYPES, max_depth=1):
            both = read_both(part)
            if both is not None:
                taken += 1
                assert both[0] == both[1]
    # The shortcut is exercised, not declined everywhere (fewer samples without the
    # shared corpus beside the project).
    assert taken > (20 if CORPUS.is_dir() else 5)


_NAMES = st.sampled_from([
    "Final-Recipient", "final-recipient ", "Original-Recipient", "Action", "Status",
    "Diagnostic-Code", "Reporting-MTA", "Remote-MTA", "X-Odd_Name", "9x", "X",
    "Arrival-Date", "X-Actual-Recipient", "FINAL-RECIPIENT",
])
_VALUE_PARTS = st.sampled_from([
    "rfc822; a@example.com", "rfc822;b@Example.COM", "<c@host>", "failed", "5.1.1",
    "smtp; 550 5.1.1 user unknown", " ", "\t", "\n ", "\r\n ", "\r\n\t", "\n", "\r",
    "\n\n", "\r\n", "x\xe9", "Final-Recipient: rfc822; d@example.org", "dns; mx.example",
    "", "delayed", ";", ":",
])
_LINE_ENDS = st.sampled_from(["\n", "\r\n"])


@st.composite
def ds_messages(draw: st.DrawFn) -> bytes:
    """A multipart/report with a delivery-status part of random blocks and fields."""
    nl = draw(_LINE_ENDS)
    blocks = []
    for _ in range(draw(st.integers(0, 4))):
        fields = []
        for _ in range(draw(st.integers(0, 6))):
            name = draw(_NAMES)
            value = "".join(draw(st.lists(_VALUE_PARTS, max_size=4)))
            fields.append(f"{name}: {value}")
        if draw(st.booleans()):
            # A line that is no field: compat32 reads it and the rest as the body.
            at = draw(st.integers(0, len(fields)))
            fields.insert(at, draw(st.sampled_from([" ", "body text", "X_Y: 1", "\xe9: 2"])))
        blocks.append(nl.join(fields))
    ds = (nl + nl).join(blocks)
    raw = nl.join([
        "From: MAILER-DAEMON@example.org", "To: b@example.org", "Subject: report",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"', "",
        "--b", "Content-Type: text/plain", "", "notice", "",
        "--b", "Content-Type: message/delivery-status", "", ds, "--b--", ""])
    return raw.encode("utf-8", "surrogateescape")


@settings(max_examples=400, deadline=None)
@given(ds_messages())
def test_ds_lines_on_generated_parts(raw: bytes) -> None:
    for part in Mail.from_bytes(raw).find_parts(*dsn._DS_TYPES):
        both = read_both(part)
        if both is not None:
            assert both[0] == both[1]


def test_ds_lines_on_hand_built_blocks() -> None:
    """Blocks the parser never builds (a lone CR in a value, a body) are read as text."""
    from email.message import Message

    cases = [("Original-Recipient", "rfc822; a@example.com\rFinal-Recipient: rfc822; b@x.org"),
             ("Final-Recipient", "rfc822; a@example.com\r"),
             ("Final-Recipient", "rfc822; a@example.com\r\n\tc@x.org")]
    for name, value in cases:
        part, block = Message(), Message()
        block["Reporting-MTA"] = "dns; mx.example"
        block[name] = value
        block["Action"] = "failed"
        part.set_payload([block])
        part["Content-Type"] = "message/delivery-status"
        both = read_both(part)
        assert both is None or both[0] == both[1], (name, value)
    block.set_payload("Final-Recipient: rfc822; d@x.org\n")
    assert dsn._ds_lines(part) is None


def plain_recipient_of(fields: dict[str, str]) -> str | None:
    """``_recipient_of`` as it was: every address normalised, then chosen."""
    found = []
    for key in ("final-recipient", "original-recipient", "x-actual-recipient"):
        value = fields.get(key)
        if value:
            addr = normalise_address(value)
            if addr:
                found.append(addr)
    if not found:
        return None
    if "." not in found[0].rsplit("@", 1)[1] and len(found) > 1:
        return found[1]
    return found[0]


_ADDRESS_VALUES = st.sampled_from([
    "", "rfc822; a@example.com", "b@server", "rfc822; <c@host>", "nobody", "d@x.y",
    "rfc822;", "e@[10.0.0.1]", "f@internal",
])


@given(st.dictionaries(st.sampled_from(["final-recipient", "original-recipient",
                                        "x-actual-recipient", "action"]), _ADDRESS_VALUES))
def test_recipient_of(fields: dict[str, str]) -> None:
    assert dsn._recipient_of(fields) == plain_recipient_of(fields)


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
    assert asked > (200 if CORPUS.is_dir() else 50)


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


# --- find_returned ------------------------------------------------------------------------

def top_level_branches(pattern: str) -> list[str]:
    """The alternatives of ``^(?:a|b|...)``, split where the group's own "|" are."""
    assert pattern.startswith("^(?:") and pattern.endswith(")")
    body = pattern[4:-1]
    out, depth, klass, cur, i = [], 0, False, "", 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            cur += body[i:i + 2]
            i += 2
            continue
        if klass:
            klass = ch != "]"
        elif ch == "[":
            klass = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(cur)
            cur = ""
            i += 1
            continue
        cur += ch
        i += 1
    return [*out, cur]


def test_every_marker_needs_a_dash_line_or_a_marker_word() -> None:
    branches = top_level_branches(context.RETURNED_MARKERS.pattern.lower())
    assert len(branches) == 8
    for branch in branches:
        # A dash right after the line's blanks (the branch opens with it, not
        # optionally), or one of the words outside any group or option.
        opens_with_dash = branch.startswith(("[ \\t]*-", ))
        word = next((w for w in context._MARKER_WORDS if w in branch), None)
        assert opens_with_dash or word is not None, branch
        if not opens_with_dash:
            assert word is not None
            before = branch[:branch.index(word)]
            assert "(" not in before and "|" not in before, branch


def plain_find_returned(text: str) -> re.Match[str] | None:
    return context.RETURNED_MARKERS.search(text)


def same_returned(text: str) -> None:
    context.find_returned.cache_clear()
    got, want = context.find_returned(text), plain_find_returned(text)
    assert (got and (got.span(), got.group())) == (want and (want.span(), want.group()))


def test_find_returned_on_samples(mails: list[Mail]) -> None:
    for mail in mails:
        same_returned(mail.notice_text)


_RETURNED_PARTS = st.sampled_from([
    "\n", "\n\n", " ", "\t", "-", "--", "---", "=", "==", "original message", "Original Message",
    "ORIGINAL MESSAGE follows", "The original message is as follows", "Content-Type: ",
    "message/rfc822", "text/rfc822-headers", "Below this line is a copy of the message",
    "unsent message below", "returned message", "x", "\x0b", "\x1c", "é",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(_RETURNED_PARTS, max_size=25))
def test_find_returned_on_generated_text(parts: list[str]) -> None:
    same_returned("".join(parts))


# --- the context left to be worked out when the classifier reads it -----------------

@pytest.mark.pure_python
def test_deferred_context_is_the_one_worked_out_at_once(
        mails: list[Mail], monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the contexts later, in another order, gives what the parser would have
    stored at once (the helpers it calls keep one-entry caches)."""
    lazy = [dsn.DSN().parse(m) for m in mails]
    with monkeypatch.context() as patch:
        patch.setattr(dsn, "defer_context", eager_context)
        eager = [dsn.DSN().parse(Mail.from_bytes(m.raw)) for m in mails]
    assert lazy == eager
    read = [[f.context for f in reversed(findings)] for findings in lazy]
    assert read == [[f.context for f in reversed(findings)] for findings in eager]
    assert sum(1 for findings in read for c in findings if c) >= enough(100, 5)


def test_deferred_context_is_the_plain_one(mails: list[Mail]) -> None:
    """On DSNs with one delivery-status part: the context of each finding is the plain
    reading's (the text around the address unless it is the diagnostic, plus the
    notice's error paragraphs for a lone recipient)."""
    checked = 0
    for mail in mails:
        if len(mail.find_parts(*dsn._DS_TYPES)) != 1:
            continue
        findings = dsn.DSN().parse(mail)
        if not findings or len(findings) > 200:
            continue
        notice = mail.notice_text
        everyone = frozenset(f.recipient for f in findings if f.recipient)
        alone = context.error_paragraphs(context.cut_returned(notice), exclude=[]) \
            if len(findings) == 1 else None
        for f in findings:
            assert f.recipient is not None
            near = context.diagnostic_near(notice, f.recipient, others=everyone - {f.recipient})
            plain = " ".join(c for c in (near if near != f.diagnostic else None, alone)
                             if c) or None
            assert f.context == plain, f.recipient
            checked += 1
    assert checked >= enough(100, 5)
