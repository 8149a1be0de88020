"""MIME helpers over :mod:`email` with the fast ``compat32`` policy.

Bounces are often malformed (wrong or unknown charsets, 8-bit headers, broken
boundaries), so every helper here degrades instead of raising. ``policy.default``
is about five times slower on this workload because it re-parses every
Content-Type through ``headerregistry``; we only need a handful of headers decoded.
"""

from __future__ import annotations

import codecs
import email
import email.header
import re
from collections.abc import Callable, KeysView
from email._policybase import compat32
from email.message import Message
from typing import Any, Generic, TypeVar, overload

from mailbox_processor import fastmime

#: Work caps per message: a bounce mailbox can hold hostile input.
MAX_PARTS = 200
MAX_DEPTH = 12
MAX_TEXT_CHARS = 2_000_000

_CHARSET_ALIASES = {
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "latin-1",
    "unknown-8bit": "latin-1",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-2022-jp": "iso2022_jp_ext",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
}

_SURROGATE = re.compile("[\udc80-\udcff]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_WS = re.compile(r"[ \t]*\r?\n[ \t]+")


def normalise_charset(charset: str | None) -> str:
    """Return a Python codec name for ``charset``, falling back to ``utf-8``."""
    if not charset:
        return "utf-8"
    name = charset.strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a NUL inside the name
        return "utf-8"
    return name


#: The codecs (by ``codecs.lookup(name).name``) that decode any ASCII bytes to the same
#: characters: UTF-8 and ASCII by definition, and single-byte charmap codecs whose
#: table maps 0-127 to themselves (stateless: each byte is decoded alone). Not UTF-7
#: ("+" shifts), UTF-16/32, ISO-2022-* (escape sequences) or HZ ("~{"), whose
#: decoding of ASCII bytes is not the identity; tests/test_mime.py checks the set.
ASCII_IDENTITY = frozenset(
    ["utf-8", "ascii", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256",
     "cp1257", "cp1258", "koi8-r", "koi8-u"]
    + [f"iso8859-{n}" for n in range(1, 17) if n != 12])

#: charset -> (normalise_charset(charset), whether that codec is in ASCII_IDENTITY,
#: whether decode_bytes reports the charset as unknown); bounded, as the charsets
#: come from the input.
_CHARSET_INFO: dict[str | None, tuple[str, bool, bool]] = {}
_CHARSET_INFO_MAX = 512


def _charset_info(charset: str | None) -> tuple[str, bool, bool]:
    """What :func:`decode_bytes` works out of ``charset``, once per charset."""
    try:
        return _CHARSET_INFO[charset]
    except KeyError:
        pass
    name = normalise_charset(charset)
    unknown = bool(charset) and name == "utf-8" and charset.strip().strip(  # type: ignore[union-attr]
        '"').lower() not in ("utf-8", "utf8")
    info = (name, codecs.lookup(name).name in ASCII_IDENTITY, unknown)
    if len(_CHARSET_INFO) < _CHARSET_INFO_MAX:
        _CHARSET_INFO[charset] = info
    return info


def decode_bytes(
    data: bytes, charset: str | None = None, problems: list[str] | None = None
) -> str:
    """Decode ``data`` with its declared charset, tolerating lies and unknown names.

    What had to be tolerated is appended to ``problems`` when given.
    """
    name, _identity, unknown = _charset_info(charset)
    if problems is not None and unknown:
        problems.append(f"unknown charset {charset!r}: decoded as UTF-8")
    try:
        return data.decode(name)
    except (UnicodeDecodeError, LookupError):
        if problems is not None:
            problems.append(f"text is not valid {name}: undecodable bytes replaced")
    if name != "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode(name, errors="replace")
    except LookupError:  # pragma: no cover - name was checked above
        return data.decode("latin-1")


def header_text(value: object) -> str | None:
    """Return a header value as one line of text, RFC 2047 words decoded."""
    if type(value) is str:  # the usual case, tested first
        text = value
    elif value is None:
        return None
    elif isinstance(value, email.header.Header):
        text = _decode_words(value) or str(value)
    else:
        text = str(value)
    if "=?" in text and not isinstance(value, email.header.Header) and _ENCODED_WORD.search(
            text):
        text = _decode_words(text) or text
    if "\n" in text or "\r" in text:  # else the three replacements change nothing
        text = _WS.sub(" ", text).replace("\r", "").replace("\n", " ")
    text = text.strip()
    # 8-bit headers arrive as surrogate escapes with compat32.
    if not text.isascii() and _SURROGATE.search(text):
        raw = text.encode("utf-8", "surrogateescape")
        text = decode_bytes(raw, "utf-8")
    return text


def _decode_words(value: str | email.header.Header) -> str | None:
    """RFC 2047 encoded words decoded (``None`` when the header is beyond repair)."""
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return None
    return "".join(
        p.decode(_charset_info(c)[0], errors="replace") if isinstance(p, bytes) else p
        for p, c in parts
    )


def part_text(
    part: Message, limit: int = MAX_TEXT_CHARS, problems: list[str] | None = None
) -> str:
    """Return the decoded text of a non-multipart part (transfer and charset decoding)."""
    text = _ascii_text(part, problems)
    if text is None:
        text = _decoded_text(part, limit, problems)
    if len(text) > limit:
        text = text[:limit]
    if "\r" not in text:  # else the two replacements change nothing
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _ascii_text(part: Message, problems: list[str] | None) -> str | None:
    """:func:`_decoded_text` of the usual part, ``None`` for the others: an ASCII str
    payload without a transfer encoding, in a charset whose codec decodes ASCII bytes
    to the same characters, is its own text (no encoding to bytes and back)."""
    payload: object = part._payload  # type: ignore[attr-defined]  # noqa: SLF001
    if type(payload) is not str or not payload.isascii():
        return None
    try:
        plain, charset = fastmime.text_params(part)
    except Exception:
        return None  # the plain way decides
    if not plain:
        return None
    _name, identity, unknown = _charset_info(charset)
    if not identity:
        return None
    if problems is not None:
        if unknown:
            problems.append(f"unknown charset {charset!r}: decoded as UTF-8")
        for defect in getattr(part, "defects", []):
            problems.append(f"{content_type(part)} part: {type(defect).__name__}")
    return payload


def _decoded_text(part: Message, limit: int, problems: list[str] | None) -> str:
    """The text of a part, by ``get_payload(decode=True)`` and :func:`decode_bytes`
    (the plain way, which :func:`_ascii_text` shortcuts)."""
    try:
        payload = fastmime.get_payload_decoded(part)
    except Exception:
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, str):
            text = raw
        elif isinstance(raw, list):
            # message/* parts: render their sub-message as text.
            text = "\n".join(_as_text(p) for p in raw if isinstance(p, Message))
        else:
            text = ""
    elif isinstance(payload, bytes):
        try:
            charset = fastmime.get_content_charset(part)
        except Exception:
            charset = None
        text = decode_bytes(payload[: limit * 2], charset, problems)
        if problems is not None:
            for defect in getattr(part, "defects", []):
                problems.append(f"{content_type(part)} part: {type(defect).__name__}")
    else:
        text = str(payload)
    return text


