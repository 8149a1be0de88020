"""A faster ``email.message_from_bytes`` (compat32) that builds the very same tree.

The stdlib's :class:`email.feedparser.FeedParser` is written for incremental input: a
generator per MIME part, a deque of lines, and every line passed through every
end-of-part predicate on a stack. For a whole message already in memory that machinery
costs more than the parse itself. :func:`message_from_bytes` here is a line-for-line
port of ``FeedParser._parsegen`` (CPython 3.11) over the decoded text and an offset in
it, so that the :class:`email.message.Message` objects it returns are identical to
the stdlib's: the same headers (``set_raw`` of ``policy.header_source_parse``),
payloads, preambles, epilogues, defects and default types. Only the bookkeeping is
cheaper: a plain header block is split into fields by one regex call, a body or a
preamble is one slice of the text up to the next line a search for "--" finds that
ends it, and every odd case (missing separators, pushed-back lines, a boundary with a
colon) takes the line-by-line path. A text with a lone "\\r" line break goes to the
stdlib (rare: then every line ends at a "\\n").

``tests/test_fastmime.py`` compares both trees, node by node, on the fixtures, the
shared corpus and generated malformed input. Python versions other than those the
port was checked against fall back to the stdlib parser (see :data:`VERIFIED`).
"""

from __future__ import annotations

import email
import re
import sys
from collections.abc import Callable
from email import errors
from email._policybase import compat32
from email.message import Message
from typing import Any

#: The CPython feature releases whose FeedParser this port was compared with, tree
#: by tree (3.10.13, 3.11.7, 3.12.1, 3.13.0: the shared corpus, the fixtures and 20,000
#: mutations of them each; tests/test_fastmime.py repeats it on the running one).
VERIFIED = {(3, 10), (3, 11), (3, 12), (3, 13)}
#: Whether the running Python is one of those (asked per part: worked out once).
_VERIFIED_HERE = sys.version_info[:2] in VERIFIED

_HEADER_RE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")
_NLCRE = re.compile(r"\r\n|\r|\n")
_NLCRE_EOL = re.compile(r"(\r\n|\r|\n)\Z")
_NLCRE_BOL = re.compile(r"(\r\n|\r|\n)")
#: Plain header fields and what follows them, by ``findall``: first compat32's
#: (name, value) of each ``name:value`` line with its continuation lines (a name of
#: printable ASCII characters other than ":" and the space: what _HEADER_RE allows a
#: field line, save an empty name; the value without the blanks before it and the
#: line break after it, as ``header_source_parse`` makes it), then ("", the rest of
#: the text) from the first line that is not one of those on: one pass tells both
#: the fields and where they end. Possessive repeats: nothing to give back, faster.
#: For text without a "\r" (``.`` is then anything but a line break) ...
_FIELDS_LF = re.compile(
    r"(?:([!-9;-~]++):[ \t]*+)?+((?(1).*+(?:\n[ \t].*+)*+|(?s:.+)))(?(1)(?:\n|\Z))")
#: ... and for text whose "\r"s are all in "\r\n"s.
_FIELDS_CRLF = re.compile(
    r"(?:([!-9;-~]++):[ \t]*+)?+((?(1)[^\r\n]*+(?:\r?\n[ \t][^\r\n]*+)*+|(?s:.+)))"
    r"(?(1)(?:\r?\n|\Z))")
#: How far those patterns look for the end of a header block: the rest they return
#: is a copy, kept short; a longer block takes the line-by-line path.
_FIELDS_REACH = 65536

#: An end-of-part predicate: a compiled boundary regex's ``match`` or ``_NLCRE.match``.
_Matcher = Callable[[str], object]


def get(msg: Message, name: str, failobj: object = None) -> object:
    """``msg.get(name, failobj)`` for a lowercase ASCII ``name``, scanning cheaper.

    ``Message.get`` lowercases ``name`` and every field name, then passes the value
    through ``policy.header_fetch_parse``, which returns a compat32 ASCII string
    unchanged. A length test skips most fields before ``lower()``: a name whose
    lowercase is ASCII has as many characters as its lowercase (only U+0130 changes
    length, into a non-ASCII pair).
    """
    size = len(name)
    for field, value in msg._headers:  # type: ignore[attr-defined]  # noqa: SLF001
        if len(field) == size and field.lower() == name:
            return fetch(msg, field, value)
    return failobj


