"""Pull a recipient's diagnostic out of the human-readable text around its address."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any, AnyStr, Generic, cast

from mailbox_processor.mime import Mail
from mailbox_processor.text import ADDRESS, anchored_literal, sre_parse


class QuickPattern(Generic[AnyStr]):
    r"""``pattern.finditer``/``search`` (the same matches, ``pattern``'s own, on the
    text given) with less scanning, by two rewrites, each where it applies:

    * a re.I pattern runs as its lowercase twin on the lowercased text when the text
      is ASCII (re.I makes a scan several times slower; on ASCII text case-blind
      matching is plain matching of the lowered text, while on other text re.I also
      pairs e.g. "ſ" with "s", so the pattern itself runs there; a bytes pattern's
      re.I, like ``bytes.lower()``, knows ASCII letters only, so its twin always runs);
    * a pattern that starts with ``^`` in re.M mode is searched as ``\n`` + the rest
      in the text with a "\n" put in front: ``re`` then tries line starts only,
      found by their literal first character, instead of trying ``^`` at every
      position. (A match of the rewritten pattern at offset ``k`` of the padded text
      is a match of ``pattern`` at offset ``k`` of the text: the same characters
      follow, and ``k`` is a line start.)

    Each position found is then matched with ``pattern`` at that offset of the text,
    so callers get ``pattern``'s match objects. The pattern must not match the empty
    string (each match moves the scan on, as in ``finditer``).
    """

    def __init__(self, pattern: re.Pattern[AnyStr]) -> None:
        self.pattern: re.Pattern[AnyStr] = pattern
        source, flags = pattern.pattern, pattern.flags
        self._bytes = isinstance(source, bytes)
        #: What is put in front of the text for a line-start search.
        self._newline: AnyStr = cast(AnyStr, b"\n" if self._bytes else "\n")
        readable: str = source.decode("latin-1") if isinstance(source, bytes) \
            else cast(Any, source)
        parsed = sre_parse.parse(source, flags)
        if parsed.getwidth()[0] == 0:
            raise ValueError(f"{readable!r} can match the empty string")
        self._line_start = bool(flags & re.M) and readable.startswith("^") \
            and list(parsed)[:1] == [(sre_parse.AT, sre_parse.AT_BEGINNING)]
        if self._line_start:
            if "(?<" in readable or "\\A" in readable:
                # (A look-behind at offset 0 would see the "\n" put in front of the text.)
                raise ValueError(f"{readable!r} looks behind")
            source = cast(AnyStr, cast(Any, self._newline) + source[1:])
        self._any: re.Pattern[AnyStr] = re.compile(source, flags) if self._line_start \
            else pattern
        self._ascii: re.Pattern[AnyStr] = self._any
        if flags & re.I:
            twin = _lowercase_pattern(readable)
            if self._line_start:
                twin = "\n" + twin[1:]
            _check_twin(readable, twin, flags & ~re.I)
            self._ascii = re.compile(
                cast(AnyStr, twin.encode("latin-1") if self._bytes else twin), flags & ~re.I)

    def _hay(self, text: AnyStr, lowered: AnyStr | None) -> tuple[re.Pattern[AnyStr], AnyStr]:
        """The pattern to search with and the text to search in."""
        finder, hay = self._any, text
        if self._ascii is not self._any and (self._bytes or text.isascii()):
            finder, hay = self._ascii, cast(Any, text.lower()) if lowered is None \
                else lowered
        return finder, cast(AnyStr, cast(Any, self._newline) + hay) if self._line_start \
            else hay

    def finditer(self, text: AnyStr, lowered: AnyStr | None = None,
                 pos: int = 0) -> Iterator[re.Match[AnyStr]]:
        """``pattern.finditer(text, pos)``; ``lowered``, if given, is ``text.lower()``."""
        finder, hay = self._hay(text, lowered)
        match = self.pattern.match
        while (m := finder.search(hay, pos)) is not None:
            found = match(text, m.start())
            assert found is not None
            yield found
            pos = found.end()

    def search(self, text: AnyStr, lowered: AnyStr | None = None) -> re.Match[AnyStr] | None:
        """``pattern.search(text)``; ``lowered``, if given, is ``text.lower()``."""
        return next(self.finditer(text, lowered), None)

    def found_in(self, text: AnyStr, lowered: AnyStr | None = None) -> bool:
        """``pattern.search(text) is not None``, without making ``pattern``'s match."""
        finder, hay = self._hay(text, lowered)
        return finder.search(hay) is not None


