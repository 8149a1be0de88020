"""Pull a recipient's diagnostic out of the human-readable text around its address."""

from __future__ import annotations

import re

from mailbox_processor.mime import Mail
from mailbox_processor.text import ADDRESS

_DIAG_HINT = re.compile(
    r"(?<![\d.])[245]\d\d(?![\d.])|\b[245]\.\d{1,3}\.\d{1,3}\b|unknown|not exist|no such|"
    r"invalid|full|quota|"
    r"reject|denied|refused|block|spam|unavailable|disabled|suspend|error|fail|timeout|"
    r"timed out|expired|unreachable|not found|too (?:large|big|many)|exceed|unrout|"
    r"not recognized|no mailbox|host|domain|loop|relay|could not|couldn't|unable|aborted|"
    r"gateway|denied|not allowed|limit|not listed|directory",
    # applied to lowercased text (re.I is several times slower)
)

#: Lines that start the returned message or its headers in a text bounce.
RETURNED_MARKERS = re.compile(
    r"^(?:[ \t]*-{2,}[ \t]*(?:Below this line is a copy of the message|This is a copy of|"
    r"Original message|Original Message|Begin Message|The (?:header|original) of the original|"
    r"Returned mail text|Message header follows|Unsent Message below|Headers of the original|"
    r"Undelivered message headers|Original message headers)"
    r"|[ \t]*-+ ?(?:Original|Returned|Forwarded) message.*-+ ?$"
    r"|Original message follows\.?$|The original message is as follows"
    r"|[ \t]*-+[ \t]*Unsent Message (?:below|follows)"
    r"|\s*[-=]+\s*original message\s*[-=]*"
    r"|Content-Type: message/rfc822"
    r"|Content-Type: text/rfc822-headers"
    r")",
    re.I | re.M,
)
#: The same markers for lowercased ASCII text (re.I is several times slower).
# (Lowercasing a pattern would turn \S into \s: the markers use no such escape.)
assert not re.search(r"\\[A-Z]", RETURNED_MARKERS.pattern)
_RETURNED_MARKERS_LC = re.compile(RETURNED_MARKERS.pattern.lower(), re.M)
_HEADER_BLOCK = re.compile(
    r"\n\n(?:return-path|received|message-id|x-original-to|delivered-to):[ \t]"
)


def find_returned(text: str) -> re.Match[str] | None:
    """Where the returned message starts in a notice, if it is inlined."""
    if text.isascii():
        return _RETURNED_MARKERS_LC.search(text.lower())
    return RETURNED_MARKERS.search(text)


def looks_like_diagnostic(text: str) -> bool:
    """True when ``text`` names a cause (a code, a status or an error word)."""
    return bool(_DIAG_HINT.search(text.lower()))


def cut_returned(text: str) -> str:
    """``text`` up to where the returned original message starts (if it is inlined)."""
    m = find_returned(text)
    if m and m.start() > 0:
        text = text[: m.start()]
    # A bare header block (Received:/Return-Path: after a blank line) also starts it.
    # (lower() keeps the length of any text whose case folding is one-to-one.)
    low = text.lower()
    if len(low) == len(text):
        m2 = _HEADER_BLOCK.search(low)
        if m2:
            text = text[: m2.start()]
    return text


def split_diagnostic(value: str | None) -> tuple[str | None, str | None]:
    """Split ``"smtp; 550 5.1.1 ..."`` into ``("SMTP", "550 5.1.1 ...")`` (RFC 3464 2.3.6)."""
    if not value:
        return None, None
    if "\x1b$" in value:
        # Raw ISO-2022-JP inside a 7-bit field (Japanese MTAs do this).
        value = value.encode("latin-1", "replace").decode("iso2022_jp_ext", "replace")
    v = re.sub(r"\s+", " ", value).strip()
    m = re.match(r"([A-Za-z][A-Za-z0-9-]{0,20})\s*;\s*(.*)$", v)
    if m:
        return m.group(1).upper(), m.group(2).strip() or None
    return None, v or None