def fetch(msg: Message, field: str, value: str) -> object:
    """``msg.policy.header_fetch_parse(field, value)``: a stored field's value as
    ``Message.get`` returns it, at no cost for an ASCII str under compat32 (its
    ``_sanitize_header`` returns those unchanged)."""
    if value.__class__ is str and value.isascii() and msg.policy is compat32:
        return value
    # (Typed ``str`` in typeshed, but compat32 returns a Header for a value with
    # undecodable bytes: through ``Any``, no str check is compiled in.)
    policy: Any = msg.policy
    return policy.header_fetch_parse(field, value)


def get_boundary(msg: Message) -> str | None:
    """``msg.get_boundary()``, without the stdlib's general parameter machinery."""
    value = _plain_params(msg)
    if value is None:
        return msg.get_boundary()
    found = _param(value, "boundary")
    return None if found is None else _unquote(_unquote(found)).rstrip()


def get_content_charset(msg: Message) -> str | None:
    """``msg.get_content_charset()``, without the stdlib's general parameter machinery."""
    return _charset(msg, get(msg, "content-type", ""))


def _charset(msg: Message, ctype: object) -> str | None:
    """:func:`get_content_charset` of ``msg``, whose Content-Type (as :func:`get`
    returns it, ``""`` when absent) is ``ctype``."""
    value = _plain_value(ctype)
    if value is None:
        return msg.get_content_charset()
    found = _param(value, "charset")
    return None if found is None else _unquote(found).lower()


def text_params(msg: Message) -> tuple[bool, str | None]:
    """Whether ``msg.get_payload(decode=True)`` has no transfer encoding to undo (what
    :func:`get_payload_decoded` tests), and :func:`get_content_charset`: both by one
    scan of the fields, for the text of a part."""
    ctype: object = ""
    cte: object = ""
    found = 0
    for field, value in msg._headers:  # type: ignore[attr-defined]  # noqa: SLF001
        size = len(field)  # (a length test skips most fields before lower(), see get)
        if size == 12:
            if not found & 1 and field.lower() == "content-type":
                ctype = fetch(msg, field, value)
                found |= 1
        elif size == 25 and not found & 2 and field.lower() == "content-transfer-encoding":
            cte = fetch(msg, field, value)
            found |= 2
    return str(cte).lower() not in _ENCODED_CTES, _charset(msg, ctype)


def _plain_params(msg: Message) -> str | None:
    """The Content-Type value when :func:`_param` decides its parameters as the stdlib
    does, else ``None`` (the stdlib must decide).

    That is an ASCII string (returned by ``header_fetch_parse`` as it is) without a
    backslash (``quote``/``unquote`` round trips are then the identity) and without
    ``*`` (no RFC 2231 parameter, which ``decode_params`` would reorder and decode).
    A message without Content-Type has no parameters: ``""``.
    """
    return _plain_value(get(msg, "content-type", ""))


def _plain_value(value: object) -> str | None:
    """``value`` (a Content-Type as :func:`get` returns it) when :func:`_param` decides
    its parameters as the stdlib does (see :func:`_plain_params`), else ``None``."""
    if (not isinstance(value, str) or not value.isascii() or "\\" in value
            or "*" in value or not _VERIFIED_HERE):
        return None
    return value


def _param(value: str, name: str) -> str | None:
    """The raw (still quoted) value of the first parameter ``name`` in ``value``.

    ``_parseparam`` + ``_get_params_preserve`` + ``get_param`` for the values
    :func:`_plain_params` lets through: split at ``;`` except inside double quotes,
    the name stripped and compared lowercased; a piece without ``=`` is a name with
    the value ``""``. The first piece (the content type) counts as a parameter too.
    On that input ``get_param`` returns :func:`_unquote` of what this returns.
    """
    if name not in value.lower():
        return None
    pieces = value.split(";")
    count = len(pieces)
    i = 0
    while i < count:
        piece = pieces[i]
        i += 1
        # A ";" inside a quoted string does not end the parameter.
        while piece.count('"') % 2 and i < count:
            piece += ";" + pieces[i]
            i += 1
        key, equals, found = piece.partition("=")
        if key.strip().lower() == name:
            return found.strip() if equals else ""
    return None


