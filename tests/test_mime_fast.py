"""The shortcuts in mailbox_processor.mime answer what the plain code they replace did."""

from __future__ import annotations

import codecs
import email.header
import importlib
from email.message import Message
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from strategies import edited_samples, enough

from mailbox_processor import mime


def plain_header_text(value: object) -> str | None:
    """mime.header_text as it was: the whitespace regex and replacements on every value."""
    if value is None:
        return None
    if isinstance(value, email.header.Header):
        text = mime._decode_words(value) or str(value)  # noqa: SLF001
    else:
        text = str(value)
        if "=?" in text and mime._ENCODED_WORD.search(text):  # noqa: SLF001
            text = mime._decode_words(text) or text  # noqa: SLF001
    text = mime._WS.sub(" ", text).replace("\r", "").replace("\n", " ").strip()  # noqa: SLF001
    if not text.isascii() and mime._SURROGATE.search(text):  # noqa: SLF001
        text = mime.decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")
    return text


HEADER_PIECES = ["\r", "\n", "\r\n", " ", "\t", "\r\n\t", "\n ", "=?utf-8?q?caf=C3=A9?=",
                 "=?iso-8859-1?b?Y2Fm6Q==?=", "=?x?q?", "?=", "\udcc3\udca9", "é", "a", "\x0b",
                 "\u2028"]


@given(st.lists(st.sampled_from(HEADER_PIECES) | st.text(max_size=3), max_size=12)
       .map("".join))
def test_header_text(value: str) -> None:
    assert mime.header_text(value) == plain_header_text(value)


def test_header_text_of_a_header_object() -> None:
    for value in (email.header.Header("caf\udcc3\udca9\n folded", charset="unknown-8bit"),
                  email.header.Header("=?utf-8?q?caf=C3=A9?= x"), email.header.Header("")):
        assert mime.header_text(value) == plain_header_text(value)

    class Text(str):
        pass

    assert mime.header_text(Text("=?utf-8?q?caf=C3=A9?=")) == "café"
    assert mime.header_text(None) is None


class Counted:
    calls = 0

    @mime.cached
    def value(self) -> list[int]:
        """Doc of value."""
        Counted.calls += 1
        return [Counted.calls]


def test_cached_computes_once_per_instance() -> None:
    Counted.calls = 0
    first, second = Counted(), Counted()
    assert first.value is first.value
    assert first.value == [1]
    assert second.value == [2]
    assert Counted.calls == 2
    assert isinstance(Counted.__dict__["value"], mime.cached)
    assert Counted.value.__doc__ == "Doc of value."


ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"
SAMPLES = sorted(p for p in (ROOT / "fixtures").rglob("*.eml")) + (
    sorted(CORPUS.iterdir()) if CORPUS.is_dir() else [])


def plain_get(msg: Message | None, name: str) -> str | None:
    """Mail.header / returned_header as plain code: Message.get, then header_text."""
    if msg is None:
        return None
    try:
        return plain_header_text(msg.get(name))
    except Exception:
        return None


def same_headers(raw: bytes) -> None:
    mail = mime.Mail.from_bytes(raw)
    returned = mail.returned
    names = {"subject", "from", "x-missing", "Content-Type", "MESSAGE-ID"}
    names |= set(mail.field_names) | {k.lower() for k in (returned or {})}
    for name in names:
        assert mail.header(name) == plain_get(mail.msg, name)
        assert mail.returned_header(name) == plain_get(returned, name)


def test_headers_of_samples() -> None:
    for path in SAMPLES:
        same_headers(path.read_bytes())


@given(edited_samples(SAMPLES, [b"\xff", b"\xc3\xa9", b"=?utf-8?q?=C3=A9?=", b"\n ", b"\n",
                                b":", b"Subject: x\n"], max_edits=4, max_cut=40))
def test_headers_of_edited_samples(raw: bytes) -> None:
    same_headers(raw)


def test_find_parts_of_samples() -> None:
    """find_parts (over the typed parts list) answers the plain filter over parts."""
    kinds = [("message/delivery-status",), ("text/plain", "text/html"), ("message/rfc822",)]
    for path in SAMPLES:
        mail = mime.Mail.from_bytes(path.read_bytes())
        for ctypes in kinds:
            for depth in (0, 1):
                assert mail.find_parts(*ctypes, max_depth=depth) == [
                    p for p, d in mail.parts if d <= depth and mime.content_type(p) in ctypes]