#: The longest local part :data:`ADDRESS` takes: its matches start at most this far
#: before their "@" (its only one).
_LOCAL_PART_MAX = 64
assert ADDRESS.pattern.count("@") == 1 and "]{1,64}@" in ADDRESS.pattern


def find_addresses(text: str) -> Iterator[re.Match[str]]:
    """``ADDRESS.finditer(text)``, each search started at most 64 characters before
    the next "@" (the pattern opens with a look-behind, so ``re`` tries it at every
    offset; most text holds few "@").

    The next match at or after ``pos`` has an "@" at or after the first one there,
    and starts at most 64 characters before its own: none starts earlier than 64
    before that first "@". (The look-behind still sees what precedes the offset.)
    """
    pos = 0
    while (at := text.find("@", pos)) >= 0:
        m = ADDRESS.search(text, max(pos, at - _LOCAL_PART_MAX))
        if m is None:
            return
        yield m
        pos = m.end()


#: Characters outside ASCII that re.I pairs with an ASCII letter: in a pattern they
#: would match ASCII text that its lowercase twin could not.
_FOLDS_TO_ASCII = frozenset({0x130, 0x131, 0x17F, 0x212A})


def _lowercase_pattern(source: str) -> str:
    """``source`` lowercased (ASCII letters only: a bytes pattern is read as latin-1),
    but for the named-group syntax ``(?P<name>``/``(?P=name)``."""
    lowered = "".join(c.lower() if c.isascii() else c for c in source)
    return lowered.replace("(?p<", "(?P<").replace("(?p=", "(?P=")


def _check_twin(source: str, twin: str, flags: int) -> None:
    """Raise ValueError unless ``twin`` (``source`` lowercased) with ``flags`` (without
    re.I) matches lowercased ASCII text exactly where ``source`` with re.I matches
    the text.

    Lowercasing a pattern would turn the escapes ``\\S``, ``\\W``, ``\\D``, ``\\B`` into
    their opposites and change what ``\\x41``-style escapes and back-references
    mean; and a literal or range that still names an uppercase letter (a range across
    the case boundary, "[0-Z]") or one of :data:`_FOLDS_TO_ASCII` would match
    differently.
    """
    if re.search(r"\\[A-Z0-9xuN]", source):
        raise ValueError(f"{source!r}: an escape that lowercasing changes")
    if any(chr(c) in source for c in _FOLDS_TO_ASCII):
        raise ValueError(f"{source!r}: a character that re.I pairs with an ASCII letter")
    for lo, hi in _literal_ranges(sre_parse.parse(twin, flags)):
        if lo <= ord("Z") and hi >= ord("A") or any(lo <= c <= hi for c in _FOLDS_TO_ASCII):
            raise ValueError(f"{source!r}: a cased character the twin would not match")


def _literal_ranges(node: Any) -> Iterator[tuple[int, int]]:
    """The code point range of every literal and character range in a parsed pattern."""
    if isinstance(node, sre_parse.SubPattern):
        node = node.data
    if isinstance(node, tuple) and len(node) == 2 and (
            node[0] is sre_parse.LITERAL or node[0] is sre_parse.NOT_LITERAL):
        yield node[1], node[1]
    elif isinstance(node, tuple) and len(node) == 2 and node[0] is sre_parse.RANGE:
        yield node[1]
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _literal_ranges(item)