def _unquote(text: str) -> str:
    """``email.utils.unquote`` for text without a backslash."""
    if len(text) > 1 and (text[0] == '"' == text[-1] or text[0] == "<" and text[-1] == ">"):
        return text[1:-1]
    return text


def get_payload(msg: Message) -> object:
    """``msg.get_payload()``, which for a str payload without 8-bit characters (kept
    as surrogates, that it would decode) is the payload itself under compat32: the
    Content-Transfer-Encoding it also reads (with no effect, nor error) is skipped."""
    payload = msg._payload  # type: ignore[attr-defined]  # noqa: SLF001
    if payload.__class__ is str and payload.isascii() and msg.policy is compat32:
        return payload
    return msg.get_payload()


def get_payload_decoded(msg: Message) -> object:
    """``msg.get_payload(decode=True)``, cheaper for a part without transfer encoding.

    An ASCII str payload under no transfer encoding decodes to its ASCII bytes; every
    other case (an encoding to undo, 8-bit text, a non-str payload) is the stdlib's.
    """
    payload = msg._payload  # type: ignore[attr-defined]  # noqa: SLF001
    if isinstance(payload, list):
        return None  # a multipart decodes to None
    if payload.__class__ is str and payload.isascii() and str(
            get(msg, "content-transfer-encoding", "")).lower() not in _ENCODED_CTES:
        return payload.encode("ascii")
    return msg.get_payload(decode=True)


def as_string(msg: Message) -> str:
    """``msg.as_string()``, without the generator for a leaf of one-line ASCII fields.

    compat32's generator (no line length limit) writes such a field as ``Name: value``:
    ``Header.encode`` breaks a value only at its line breaks (those of
    ``str.splitlines``) or past 1,000,000 characters. A leaf that is not a
    message/* or multipart/* has its str body written with its line breaks made "\\n".
    Anything else is the stdlib's.
    """
    payload = msg._payload  # type: ignore[attr-defined]  # noqa: SLF001
    headers: list[tuple[str, str]] = msg._headers  # type: ignore[attr-defined]  # noqa: SLF001
    if (payload.__class__ is not str or not payload.isascii() or msg.policy is not compat32
            or not _VERIFIED_HERE
            or msg.get_content_maintype() in ("message", "multipart")):
        return msg.as_string()
    for name, value in headers:
        if (value.__class__ is not str or not value.isascii()
                or len(name) + len(value) > 100_000 or _ASCII_BREAK.search(value)):
            return msg.as_string()
    return "".join([f"{name}: {value}\n" for name, value in headers]) + "\n" + _NLCRE.sub(
        "\n", payload)


#: An ASCII character ``str.splitlines`` breaks at.
_ASCII_BREAK = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e]")

#: The transfer encodings ``Message.get_payload(decode=True)`` undoes.
_ENCODED_CTES = ("quoted-printable", "base64", "x-uuencode", "uuencode", "uue", "x-uue")


def message_from_bytes(raw: bytes) -> Message:
    """``email.message_from_bytes(raw)`` (compat32), the same tree, built faster."""
    return parse_bytes(raw)[0]


#: A part, its nesting depth in message/* parts and its content type.
TypedPart = tuple[Message, int, str]


#: How deep parts may be nested (the tree's depth). Deeper input raises RecursionError,
#: as the stdlib's parser does at Python's recursion limit, but at the same depth
#: wherever it is called and in both builds: compiled, these calls are C calls, which
#: Python's limit does not count, and past some 25,000 levels the C stack overflowed.
#: Real bounces nest a handful of levels (7 at most in the corpus); the test fixture
#: nested-200.eml nests 201.
MAX_NESTING = 300