def _as_text(msg: Message) -> str:
    try:
        return fastmime.as_string(msg)
    except Exception:
        return ""


def content_type(part: Message) -> str:
    """``part``'s lowercased content type, ``text/plain`` when absent or broken."""
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def first_fields(msg: Message) -> dict[str, tuple[str, str]]:
    """Lowercased field name -> (name, raw value) of its first occurrence: what
    ``msg.get(name)`` looks up, for many lookups at the cost of one."""
    out: dict[str, tuple[str, str]] = {}
    for field in msg._headers:  # type: ignore[attr-defined]  # noqa: SLF001 - raw_items() copies
        out.setdefault(field[0].lower(), field)
    return out


def _field_text(msg: Message, field: tuple[str, str]) -> str | None:
    """:func:`header_text` of what ``msg.get`` returns for ``field`` (a (name, value)
    of ``msg``), ``None`` when that fails."""
    value = field[1]
    if (value.__class__ is str and value.isascii() and "=?" not in value
            and "\n" not in value and "\r" not in value and msg.policy is compat32):
        # The usual value: fetch returns it as it is, header_text strips it.
        return value.strip()
    try:
        # What Message.get(name) returns, without a scan of every field per call.
        return header_text(fastmime.fetch(msg, *field))
    except Exception:
        return None


_T = TypeVar("_T")


class cached(Generic[_T]):  # noqa: N801 - named like the decorator it replaces
    """``functools.cached_property`` without its lock (Python < 3.12 takes one on every
    first access): the value computed on first access is stored in the instance's
    ``__dict__``, where later lookups find it before this non-data descriptor."""

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> cached[_T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object, owner: type | None = None) -> _T | cached[_T]:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