def plain_parts(mail: mime.Mail) -> tuple[list[tuple[Message, int]], list[str]]:
    """Mail.parts as it was (its own walk, the type asked of containers only) and the
    problems that walk records; Mail._typed_parts was this list with each type."""
    out: list[tuple[Message, int]] = []
    problems: list[str] = []
    stack: list[tuple[Message, int]] = [(mail.msg, 0)]
    while stack and len(out) < mime.MAX_PARTS:
        part, depth = stack.pop()
        out.append((part, depth))
        if depth > mime.MAX_DEPTH:
            problems.append(f"message/rfc822 nesting deeper than {mime.MAX_DEPTH}: not followed")
            continue
        if not isinstance(part.get_payload(), list):
            continue
        inner = depth + 1 if mime.content_type(part).startswith("message/") else depth
        stack.extend((p, inner) for p in reversed(part.get_payload()) if isinstance(p, Message))
    if stack:
        problems.append(f"more than {mime.MAX_PARTS} MIME parts: the rest was not read")
    return out, problems


def same_parts(raw: bytes) -> None:
    mail = mime.Mail.from_bytes(raw)
    plain, problems = plain_parts(mail)
    before = list(mail.problems)
    assert mail.parts == plain
    assert mail._typed_parts == [(p, d, mime.content_type(p)) for p, d in plain]  # noqa: SLF001
    assert mail.problems == before + [p for p in dict.fromkeys(problems) if p not in before]


def test_parts_of_samples() -> None:
    """One walk makes parts and their types: the plain walk's parts, in its order."""
    for path in SAMPLES:
        same_parts(path.read_bytes())


def test_parts_caps() -> None:
    """The nesting and part-count caps cut the walk where the plain one stops."""
    deep = b"Content-Type: text/plain\n\nbody\n"
    for _ in range(mime.MAX_DEPTH + 3):
        deep = b"Content-Type: message/rfc822\n\n" + deep
    same_parts(deep)
    leaves = b"".join(b"--b\nContent-Type: text/plain\n\n%d\n" % i
                      for i in range(mime.MAX_PARTS + 5))
    wide = b"Content-Type: multipart/mixed; boundary=b\n\n" + leaves + b"--b--\n"
    same_parts(wide)
    assert len(mime.Mail.from_bytes(wide).parts) == mime.MAX_PARTS


@given(edited_samples(SAMPLES, [b"\n", b"\n\n", b"--", b"Content-Type: message/rfc822\n\n",
                                b"Content-Type: multipart/mixed; boundary=x\n\n--x\n"],
                      max_edits=4, max_cut=40))
def test_parts_of_edited_samples(raw: bytes) -> None:
    same_parts(raw)


def plain_notice_text(mail: mime.Mail) -> str:
    """Mail.notice_text as it was: is_multipart() asked, every leaf's disposition read."""
    texts: list[str] = []
    html: list[str] = []
    for part, depth in mail.parts:
        ctype = mime.content_type(part)
        if depth > 0 or part.is_multipart():
            continue
        if ctype.startswith("multipart/"):
            texts.append(mime.part_text(part))
            continue
        disp = (mime.header_text(part.get("content-disposition")) or "").lower()
        if ctype == "text/plain" or (ctype.startswith("text/") and ctype != "text/html"
                                     and ctype != "text/rfc822-headers"):
            if "attachment" in disp and texts:
                continue
            texts.append(mime.part_text(part))
        elif ctype == "text/html":
            html.append(mime.part_text(part))
    if not texts and html:
        texts = [mime.html_to_text(h) for h in html]
    return "\n".join(texts)


def test_notice_text_of_samples() -> None:
    """The notice's text parts, chosen reading dispositions only where one can count."""
    for path in SAMPLES:
        mail = mime.Mail.from_bytes(path.read_bytes())
        assert mail.notice_text == plain_notice_text(mail), path


@given(edited_samples(SAMPLES, [b"\n", b"\n\n", b"--", b"Content-Disposition: attachment\n",
                                b"Content-Type: text/html\n", b"Content-Type: text/plain\n"],
                      max_edits=4, max_cut=40))
def test_notice_text_of_edited_samples(raw: bytes) -> None:
    mail = mime.Mail.from_bytes(raw)
    assert mail.notice_text == plain_notice_text(mail)