def _literal_alternation(words: tuple[str, ...]) -> str:
    """A regex matching exactly the ``words``, written as a trie: ``un(?:known|able)``.

    ``re`` tries every branch of a flat alternation at every position; a trie whose
    top-level branches each start with a literal lets it reject most positions at
    once (so the result is not wrapped in a group: use it as a top-level branch). The
    words must be prefix-free, so that at most one of them matches at a position and
    branch order (and so every match) is the same as in the flat alternation.
    """
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    return "|".join(_trie_branches(words))


def _trie_branches(words: tuple[str, ...]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word[1:])
    branches = []
    for first, rests in groups.items():
        inner = _trie_branches(tuple(rests)) if rests != [""] else [""]
        tail = inner[0] if len(inner) == 1 else "(?:" + "|".join(inner) + ")"
        branches.append(re.escape(first) + tail)
    return branches


def _literal_presence(words: tuple[str, ...]) -> str:
    """A regex that finds one of the ``words`` where there is one: for a yes-or-no
    search, not for the matches themselves (each is a single character).

    Each word is found by its rarest character (:func:`anchored_literal`), and so at
    fewer positions than by its first. (A tenth off :func:`error_paragraphs`, whose
    paragraphs mostly have no match and are read to the end; where a word comes
    early, the trie of :func:`_literal_alternation` finds it sooner.)
    """
    return "|".join(anchored_literal(word)[0] for word in words)


#: Error words of :data:`_DIAG_HINT` (prefix-free: see :func:`_literal_alternation`).
_DIAG_WORDS = (
    "unknown", "not exist", "no such", "invalid", "full", "quota",
    "reject", "denied", "refused", "block", "spam", "unavailable", "disabled", "suspend",
    "error", "fail", "timeout", "timed out", "expired", "unreachable", "not found",
    "too large", "too big", "too many", "exceed", "unrout", "not recognized", "no mailbox",
    "host", "domain", "loop", "relay", "could not", "couldn't", "unable", "aborted",
    "gateway", "not allowed", "limit", "not listed", "directory",
)


def _code_alternation(digits: str) -> str:
    r"""SMTP reply codes and RFC 3463 status codes whose first digit is in ``digits``.

    The same as ``(?<![\d.])[245]\d\d(?![\d.])|\b[245]\.\d{1,3}\.\d{1,3}\b``,
    but with the digit first (the look-behinds moved after it and widened by one
    character), so that ``re`` can skip positions that hold no such digit.
    """
    return "|".join(rf"{d}(?<![\d.]{d})\d\d(?![\d.])|{d}(?<!\w{d})\.\d{{1,3}}\.\d{{1,3}}\b"
                    for d in digits)


#: A code, a status or an error word; applied to lowercased text (re.I is several
#: times slower). Reads as ``(?<![\d.])[245]\d\d(?![\d.])|\b[245]\.\d{1,3}\.\d{1,3}\b|``
#: followed by the words ``unknown|not exist|...``, in a form ``re`` scans faster.
_DIAG_HINT = re.compile(_code_alternation("245") + "|" + _literal_alternation(_DIAG_WORDS))

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
#: The markers searched faster (lowercase twin on ASCII text, line starts only).
_RETURNED_QUICK = QuickPattern(RETURNED_MARKERS)
#: Every marker after a line start begins with a dash after blanks, or holds "original
#: message" or "content-type: " (tests/parsers/test_dsn_shortcuts.py checks each
#: alternative): a text with none of the three has no marker.
_DASH_LINE = re.compile(r"\n[ \t]*-")
_MARKER_WORDS = ("original message", "content-type: ")
_HEADER_BLOCK = re.compile(
    r"\n\n(?:return-path|received|message-id|x-original-to|delivered-to):[ \t]"
)


# The parsers read the same notice one after the other: the DSN parser's test for
# fields, the engine and the parsers looking for the returned message, the diagnostic
# search per recipient. These two answers are kept for the last text asked about
# (one entry: nothing carries over from message to message).