class Mail:
    """A parsed message plus lazily computed views that several parsers share.

    Parsers receive this instead of a bare :class:`email.message.Message` so that the
    MIME tree is walked and decoded once per message, not once per parser.
    """

    def __init__(self, msg: Message, raw: bytes,
                 ctypes: dict[int, str] | None = None) -> None:
        self.msg = msg
        self.raw = raw
        self.problems: list[str] = []
        #: id(part) -> content type; filled by the parser where it knows them.
        self._ctypes: dict[int, str] = ctypes if ctypes is not None else {}

    @classmethod
    def from_bytes(cls, raw: bytes) -> Mail:
        msg, ctypes, parts = fastmime.parse_bytes(raw, MAX_DEPTH)
        repaired = _repair_boundary(msg, raw, ctypes.get(id(msg)))
        mail = cls(repaired or msg, raw, None if repaired is not None else ctypes)
        if repaired is None and parts is not None and len(parts) <= MAX_PARTS:
            # The parser's list of the parts is what the walk of _typed_parts finds
            # when no cap stops it: every part, in pre-order, with its depth and type.
            mail.__dict__["_typed_parts"] = parts
        if repaired is not None:
            mail.problems.append("multipart boundary in the header does not match the body: "
                                 "re-read with the boundary found in the body")
            msg = repaired
        defects = getattr(msg, "defects", [])
        if defects:
            mail.problems.append(
                "MIME defects: " + ", ".join(sorted({type(d).__name__ for d in defects}))
            )
        return mail

    def header(self, name: str) -> str | None:
        """One decoded header of the outer message (``None`` when absent)."""
        found = self._fields.get(name.lower())
        if found is None:
            return None
        return _field_text(self.msg, found)

    @cached
    def _fields(self) -> dict[str, tuple[str, str]]:
        return first_fields(self.msg)

    @property
    def field_names(self) -> KeysView[str]:
        """The outer message's header field names, lowercased."""
        return self._fields.keys()

    def returned_header(self, name: str) -> str | None:
        """One decoded header of the returned message (``None`` when absent)."""
        returned = self.returned
        if returned is None:
            return None
        found = self._returned_fields.get(name.lower())
        if found is None:
            return None
        return _field_text(returned, found)

    @cached
    def _returned_fields(self) -> dict[str, tuple[str, str]]:
        return first_fields(self.returned) if self.returned is not None else {}

    @cached
    def raw_lower(self) -> bytes:
        """``raw.lower()``, made once per message for the parsers' byte tests."""
        return self.raw.lower()

    @cached
    def subject(self) -> str:
        return self.header("Subject") or ""

    @cached
    def from_addr(self) -> str:
        return self.header("From") or ""

    @cached
    def content_type(self) -> str:
        return self.ctype(self.msg)

    def ctype(self, part: Message) -> str:
        """``part``'s content type, computed once per part."""
        try:  # (free in Python >= 3.11 when nothing is raised)
            return self._ctypes[id(part)]
        except KeyError:
            value = self._ctypes[id(part)] = content_type(part)
            return value

    @cached
    def parts(self) -> list[tuple[Message, int]]:
        """Leaf and container parts with their message/rfc822 nesting depth.

        Depth 0 is the returned message's envelope (the bounce notice itself); parts
        inside an attached message/rfc822 have depth >= 1. Capped by
        :data:`MAX_PARTS` and :data:`MAX_DEPTH`.
        """
        return [(part, depth) for part, depth, _ctype in self._typed_parts]

    def text_of(self, part: Message) -> str:
        """:func:`part_text`, with what went wrong recorded in :attr:`problems`."""
        found: list[str] = []
        text = part_text(part, problems=found)
        for p in found:
            self._problem(p)
        return text

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def find_parts(self, *ctypes: str, max_depth: int = 0) -> list[Message]:
        """Parts of the given content types at nesting depth <= ``max_depth``."""
        return [p for p, d, ctype in self._typed_parts if d <= max_depth and ctype in ctypes]

    @cached
    def _typed_parts(self) -> list[fastmime.TypedPart]:
        """:attr:`parts` with each part's content type, for the loops over them.

        (The walk that finds the parts: it needs the type of every container, and
        the loops over the parts that of every part.)
        """
        out: list[fastmime.TypedPart] = []
        ctypes = self._ctypes
        stack: list[tuple[Message, int]] = [(self.msg, 0)]
        while stack and len(out) < MAX_PARTS:
            part, depth = stack.pop()
            try:  # (what self.ctype(part) does, inline: it is called for every part)
                ctype = ctypes[id(part)]
            except KeyError:
                ctype = ctypes[id(part)] = content_type(part)
            out.append((part, depth, ctype))
            if depth > MAX_DEPTH:
                self._problem(f"message/rfc822 nesting deeper than {MAX_DEPTH}: not followed")
                continue
            # What is_multipart() and get_payload() look at: a leaf's get_payload()
            # would re-decode 8-bit text only to be dropped.
            payload = part._payload  # type: ignore[attr-defined]  # noqa: SLF001
            if not isinstance(payload, list):
                continue
            inner = depth + 1 if ctype.startswith("message/") else depth
            stack.extend((p, inner) for p in reversed(payload) if isinstance(p, Message))
        if stack:
            self._problem(f"more than {MAX_PARTS} MIME parts: the rest was not read")
        return out

    @cached
    def notice_text(self) -> str:
        """The human-readable bounce notice: text parts outside the returned message.

        For a single-part message this is the whole body (the returned message, when
        inlined, is cut later by the parsers that care). HTML-only notices are
        reduced to text.
        """
        texts: list[str] = []
        html: list[str] = []
        for part, depth, ctype in self._typed_parts:
            # (part._payload is a list: what is_multipart() tests, without the call.)
            if depth > 0 or isinstance(part._payload, list):  # type: ignore[attr-defined]  # noqa: SLF001
                continue
            if ctype.startswith("multipart/"):
                # A multipart whose boundary is missing or broken: its body is text.
                texts.append(self.text_of(part))
                continue
            if ctype == "text/plain" or (ctype.startswith("text/") and ctype != "text/html"
                                         and ctype != "text/rfc822-headers"):
                # (The disposition is read only where it can drop the part: not for the
                # first text, nor for parts that are not text.)
                if texts and "attachment" in (
                        header_text(fastmime.get(part, "content-disposition")) or "").lower():
                    continue
                texts.append(self.text_of(part))
            elif ctype == "text/html":
                html.append(self.text_of(part))
        if not texts and html:
            texts = [html_to_text(h) for h in html]
        return "\n".join(texts)

    @cached
    def returned(self) -> Message | None:
        """The returned original message (message/rfc822 or text/rfc822-headers part)."""
        for part, depth, ctype in self._typed_parts:
            if depth > 1:
                continue
            if ctype in ("message/rfc822", "message/global", "message/partial"):
                payload = part.get_payload()
                if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                    return payload[0]
            if ctype in ("text/rfc822-headers", "message/rfc822-headers",
                         "text/global-headers", "message/global-headers"):
                text = part_text(part)
                return fastmime.message_from_string(text.lstrip())
        return None