def parse_bytes(raw: bytes, max_depth: int | None = None,
                ) -> tuple[Message, dict[int, str], list[TypedPart] | None]:
    """:func:`message_from_bytes`, plus the content type of every part by ``id(part)``
    and, when this parser built the tree and no part is deeper than ``max_depth``,
    every part in the order of ``walk()`` (pre-order) with its depth of message/*
    nesting (0 for the root) and type.

    The parser has to know each part's ``get_content_type()`` anyway, and meets the
    parts in that order; handing the values over saves the reader working them out
    again (valid while the tree lives and is not changed).
    """
    text = raw.decode("ascii", "surrogateescape")
    if not _VERIFIED_HERE or _lone_cr(text):
        msg = email.message_from_string(text)  # what message_from_bytes does after decoding
        return msg, {id(part): part.get_content_type() for part in msg.walk()}, None
    parser = _Parser(text)
    msg = parser.parse()
    too_deep = max_depth is not None and parser.deepest > max_depth
    return msg, parser.ctypes, None if too_deep else parser.parts


def message_from_string(text: str) -> Message:
    """``email.message_from_string(text)`` (compat32), the same tree, built faster."""
    if not _VERIFIED_HERE or _lone_cr(text):
        return email.message_from_string(text)
    return _Parser(text).parse()


def _lone_cr(text: str) -> bool:
    """Whether a "\\r" not followed by "\\n" ends a line in ``text``: the stdlib parses
    those (rare) messages, so that every line :class:`_Parser` sees ends at a "\\n"."""
    return "\r" in text and text.count("\r") != text.count("\r\n")