@functools.lru_cache(maxsize=1)
def lowered_text(text: str) -> str:
    """``text.lower()``, computed once for the text the parsers are reading."""
    return text.lower()


@functools.lru_cache(maxsize=1)
def find_returned(text: str) -> re.Match[str] | None:
    """Where the returned message starts in a notice, if it is inlined."""
    if text.isascii():
        low = lowered_text(text)
        # (Half the notices fail this test, which costs a fifth of the scan.)
        if not (any(w in low for w in _MARKER_WORDS) or _DASH_LINE.search("\n" + low)):
            return None
        return _RETURNED_QUICK.search(text, low)
    return _RETURNED_QUICK.search(text)


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
    low = lowered_text(text)
    if len(low) == len(text):
        m2 = _HEADER_BLOCK.search(low)
        if m2:
            text = text[: m2.start()]
    return text


def _unfold(text: str) -> str:
    r"""Whitespace runs as one space, trimmed: ``re.sub(r"\s+", " ", text).strip()``.

    (Faster with str.split(), which agrees with re's ``\s`` on what whitespace is.)
    """
    return " ".join(text.split())


_DIAGNOSTIC_TYPE = re.compile(r"([A-Za-z][A-Za-z0-9-]{0,20})\s*;\s*(.*)$")


def split_diagnostic(value: str | None) -> tuple[str | None, str | None]:
    """Split ``"smtp; 550 5.1.1 ..."`` into ``("SMTP", "550 5.1.1 ...")`` (RFC 3464 2.3.6)."""
    if not value:
        return None, None
    if "\x1b$" in value:
        # Raw ISO-2022-JP inside a 7-bit field (Japanese MTAs do this).
        value = value.encode("latin-1", "replace").decode("iso2022_jp_ext", "replace")
    v = _unfold(value)
    m = _DIAGNOSTIC_TYPE.match(v)
    if m:
        return m.group(1).upper(), m.group(2).strip() or None
    return None, v or None


#: The last text :func:`diagnostic_near` read, split into lines: it is asked about
#: every recipient of a message in turn, with the same text object. One entry,
#: compared by identity.
_last_lines: list[tuple[str, list[str]]] = []


def _lines_of(text: str) -> list[str]:
    last = _last_lines[0] if _last_lines else None
    if last is not None and last[0] is text:
        return last[1]
    lines = text.split("\n")
    _last_lines[:] = [(text, lines)]
    return lines


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
    lowered = lowered_text(text)
    addr = address.lower()
    # Where the address occurs (the first 20 times, not overlapping).
    hits: list[int] = []
    start = 0
    while len(hits) < 20:
        i = lowered.find(addr, start)
        if i < 0:
            break
        hits.append(i)
        start = i + len(addr)
    if not hits:
        return None
    lines = _lines_of(text)  # (split only when the address occurs)
    # The score ranks one occurrence's context against another's: with a single
    # occurrence only whether it is zero matters (``search`` stops at the first hint,
    # ``findall`` reads the whole context), and the second score is never read.
    ranked = len(hits) > 1
    best: tuple[int, str] | None = None
    # Line number of the previous hit and the text offset it was counted to: hits come
    # in order, so newlines are counted once per call. (A hit is an offset into
    # ``lowered``, read as one into ``text``: they differ only when lowercasing
    # changed the length, and then as they always did.)
    n = 0
    counted = 0
    for i in hits:
        n += text.count("\n", counted, i)
        counted = i
        line_start = i - (text.rfind("\n", 0, i) + 1)
        before = lines[n][:line_start].strip(" \t<\"'")
        rest = lines[n][line_start + len(addr):]
        # Keep words before the address too ("554 delivery error: dd <a@b> ...").
        chunk = [(before + " " + rest.strip(" \t>:;,.\"'")).strip()]
        # (Only chunk[0] can be empty: the lines added below are stripped non-blank.)
        for j in range(n + 1, min(len(lines), n + 1 + max_lines)):
            line = lines[j]
            stripped = line.strip()
            if not stripped:
                if chunk[0] or len(chunk) > 1:
                    break
                continue
            low = line.lower()
            # (Cheap necessary conditions first: an address has an "@"; a new block
            # has "..." or "While talking to ", so " to " in any case.)
            if ("@" in line and _starts_with_address(line) and addr not in low) \
                    or (("..." in line or " to " in low) and _NEW_BLOCK.match(line)):
                break
            if others and any(o in low for o in others):
                break  # the next failed recipient's reply
            chunk.append(stripped)
        context = " ".join(chunk if chunk[0] else chunk[1:])
        coded = _CODE.search(context) is not None
        if not coded:
            # Gmail and others put the remote reply in the next paragraph ("The error
            # that the other server returned was:"): take it when it names no one else.
            context = (context + " " + _reply_below(lines, n + len(chunk), addr)).strip()
        # A code is a hint: a lone occurrence's score is known when there is one. (In
        # ASCII text, where lowercasing changes letters only, not what is a word
        # character, a digit or a dot.)
        score = 1 if coded and not ranked and context.isascii() \
            else _hint_score(context, ranked)
        if not score and n > 0:
            # "Delivery failed: mailbox full" above a bare address.
            above: list[str] = []
            for j in range(n - 1, max(-1, n - 4), -1):
                if not lines[j].strip():
                    break
                above.insert(0, lines[j].strip())
            context = (" ".join(above) + " " + context).strip()
            if ranked:  # (a lone occurrence is taken whatever its score)
                score = _hint_score(context, ranked)
        if best is None or score > best[0] or (score == best[0] and len(context) > len(best[1])
                                                and score > 0):
            best = (score, context)
    if best is None or not best[1]:
        return None
    return _unfold(best[1])[:2000] or None