_BOUNDARY_LINE = re.compile(rb"^--([^\s-][^\s]{4,200}?)(?:--)?[ \t]*\r?$", re.M)


def _repair_boundary(msg: Message, raw: bytes, ctype: str | None = None) -> Message | None:
    """Re-parse a multipart whose declared boundary never occurs in its body.

    Some MTAs rewrite the boundary in the header but not in the body; the body's own
    delimiter lines (``--token`` repeated) tell the real one.
    """
    if ctype is None:
        ctype = content_type(msg)
    if not ctype.startswith("multipart/") or isinstance(msg.get_payload(), list):
        return None
    head_end = raw.find(b"\n\n")
    if head_end < 0:
        head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    body = raw[head_end:]
    counts: dict[bytes, int] = {}
    for m in _BOUNDARY_LINE.finditer(body[:2_000_000]):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    candidates = [b for b, n in counts.items() if n >= 2]
    if not candidates:
        return None
    boundary = max(candidates, key=lambda b: counts[b]).decode("ascii", "replace")
    try:
        msg.set_boundary(boundary)
        fixed = fastmime.message_from_bytes(msg.as_bytes())
    except Exception:
        return None
    return fixed if isinstance(fixed.get_payload(), list) else None


_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]*>", re.S | re.I)
_BR = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.I)
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}


def html_to_text(html: str) -> str:
    """Crude HTML-to-text: enough to read a bounce notice sent only as HTML."""
    text = _BR.sub("\n", html)
    text = _TAG.sub("", text)
    for k, v in _ENTITIES.items():
        text = text.replace(k, v)
    return re.sub(r"[ \t]+", " ", text)