def diagnostic_near(
    text: str, address: str, *, max_lines: int = 8, others: frozenset[str] = frozenset()
) -> str | None:
    """The best-looking diagnostic around an occurrence of ``address`` in ``text``.

    Looks at the rest of the address's line and the lines below it (to a blank
    line, the next address block, a line naming one of ``others`` (the message's
    other failed recipients), or ``max_lines``), then at the lines above when
    the address stands alone. Occurrences whose context looks most like an error
    (SMTP codes, status codes, error words) win.
    """
    if not text or not address:
        return None
    lowered = text.lower()
    addr = address.lower()
    lines = text.split("\n")
    # Index lines by character offset once.
    offsets = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    best: tuple[int, str] | None = None
    start = 0
    hits = 0
    while hits < 20:
        i = lowered.find(addr, start)
        if i < 0:
            break
        hits += 1
        start = i + len(addr)
        # Line number of this hit.
        lo, hi = 0, len(offsets) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if offsets[mid] <= i:
                lo = mid
            else:
                hi = mid - 1
        n = lo
        line_start = i - offsets[n]
        before = lines[n][:line_start].strip(" \t<\"'")
        rest = lines[n][line_start + len(addr):]
        # Keep words before the address too ("554 delivery error: dd <a@b> ...").
        chunk = [(before + " " + rest.strip(" \t>:;,.\"'")).strip()]
        for j in range(n + 1, min(len(lines), n + 1 + max_lines)):
            line = lines[j]
            if not line.strip():
                if any(c.strip() for c in chunk):
                    break
                continue
            if (_starts_with_address(line) and addr not in line.lower()) or _NEW_BLOCK.match(line):
                break
            if others and any(o in line.lower() for o in others):
                break  # the next failed recipient's reply
            chunk.append(line.strip())
        context = " ".join(c for c in chunk if c)
        if not _CODE.search(context):
            # Gmail and others put the remote reply in the next paragraph ("The error
            # that the other server returned was:"): take it when it names no one else.
            context = (context + " " + _reply_below(lines, n + len(chunk), addr)).strip()
        score = len(_DIAG_HINT.findall(context.lower()))
        if not score and n > 0:
            # "Delivery failed: mailbox full" above a bare address.
            above: list[str] = []
            for j in range(n - 1, max(-1, n - 4), -1):
                if not lines[j].strip():
                    break
                above.insert(0, lines[j].strip())
            context = (" ".join(above) + " " + context).strip()
            score = len(_DIAG_HINT.findall(context.lower()))
        if best is None or score > best[0] or (score == best[0] and len(context) > len(best[1])
                                                and score > 0):
            best = (score, context)
    if best is None or not best[1]:
        return None
    return re.sub(r"\s+", " ", best[1]).strip()[:2000] or None


#: Lines that open another recipient's or host's block in a Sendmail transcript.
_NEW_BLOCK = re.compile(
    r"\s*(?:[245]\d\d \S+ \((?:e?smtp|tcp|local)\)\.\.\.|(?:\.\.\.\s*)?While talking to )",
    re.I,
)


_CODE = re.compile(r"(?<![\d.])[245]\d\d(?![\d.])|\b[245]\.\d{1,3}\.\d{1,3}\b")


def _reply_below(lines: list[str], start: int, addr: str, max_lines: int = 8) -> str:
    """The next lines holding an SMTP reply, if they mention no other address."""
    taken: list[str] = []
    for j in range(start, min(len(lines), start + max_lines)):
        line = lines[j].strip()
        if not line:
            if any(_CODE.search(t) for t in taken):
                break
            continue
        m = ADDRESS.search(line)
        if m and m.group(1).lower() != addr:
            return ""
        taken.append(line)
    return " ".join(taken) if any(_CODE.search(t) for t in taken) else ""


def _starts_with_address(line: str) -> bool:
    s = re.sub(r"^\s*[245]\d\d[ -]", "", line).lstrip(" \t<\"'")
    m = ADDRESS.match(s)
    return m is not None


#: A paragraph that reads like an error report.
_ERRORISH = re.compile(
    r"(?<![\d.])[45]\d\d(?![\d.])|\b[45]\.\d{1,3}\.\d{1,3}\b|error|unknown|fail|reject|"
    r"denied|full|quota|invalid|not exist|no such|disabled|suspended",
    re.I,  # (callers pass lowercased text where they can)
)


def error_paragraphs(text: str, exclude: list[str], limit: int = 1500) -> str | None:
    """Paragraphs that read like an error report, skipping those about other recipients."""
    out: list[str] = []
    size = 0
    for para in re.split(r"\n\s*\n", text):
        low = para.lower()
        if not _ERRORISH.search(low) or any(a in low for a in exclude):
            continue
        chunk = re.sub(r"\s+", " ", para).strip()
        out.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return " ".join(out)[:limit] or None


#: Gateways that accept every recipient, then bounce on their own or on an inner
#: server's behalf: (id, regex on the Reporting-MTA or the raw headers, why).
GATEWAYS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("amazon-ses-inbound", re.compile(r"^inbound-smtp\.[a-z0-9-]+\.amazonaws\.com$", re.I),
     "Amazon SES receiving: a receipt rule's Bounce action, whose SMTP reply the domain "
     "owner picked from templates ('Mailbox does not exist'); a rule, not a lookup"),
    ("active-hunter", re.compile(r"Active!Hunter", re.I),
     "Active!Hunter anti-spam gateway: accepts at RCPT, then relays the inner server's "
     "refusal"),
)


def find_gateway(mail: Mail, reporting: str | None = None) -> str | None:
    """The id of the store-and-forward gateway that reported this bounce, if any."""
    head = mail.raw[:4096].decode("latin-1")
    for gid, pattern, _why in GATEWAYS:
        if (reporting and pattern.search(reporting)) or pattern.search(head):
            return gid
    return None