class _Parser:
    """The state of ``FeedParser`` + ``BufferedSubFile``, without the generators.

    The input is one string and ``pos``, the offset of the next unread line in it.
    ``front`` holds lines pushed back (``unreadline``), the next one last; after
    them comes ``text[pos:]``. The feed parser ends lines at "\\r\\n", "\\r" and
    "\\n" (not at the other breaks of ``str.splitlines``); without a lone "\\r" (see
    :func:`_lone_cr`) that is every "\\n". Reading a line that an end predicate
    matches returns ``""`` and leaves the line unread, as
    ``BufferedSubFile.readline`` does.
    """

    __slots__ = ("text", "size", "field", "pos", "front", "eof", "seps", "colons", "starts",
                 "outer_starts", "last", "ctypes", "parts", "depth", "deepest",
                 "ended", "nesting")

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        #: The field regex for the text's line breaks ("\n" alone is the fastest).
        self.field = _FIELDS_CRLF if "\r" in text else _FIELDS_LF
        self.pos = 0
        self.front: list[str] = []
        #: The end-of-part predicates, innermost last ...
        self.eof: list[_Matcher] = []
        #: ... and the separator each one matches lines starting with ("" for the
        #: blank line ending a delivery-status block).
        self.seps: list[str] = []
        #: How many of those separators hold a ":" (see plain_header_block).
        self.colons = 0
        #: What a line must start with for any predicate in ``eof`` to match it.
        self.starts: tuple[str, ...] = ()
        self.outer_starts: list[tuple[str, ...]] = []
        #: The part started last, or after a part of a multipart the multipart.
        self.last: Message | None = None
        #: id(message) -> its content type, computed once after its headers.
        self.ctypes: dict[int, str] = {}
        #: (message, its message/* nesting depth, its content type) of every part, in
        #: the order the parts start in the text: a pre-order walk of the tree.
        self.parts: list[TypedPart] = []
        self.depth = 0
        #: The greatest depth of a part.
        self.deepest = 0
        #: Whether the last plain_header_block stopped at the end of the part.
        self.ended = False
        #: How many parts the part being read is inside (see :data:`MAX_NESTING`).
        self.nesting = 0

    # -- the line source -----------------------------------------------------------

    def line_at(self, pos: int) -> str:
        """The line that starts at ``pos``, with its line break."""
        end = self.text.find("\n", pos)
        return self.text[pos:] if end < 0 else self.text[pos:end + 1]

    def at_end(self, line: str) -> bool:
        """Whether an end predicate matches ``line``."""
        # Every predicate needs the line to start with "-" (a boundary) or with a
        # line break (the blank line ending a delivery-status block).
        if self.eof and line[0] in "-\r\n" and line.startswith(self.starts):
            for ateof in self.eof:
                if ateof(line):
                    return True
        return False

    def readline(self) -> str:
        if self.front:
            line = self.front.pop()
            if not line:
                # FeedParser pushes back the "" of an end it hit while skipping
                # repeated boundaries; read again, it is one more end, used up.
                return ""
            if self.at_end(line):
                self.front.append(line)
                return ""
            return line
        if self.pos >= self.size:
            return ""
        line = self.line_at(self.pos)
        if self.at_end(line):
            return ""  # left unread (BufferedSubFile pushes it back: the same)
        self.pos += len(line)
        return line

    def unreadline(self, line: str) -> None:
        pos = self.pos - len(line)
        if line and pos >= 0 and not self.front and self.text.startswith(line, pos):
            # The line just read from the text: unread it there, so that the next
            # part's headers can take plain_header_block (front stays empty).
            self.pos = pos
        else:
            self.front.append(line)

    def peek(self) -> str | None:
        """The next line, left unread, when :meth:`readline` would return it from
        the text (no pushed-back line first, no end predicate matching it), else
        ``None``.

        ``readline`` + ``unreadline`` of that line leaves the same state.
        """
        if self.front or self.pos >= self.size:
            return None
        line = self.line_at(self.pos)
        return None if self.at_end(line) else line

    def find_end(self, pos: int) -> int:
        """The offset of the first line from ``pos`` (a line start) on that an end
        predicate matches, or the end of the text.

        A boundary predicate matches only lines starting with its separator, "--"
        and the boundary: the search looks at the lines that start with "--" (after
        a "\\n"), not at every line. (One search for all the separators, not one
        per separator: each search stops at the next boundary, and the parse reads
        the text once; a search for an inner boundary that never comes would read
        to the end of the text once per part.)
        """
        eof, text, size = self.eof, self.text, self.size
        if not eof:
            return size
        if "" in self.seps:
            # A delivery-status block ends at a blank line: a short walk over lines.
            while pos < size:
                line = self.line_at(pos)
                if self.at_end(line):
                    return pos
                pos += len(line)
            return size
        while True:
            if not text.startswith("--", pos):
                pos = text.find("\n--", pos) + 1
                if not pos:
                    return size
            line = self.line_at(pos)
            if self.at_end(line):
                return pos
            pos += len(line)

    def read_rest(self) -> str:
        """Everything up to the end of the current part (``for line in input``)."""
        out: list[str] = []
        while self.front:
            line = self.readline()
            if line == "":
                return "".join(out)
            out.append(line)
        start = self.pos
        end = self.pos = self.find_end(start)
        if out:
            out.append(self.text[start:end])
            return "".join(out)
        return self.text[start:end]

    def push_end(self, ateof: _Matcher, sep: str) -> None:
        """Add an end-of-part predicate that matches only lines starting with ``sep``
        (a boundary's) or ``""``: a line break (the delivery-status one)."""
        self.eof.append(ateof)
        self.seps.append(sep)
        if ":" in sep:
            self.colons += 1
        self.outer_starts.append(self.starts)
        self.starts += (sep,) if sep else ("\r", "\n")

    def pop_end(self) -> None:
        self.eof.pop()
        if ":" in self.seps.pop():
            self.colons -= 1
        self.starts = self.outer_starts.pop()

    # -- the whole input -----------------------------------------------------------

    def parse(self) -> Message:
        """``FeedParser.feed`` of the whole input, then ``close``."""
        root = self.parsegen(None, False)
        if self.ctypes[id(root)].startswith("multipart/") and not root.is_multipart():
            root.defects.append(errors.MultipartInvariantViolationDefect())
        return root

    # -- FeedParser._parsegen ------------------------------------------------------

    def parsegen(self, parent: Message | None, in_digest: bool) -> Message:
        """One part, attached to ``parent`` (``None``: the root), a part of a
        multipart/digest when ``in_digest``; returns it.

        The stack of FeedParser's messages is the stack of these calls: its
        ``_new_message`` is the start of this one, ``_pop_message`` its return.
        """
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise RecursionError(f"MIME parts nested more than {MAX_NESTING} deep")
        cur = Message()  # compat32, the default: faster than passing it
        if in_digest:
            cur.set_default_type("message/rfc822")
        if parent is not None:
            # (Message.attach, without the call.)
            payload = parent._payload  # type: ignore[attr-defined]  # noqa: SLF001
            if payload is None:
                parent._payload = [cur]  # type: ignore[attr-defined]  # noqa: SLF001
            else:
                payload.append(cur)
        self.last = cur
        fields = None if self.front else self.plain_header_block(cur)
        if fields is None:
            self.ended = False
            headers = self.header_lines(cur)
            fields = _plain_fields(headers)
            if fields is None:
                self.parse_headers(cur, headers)
        if fields is None:
            ctype = cur.get_content_type()
        else:
            cur._headers = fields  # type: ignore[attr-defined]  # noqa: SLF001 - as set_raw
            ctype = _content_type(cur, fields)
        self.ctypes[id(cur)] = ctype
        self.parts.append((cur, self.depth, ctype))
        if ctype.startswith("message/"):
            self.depth += 1
            if self.depth > self.deepest:
                self.deepest = self.depth
            if ctype == "message/delivery-status":
                self.delivery_status(cur)
            else:
                self.parsegen(cur, False)
            self.depth -= 1
        elif ctype.startswith("multipart/"):
            self.multipart(cur, ctype == "multipart/digest")
        else:
            # set_payload of a str only stores it.
            cur._payload = (  # type: ignore[attr-defined]  # noqa: SLF001
                "" if self.ended else self.read_rest())
        self.nesting -= 1
        return cur

    def plain_header_block(self, cur: Message) -> list[tuple[str, str]] | None:
        """The common case of :meth:`header_lines` + :func:`_plain_fields`, by regex.

        Takes an envelope line first, then ``name: value`` lines (a name of the
        characters ``_HEADER_RE`` allows, none of them a space) with their
        continuations, then the blank line after them (used up) or a line an end
        predicate matches (left unread) or the end of the text. Anything else (a
        line without a colon, a continuation first, a second envelope line) returns
        ``None`` with nothing consumed: the line-by-line path decides those. So does
        a separator with a colon in it, which can make a field line a boundary.
        """
        text, pos = self.text, self.pos
        if self.colons:
            return None
        envelope = None
        if text.startswith("From ", pos):
            # parse_headers takes a first "From " line as the envelope.
            envelope = self.line_at(pos)
            pos += len(envelope)
        size = self.size
        reach = pos + _FIELDS_REACH
        fields = self.field.findall(text, pos, reach)
        if fields and not fields[-1][0]:
            end = min(reach, size) - len(fields.pop()[1])
        elif reach < size:
            return None  # a header block too long to tell its end
        else:
            end = size
        stop = end
        ended = True  # at the end of the text or of the part: no body
        if end < size:
            char = text[end]
            if char == "\n" or char == "\r":
                # Only the delivery-status predicate matches a blank line.
                if char not in self.starts:
                    stop = text.find("\n", end) + 1  # the separator line is used up
                    ended = False
            elif char != "-" or not self.at_end(self.line_at(end)):
                return None
        if envelope is not None:
            cur._unixfrom = envelope.rstrip("\r\n")  # type: ignore[attr-defined]  # noqa: SLF001
        self.pos = stop
        self.ended = ended
        return fields

    def header_lines(self, cur: Message) -> list[str]:
        """The header lines of a part, read line by line as ``_parsegen`` does (the
        separator line used up, a body line without one pushed back)."""
        headers: list[str] = []
        while True:
            line = self.readline()
            if line == "":
                break
            if not _HEADER_RE.match(line):
                if not _NLCRE.match(line):
                    cur.defects.append(errors.MissingHeaderBodySeparatorDefect())
                    self.unreadline(line)
                break
            headers.append(line)
        return headers

    def delivery_status(self, cur: Message) -> None:
        # Blocks of header fields separated by blank lines, each a Message.
        text, size = self.text, self.size
        while True:
            self.push_end(_NLCRE.match, "")
            self.parsegen(cur, False)
            self.pop_end()
            pos = self.pos
            if (not self.front and pos < size and text[pos] in "\r\n"
                    and "\n" not in self.starts):
                # What readline + peek do in the usual case: the blank line read (no
                # predicate matches it), then a next block that starts with a field.
                pos = self.pos = text.find("\n", pos) + 1
                if pos < size and text[pos] not in "-\r\n":
                    continue
            else:
                self.readline()  # the blank line (or "" at the end)
            if self.peek() is not None:
                continue  # another block follows
            line = self.readline()
            if line == "":
                break
            self.unreadline(line)

    def multipart(self, cur: Message, digest: bool) -> None:
        boundary = get_boundary(cur)
        if boundary is None:
            cur.defects.append(errors.NoBoundaryInMultipartDefect())
            cur.set_payload(self.read_rest())
            return
        if str(get(cur, "content-transfer-encoding", "8bit")).lower() not in (
                "7bit", "8bit", "binary"):
            cur.defects.append(errors.InvalidMultipartContentTransferEncodingDefect())
        separator = "--" + boundary
        boundary_match = _boundary_matcher(separator)
        capturing_preamble = True
        preamble: list[str] = []
        linesep: str | None = None
        close_boundary_seen = False
        while True:
            if capturing_preamble and not self.front:
                # The lines up to the first boundary or the end of the part are all
                # preamble: take them at once.
                self.push_end(boundary_match, separator)
                start, end = self.pos, self.find_end(self.pos)
                self.pop_end()
                if end > start:
                    preamble.append(self.text[start:end])
                    self.pos = end
            line = self.readline()
            if line == "":
                break
            mo = boundary_match(line)
            if mo:
                if mo[0]:
                    close_boundary_seen = True
                    linesep = mo[1]
                    break
                if capturing_preamble:
                    if preamble:
                        lastline = preamble[-1]
                        cut = _eol_length(lastline)
                        if cut:
                            preamble[-1] = lastline[:-cut]
                        cur.preamble = "".join(preamble)
                    capturing_preamble = False
                    # FeedParser pushes the line back and reads it again, to the same
                    # effect as going on with it.
                # Consume repeated boundary lines: no empty parts between them.
                while True:
                    if not self.front and self.pos < self.size and (
                            self.text[self.pos] not in "-\r\n"):
                        break  # (what peek + boundary_match tell of the usual line)
                    peeked = self.peek()
                    if peeked is not None:
                        if not boundary_match(peeked):
                            break
                        self.pos += len(peeked)
                        continue
                    line = self.readline()
                    if not boundary_match(line):
                        self.unreadline(line)
                        break
                self.push_end(boundary_match, separator)
                self.parsegen(cur, digest)
                # RFC 2046: the line break before a boundary belongs to the boundary.
                last = self.last
                assert last is not None
                if self.ctypes[id(last)].startswith("multipart/"):
                    epilogue = last.epilogue
                    if epilogue == "":
                        last.epilogue = None
                    elif epilogue is not None:
                        cut = _eol_length(epilogue)
                        if cut:
                            last.epilogue = epilogue[:-cut]
                else:
                    payload = last._payload  # type: ignore[attr-defined]  # noqa: SLF001
                    if isinstance(payload, str):
                        cut = _eol_length(payload)
                        if cut:
                            last._payload = payload[:-cut]  # type: ignore[attr-defined]  # noqa: SLF001
                self.pop_end()
                self.last = cur
            else:
                preamble.append(line)
        if capturing_preamble:
            cur.defects.append(errors.StartBoundaryNotFoundDefect())
            cur.set_payload("".join(preamble))
            self.read_rest()
            cur.epilogue = ""
            return
        if not close_boundary_seen:
            cur.defects.append(errors.CloseBoundaryNotFoundDefect())
            return
        epilogue = self.read_rest()
        if not linesep:
            # (After a line break the stdlib's first epilogue line is "": nothing to cut.)
            bolmo = _NLCRE_BOL.match(epilogue)
            if bolmo:
                epilogue = epilogue[len(bolmo.group(0)):]
        cur.epilogue = epilogue

    def parse_headers(self, cur: Message, lines: list[str]) -> None:
        """``FeedParser._parse_headers`` (compat32's ``header_source_parse``)."""
        lastheader = ""
        lastvalue: list[str] = []
        for lineno, line in enumerate(lines):
            if line[0] in " \t":
                if not lastheader:
                    cur.defects.append(errors.FirstHeaderLineIsContinuationDefect(line))
                    continue
                lastvalue.append(line)
                continue
            if lastheader:
                cur.set_raw(*compat32.header_source_parse(lastvalue))
                lastheader, lastvalue = "", []
            if line.startswith("From "):
                if lineno == 0:
                    mo = _NLCRE_EOL.search(line)
                    if mo:
                        line = line[: -len(mo.group(0))]
                    cur.set_unixfrom(line)
                    continue
                if lineno == len(lines) - 1:
                    # Probably the first line of the body: push it back, stop.
                    self.unreadline(line)
                    return
                cur.defects.append(errors.MisplacedEnvelopeHeaderDefect(line))
                continue
            i = line.find(":")
            if i == 0:
                cur.defects.append(errors.InvalidHeaderDefect("Missing header name."))
                continue
            lastheader = line[:i]
            lastvalue = [line]
        if lastheader:
            cur.set_raw(*compat32.header_source_parse(lastvalue))