def plain_decode_bytes(data: bytes, charset: str | None, problems: list[str] | None) -> str:
    """mime.decode_bytes as it was: the charset worked out on every call (the cache of
    what it works out is emptied first)."""
    mime._CHARSET_INFO.clear()  # noqa: SLF001
    return mime.decode_bytes(data, charset, problems)


def plain_part_text(part: Message, limit: int, problems: list[str] | None) -> str:
    """mime.part_text as it was: every payload decoded to bytes and back, the two
    replacements on every text."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, str):
            text = raw
        elif isinstance(raw, list):
            text = "\n".join(mime._as_text(p) for p in raw if isinstance(p, Message))  # noqa: SLF001
        else:
            text = ""
    elif isinstance(payload, bytes):
        try:
            charset = part.get_content_charset()
        except Exception:
            charset = None
        text = plain_decode_bytes(payload[: limit * 2], charset, problems)
        if problems is not None:
            for defect in getattr(part, "defects", []):
                problems.append(f"{mime.content_type(part)} part: {type(defect).__name__}")
    else:
        text = str(payload)
    if len(text) > limit:
        text = text[:limit]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def same_part_texts(raw: bytes) -> int:
    """part_text of every part of ``raw`` answers the plain one (text and problems);
    returns how many parts took the ASCII shortcut."""
    shortcuts = 0
    # (Each on a tree of its own: decoding a payload adds to the part's defects.)
    fast_tree, plain_tree = (mime.Mail.from_bytes(raw).msg for _ in range(2))
    for part, twin in zip(fast_tree.walk(), plain_tree.walk(), strict=True):
        shortcuts += mime._ascii_text(part, None) is not None  # noqa: SLF001
        for limit in (mime.MAX_TEXT_CHARS, 7):
            fast: list[str] = []
            plain: list[str] = []
            assert mime.part_text(part, limit, fast) == plain_part_text(twin, limit, plain)
            assert fast == plain
            assert mime.part_text(part, limit) == plain_part_text(twin, limit, None)
    return shortcuts


def test_part_text_of_samples() -> None:
    shortcuts = sum(same_part_texts(path.read_bytes()) for path in SAMPLES)
    assert shortcuts >= enough(300, 25)  # the shortcut is taken (it is the usual case)


CHARSETS = [b"utf-7", b"unicode-1-1-utf-7", b"utf-16", b"utf-32-le", b"iso-2022-jp", b"hz",
            b"cp037", b"us-ascii", b'"ISO-8859-1"', b"x-unknown", b"bogus", b"utf8",
            b"windows-1252", b"koi8-r", b"shift_jis", b"\\"]


@given(edited_samples(SAMPLES, [b"\n", b"+AGEAYgBj-", b"~{", b"\x1b$B", b"\r", b"\r\n", b"\xe9",
                                b"Content-Transfer-Encoding: base64\n",
                                b"Content-Type: text/plain; charset=", *CHARSETS],
                      max_edits=4, max_cut=40))
def test_part_text_of_edited_samples(raw: bytes) -> None:
    same_part_texts(raw)


def test_ascii_identity_codecs() -> None:
    """Every codec in ASCII_IDENTITY decodes any ASCII bytes to the same characters:
    UTF-8 and ASCII by definition, Latin-1 (every byte its own code point), and the
    others are stateless charmap codecs (each byte alone through a table) whose table
    maps 0-127 to themselves."""
    ascii_bytes = bytes(range(128))
    for name in mime.ASCII_IDENTITY:
        info = codecs.lookup(name)
        assert info.name == name
        assert ascii_bytes.decode(name) == ascii_bytes.decode("ascii")
        if name in ("utf-8", "ascii", "iso8859-1"):
            continue
        module = importlib.import_module(info.incrementaldecoder.__module__)
        assert "charmap_decode" in module.Codec.decode.__code__.co_names, name
        assert module.decoding_table[:128] == ascii_bytes.decode("ascii"), name
    # And those outside it are not the identity on some ASCII input.
    for name, data in (("utf-7", b"+AGE-"), ("utf-16", b"ab"), ("iso2022_jp", b"\x1b$B$\"\x1b(B"),
                       ("hz", b"~{<:~}"), ("cp037", b"a")):
        assert data.decode(name) != data.decode("ascii")
        assert codecs.lookup(name).name not in mime.ASCII_IDENTITY