def _hint_score(context: str, ranked: bool) -> int:
    """How many codes, statuses and error words ``context`` has; without ``ranked``,
    only whether it has any (1 or 0)."""
    if ranked:
        return len(_DIAG_HINT.findall(context.lower()))
    return 1 if _DIAG_HINT.search(context.lower()) else 0


#: Lines that open another recipient's or host's block in a Sendmail transcript.
_NEW_BLOCK = re.compile(
    r"\s*(?:[245]\d\d \S+ \((?:e?smtp|tcp|local)\)\.\.\.|(?:\.\.\.\s*)?While talking to )",
    re.I,
)


#: An SMTP reply code or a status code (see :func:`_code_alternation`).
_CODE = re.compile(_code_alternation("245"))


def _reply_below(lines: list[str], start: int, addr: str, max_lines: int = 8) -> str:
    """The next lines holding an SMTP reply, if they mention no other address."""
    taken: list[str] = []
    # Whether a taken line has a code, kept up to date instead of asking every line
    # again at each blank line.
    coded = False
    for j in range(start, min(len(lines), start + max_lines)):
        line = lines[j].strip()
        if not line:
            if coded:
                break
            continue
        # (Every address has an "@": the cheap test spares most lines the regex.)
        m = next(find_addresses(line), None) if "@" in line else None
        if m and m.group(1).lower() != addr:
            return ""
        taken.append(line)
        coded = coded or _CODE.search(line) is not None
    return " ".join(taken) if coded else ""


_REPLY_CODE_PREFIX = re.compile(r"\s*[245]\d\d[ -]")


def _starts_with_address(line: str) -> bool:
    code = _REPLY_CODE_PREFIX.match(line)
    s = (line[code.end():] if code else line).lstrip(" \t<\"'")
    m = ADDRESS.match(s)
    return m is not None