def _plain_fields(lines: list[str]) -> list[tuple[str, str]] | None:
    """compat32's (name, value) pairs for header lines without oddities, else ``None``.

    ``None`` (the line-by-line path decides) for a first line that is a continuation,
    a ``From `` envelope line, or a line starting with a colon.
    """
    out: list[tuple[str, str]] = []
    name = ""
    first = ""
    more: list[str] = []
    for line in lines:
        if line[0] in " \t":
            if not name:
                return None
            more.append(line)
            continue
        if name:
            out.append((name, (first + "".join(more)).rstrip("\r\n") if more
                        else first.rstrip("\r\n")))
            more = []
        if line.startswith("From "):
            return None
        name, _, rest = line.partition(":")
        if not name:
            return None
        first = rest.lstrip(" \t")
    if name:
        out.append((name, (first + "".join(more)).rstrip("\r\n") if more
                    else first.rstrip("\r\n")))
    return out


def _eol_length(text: str) -> int:
    """Length of the line break ending ``text`` (``_NLCRE_EOL.search``, without a scan)."""
    if text.endswith("\r\n"):
        return 2
    return 1 if text.endswith(("\r", "\n")) else 0


def _content_type(msg: Message, fields: list[tuple[str, str]]) -> str:
    """``msg.get_content_type()`` from its plain header fields, in one pass."""
    for name, value in fields:
        if len(name) == 12 and name.lower() == "content-type":  # len: skip most .lower()
            if not value.isascii():
                return msg.get_content_type()  # a Header object: the stdlib decides
            ctype = value.partition(";")[0].strip().lower()
            return ctype if ctype.count("/") == 1 else "text/plain"
    return msg.get_default_type()


#: What the boundary matcher answers for the usual rests of a boundary line.
_PLAIN_TAILS = {tail + linesep: (tail, linesep)
                for tail in ("", "--") for linesep in ("", "\n", "\r\n")}


def _boundary_matcher(separator: str) -> Callable[[str], tuple[str, str] | None]:
    """The feed parser's boundary regex, without compiling one per boundary.

    ``(?P<sep>SEP)(?P<end>--)?(?P<ws>[ \\t]*)(?P<linesep>\\r\\n|\\r|\\n)?$`` matched at
    the start of a line; returns ``(end, linesep)`` ("" when absent) or ``None``.
    """
    size = len(separator)

    def match(line: str) -> tuple[str, str] | None:
        if not line.startswith(separator):
            return None
        rest = line[size:]
        found = _PLAIN_TAILS.get(rest)
        if found is not None:
            return found
        linesep = ""
        if rest.endswith("\r\n"):
            rest, linesep = rest[:-2], "\r\n"
        elif rest.endswith(("\r", "\n")):
            rest, linesep = rest[:-1], rest[-1]
        end = ""
        if rest.startswith("--"):
            rest, end = rest[2:], "--"
        if rest.strip(" \t"):
            return None
        return end, linesep

    return match