#: A paragraph that reads like an error report.
_ERRORISH = re.compile(
    r"(?<![\d.])[45]\d\d(?![\d.])|\b[45]\.\d{1,3}\.\d{1,3}\b|error|unknown|fail|reject|"
    r"denied|full|quota|invalid|not exist|no such|disabled|suspended",
    re.I,  # (callers pass lowercased text where they can)
)
#: Whether there is an :data:`_ERRORISH` match, for lowercased text, in a form ``re``
#: scans faster (:func:`_code_alternation`, :func:`_literal_presence`), once
#: :data:`_FOLD_LOWERCASE_TO_ASCII` is applied: on lowercased text re.I pairs no other
#: character with a letter of the pattern (the characters whose lowercase is an
#: ASCII letter are lowercased already).
_ERRORISH_LC = re.compile(_code_alternation("45") + "|" + _literal_presence((
    "error", "unknown", "fail", "reject", "denied", "full", "quota", "invalid", "not exist",
    "no such", "disabled", "suspended")))
#: The lowercase letters that re.I pairs with an ASCII one ("ı" with "i", "ſ" with
#: "s"), as that letter.
_FOLD_LOWERCASE_TO_ASCII = str.maketrans({"\u0131": "i", "\u017f": "s"})
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def error_paragraphs(text: str, exclude: list[str], limit: int = 1500) -> str | None:
    """Paragraphs that read like an error report, skipping those about other recipients."""
    out: list[str] = []
    size = 0
    for para in _PARAGRAPH_BREAK.split(text):
        low = para.lower()
        folded = low if low.isascii() else low.translate(_FOLD_LOWERCASE_TO_ASCII)
        if not _ERRORISH_LC.search(folded) or exclude and any(a in low for a in exclude):
            continue
        chunk = _unfold(para)
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
#: The gateway patterns for the lowercased raw headers. The headers are decoded as
#: latin-1, where re.I folds only the ASCII letters (its other folds, "ı" for "i",
#: "ſ" for "s", the Kelvin sign for "k", lie outside latin-1), so a lowercased pattern
#: on lowercased text matches where the re.I one does, and several times faster.
# (Lowercasing a pattern would turn \S into \s: the patterns use no such escape.)
assert all(p.flags == re.I | re.U and not re.search(r"\\[A-Z]", p.pattern)
           for _gid, p, _why in GATEWAYS)
_GATEWAYS_IN_HEAD = tuple(re.compile(p.pattern.lower()) for _gid, p, _why in GATEWAYS)


#: The bytes of a message whose headers :func:`find_gateway` reads.
_HEAD_BYTES = 4096

#: For each of :data:`GATEWAYS`, a test on the raw message that every one whose
#: head its lowercased pattern matches in passes: the head is cut, decoded,
#: lowercased and searched only when one passes (few bounces do). A pattern anchored
#: at the start (no re.M) needs its opening literal there; "active!hunter" needs a
#: "!" in the head (lowercasing keeps it, and turns no other latin-1 byte into an
#: ASCII one).
_GATEWAY_HEAD_HINTS: tuple[Callable[[bytes], bool], ...] = (
    lambda raw: raw[:13].lower() == b"inbound-smtp.",
    lambda raw: raw.find(b"!", 0, _HEAD_BYTES) >= 0,
)
assert _GATEWAYS_IN_HEAD[0].pattern.startswith(r"^inbound-smtp\.")
assert not _GATEWAYS_IN_HEAD[0].flags & re.M
assert "!" in _GATEWAYS_IN_HEAD[1].pattern
#: Per gateway: its id, its pattern's search, its head pattern's search, its hint.
_GATEWAY_TESTS = tuple(
    (gid, pattern.search, head_pattern.search, hint)
    for (gid, pattern, _why), head_pattern, hint in zip(
        GATEWAYS, _GATEWAYS_IN_HEAD, _GATEWAY_HEAD_HINTS, strict=True))


def find_gateway(mail: Mail, reporting: str | None = None) -> str | None:
    """The id of the store-and-forward gateway that reported this bounce, if any."""
    head: str | None = None
    raw = mail.raw
    for gid, search, head_search, hint in _GATEWAY_TESTS:
        if reporting and search(reporting):
            return gid
        if hint(raw):
            if head is None:
                head = raw[:_HEAD_BYTES].decode("latin-1").lower()
            if head_search(head):
                return gid
    return None

