"""fastmime builds exactly the tree ``email.message_from_bytes`` (compat32) builds.

Compared node by node: header pairs, envelope line, payload (text or sub-messages),
preamble, epilogue, defects (type and text), default type and charset.
"""

from __future__ import annotations

import copy
import email
import random
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import edited_samples

from mailbox_processor import fastmime

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"
SAMPLES = sorted(p for p in (ROOT / "fixtures").rglob("*.eml")) + sorted(
    p for sub in ("cur", "new") for p in (ROOT / "fixtures" / "maildir" / sub).iterdir())


def shape(msg: Message) -> tuple[object, ...]:
    payload = msg._payload  # noqa: SLF001 - the tree itself is what is compared
    if isinstance(payload, list):
        payload = [shape(p) if isinstance(p, Message) else repr(p) for p in payload]
    return (msg._headers, msg._unixfrom, payload, msg.preamble,  # noqa: SLF001
            msg.epilogue, [(type(d).__name__, str(d)) for d in msg.defects],
            msg._default_type, msg._charset)  # noqa: SLF001


def same_tree(raw: bytes) -> None:
    msg, ctypes, parts = fastmime.parse_bytes(raw)
    assert shape(msg) == shape(email.message_from_bytes(raw))
    # The content types handed over are what the parts themselves say.
    for part in msg.walk():
        assert ctypes[id(part)] == part.get_content_type()
        same_lookups(part)
    # So is the list of the parts (None: the stdlib parsed it).
    assert parts is None or parts == typed_walk(msg, 0)


def typed_walk(msg: Message, depth: int) -> list[tuple[Message, int, str]]:
    """``msg.walk()`` with each part's depth in message/* parts and content type."""
    ctype = msg.get_content_type()
    out = [(msg, depth, ctype)]
    if msg.is_multipart():
        inner = depth + 1 if ctype.startswith("message/") else depth
        for part in msg.get_payload():
            out.extend(typed_walk(part, inner))
    return out


#: Field names looked up through fastmime.get in the project.
NAMES = ("content-type", "content-transfer-encoding", "content-disposition", "subject",
         "from", "to", "x-missing")


def same_lookups(part: Message) -> None:
    """fastmime's header and parameter lookups answer what the Message methods do."""
    for name in NAMES:
        assert outcome(fastmime.get, part, name) == outcome(Message.get, part, name)
    assert outcome(fastmime.get_boundary, part) == outcome(Message.get_boundary, part)
    assert (outcome(fastmime.get_content_charset, part)
            == outcome(Message.get_content_charset, part))
    assert (outcome(fastmime.get_payload_decoded, part)
            == outcome(lambda m: m.get_payload(decode=True), part))
    assert outcome(fastmime.get_payload, part) == outcome(Message.get_payload, part)
    # (Message.get_payload(decode=True) undoes the transfer encoding named by this.)
    assert outcome(fastmime.text_params, part) == outcome(
        lambda m: (str(m.get("content-transfer-encoding", "")).lower()
                   not in fastmime._ENCODED_CTES, m.get_content_charset()), part)  # noqa: SLF001
    if not part.is_multipart():  # (a container is the stdlib's: not rendered twice)
        # Rendering a multipart/* type without parts writes a random boundary into
        # its Content-Type: each rendering gets its own copy and the same random state.
        state = random.getstate()
        fast = outcome(fastmime.as_string, copy.deepcopy(part))
        random.setstate(state)
        assert fast == outcome(Message.as_string, copy.deepcopy(part))


def outcome(function: Callable[..., object], *args: object) -> object:
    """What ``function(*args)`` returns (as text: Header objects compare by identity),
    or the type of what it raises (a str with both surrogates and other non-ASCII
    characters, which the bytes parser never makes, breaks ``Header``)."""
    try:
        result = function(*args)
        return type(result), str(result)
    except Exception as exc:
        return "raised", type(exc)


EDGE_CASES = {
    "plain": b"From: a@example.com\nSubject: x\n\nbody\n",
    "crlf": b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n",
    "cr only": b"From: a@example.com\rSubject: x\r\rbody\r",
    "odd line breaks": b"From: a\x0b@example.com\nSubject: x\x0c\n\nbo\x1cdy\x1d\x1e\n",
    "envelope line": b"From sender@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\nb\n",
    "envelope at end of headers": b"Subject: x\nFrom nobody else\n\nb\n",
    "misplaced envelope": b"Subject: x\nFrom nobody\nTo: y\n\nb\n",
    "first line continuation": b" folded\nSubject: x\n\nb\n",
    "missing header name": b"Subject: x\n: nothing\n\nb\n",
    "no separator": b"Subject: x\nthis is body already\nmore\n",
    "folded": b"Subject: one\n two\n\tthree\nTo: a\n\nb\n",
    "8-bit header": b"Subject: caf\xc3\xa9\nContent-Type: text/plain; charset=\xff\n\nb\n",
    "8-bit content type": b"Content-Type: multipart/mixed\xff; boundary=b\n\n--b\n\nx\n--b--\n",
    "multipart": (b"Content-Type: multipart/mixed; boundary=\"b\"\n\npre\n--b\n"
                  b"Content-Type: text/plain\n\none\n--b\n\ntwo\n--b--\nepilogue\n"),
    "repeated boundaries": (b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n--b\n"
                            b"\none\n--b\n--b\n\ntwo\n--b--\n"),
    "no start boundary": b"Content-Type: multipart/mixed; boundary=b\n\njust text\n",
    "no close boundary": b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n",
    "no boundary parameter": b"Content-Type: multipart/mixed\n\n--b\n\none\n--b--\n",
    "boundary with spaces and tabs": (b"Content-Type: multipart/mixed; boundary=b\n\n"
                                      b"--b \t\n\none\n--b-- \t\r\nafter"),
    "close boundary without newline": (b"Content-Type: multipart/mixed; boundary=b\n\n"
                                       b"--b\n\n1\n--b--"),
    "nested multipart": (b"Content-Type: multipart/mixed; boundary=o\n\n--o\n"
                         b"Content-Type: multipart/alternative; boundary=i\n\n--i\n\na\n--i\n"
                         b"\nb\n--i--\nin-epilogue\n--o\n\nlast\n--o--\n"),
    "inner part ended by outer boundary": (b"Content-Type: multipart/mixed; boundary=o\n\n--o\n"
                                           b"Content-Type: multipart/mixed; boundary=i\n\n"
                                           b"--i\n\na\n--o\n\nb\n--o--\n"),
    "digest": (b"Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in\n\nx\n"
               b"--d\nContent-Type: text/plain\n\ny\n--d--\n"),
    "cte on multipart": (b"Content-Type: multipart/mixed; boundary=b\n"
                         b"Content-Transfer-Encoding: base64\n\n--b\n\nx\n--b--\n"),
    "dsn": (b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            b"--b\n\nnotice\n--b\nContent-Type: message/delivery-status\n\n"
            b"Reporting-MTA: dns; mx.example.net\n\n\n"
            b"Final-Recipient: rfc822; a@example.org\nAction: failed\n\n"
            b"Final-Recipient: rfc822; b@example.org\nStatus: 5.1.1\n"
            b"--b\nContent-Type: message/rfc822\n\nSubject: original\n\nhello\n--b--\n"),
    "delivery-status at top": (b"Content-Type: message/delivery-status\n\nA: 1\n\nB: 2\n\n\n"
                               b"C: 3\n"),
    "rfc822 at top": b"Content-Type: message/rfc822\n\nSubject: inner\n\nbody\n",
    "headers only": b"Subject: x\nTo: y\n",
    "empty": b"",
    "boundary as the last line": b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b",
    "inner boundary then outer boundary": (b"Content-Type: multipart/mixed; boundary=o\n\n"
                                           b"--o\nContent-Type: multipart/mixed; boundary=i\n"
                                           b"\n--i\n--i\n--o\n\nx\n--o--\n"),
    "delivery-status ended by a boundary": (b"Content-Type: multipart/report; boundary=b\n\n"
                                            b"--b\nContent-Type: message/delivery-status\n\n"
                                            b"A: 1\n\n--b\n\nB: 2\n\n\n--b--\n"),
    "transfer encodings": (b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                           b"Content-Transfer-Encoding: Quoted-Printable\n\ncaf=C3=A9\n--b\n"
                           b"Content-Transfer-Encoding: BASE64\n\nY2Fm\n--b\n"
                           b"Content-Transfer-Encoding: x-uue\n\nbegin 644 x\n--b\n"
                           b"Content-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9\n--b\n"
                           b"Content-Transfer-Encoding: b\xe4se64\n\nY2Fm\n--b\n"
                           b"Content-Transfer-Encoding: 7bit\n\nplain\n--b--\n"),
    "repeated fields": (b"Content-Type: text/plain; charset=utf-7\n"
                        b"Content-Transfer-Encoding: 7bit\n"
                        b"Content-Type: text/plain; charset=ascii\n"
                        b"Content-Transfer-Encoding: base64\n\nY2Fm\n"),
    "boundary with a colon": (b"Content-Type: multipart/mixed; boundary=\"a:b\"\n\n--a:b\n"
                              b"X: 1\n--a:b\nY: 2\n\nbody\n--a:b:\n--a:b--\n"),
    "inner boundary with a colon": (b"Content-Type: multipart/mixed; boundary=o\n\n--o\n"
                                    b"Content-Type: multipart/mixed; boundary=\"i:\"\n\n--i:\n"
                                    b"A: 1\n--i: \n--o\nB: 2\n--o--\n"),
    "cr only, multipart": (b"Content-Type: multipart/mixed; boundary=b\r\r--b\rX: 1\r\rone\r"
                           b"--b--\r"),
    "lone cr in a body": b"Subject: x\r\n\r\nbo\rdy\r\n",
    "crlf and lf": (b"Content-Type: multipart/mixed; boundary=b\r\n\n--b\r\nX: 1\n\tfold\r\n"
                    b"\r\none\n--b--\r\n"),
    "no line break at the end of the headers": b"Subject: x\n folded",
    "one field, no line break": b"Subject: x",
    "folded first field": b"Subject:\n folded\n\t\n\nb\n",
    "blanks before values": b"A: \t x \nB:\t\nC:  \n  y\nD:\n\n",
    "dash line after the fields": b"Subject: x\n-- \n\nb\n",
    "8-bit field name": b"Subj\xe9ct: x\nTo: y\n\nb\n",
    "field name with a space": b"Sub ject: x\nTo: y\n\nb\n",
    "envelope line alone": b"From x",
    "envelope line then a continuation": b"From x\n folded\nSubject: y\n\nb\n",
    "two envelope lines": b"From x\nFrom y\nSubject: z\n\nb\n",
    "envelope line in a part": (b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                                b"From x\nSubject: y\n\none\n--b--\n"),
    "delivery-status without blank lines": (b"Content-Type: message/delivery-status\n\nA: 1\n"
                                            b"B: 2"),
    "delivery-status of blank lines": (b"Content-Type: message/delivery-status\n\n\n\nA: 1\n"
                                       b"\r\n\n"),
    "delivery-status with a body line": (b"Content-Type: message/delivery-status\n\nA: 1\n"
                                         b"body\n\nB: 2\n"),
    "delivery-status in a delivery-status block": (b"Content-Type: message/delivery-status\n\n"
                                                   b"Content-Type: message/delivery-status\n\n"
                                                   b"A: 1\n\nB: 2\n"),
    # (fastmime's header regex looks 65,536 characters ahead: cut in a name, between
    # two fields, in a value)
    "long header block": b"X: y\n" * 20000 + b"\nbody\n",
    "long header block of 8-character fields": b"X: yyyy\n" * 10000 + b"\nbody\n",
    "long header field": b"X: " + b"y" * 70000 + b"\n\nbody\n",
    "dash lines in body": (b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n---- x\n"
                           b"--bb\n--b-\n--b--x\n--b--\n"),
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases(name: str) -> None:
    same_tree(EDGE_CASES[name])


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fixtures(path: Path) -> None:
    same_tree(path.read_bytes())


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the project")
def test_shared_corpus() -> None:
    for path in sorted(CORPUS.iterdir()):
        same_tree(path.read_bytes())


PIECES = [b"\n", b"\r\n", b"\r", b"--b", b"--b--", b"--i\n", b" ", b"\t", b"x: y",
          b"From z", b"Content-Type: multipart/mixed; boundary=b\n",
          b"Content-Type: multipart/mixed; boundary=i\n",
          b"Content-Type: message/delivery-status\n", b"Content-Type: message/rfc822\n",
          b"Content-Type: multipart/digest; boundary=b\n", b"\xff", b"\x0b", b":",
          b"Content-Type: multipart/mixed; boundary=\"b:\"\n", b"--b:", b"From ", b"X: y\n z",
          b"\r\n\t"]


@given(st.lists(st.sampled_from(PIECES) | st.binary(max_size=8), max_size=60))
def test_generated(pieces: list[bytes]) -> None:
    same_tree(b"".join(pieces))


@given(edited_samples(SAMPLES, PIECES, max_edits=6, max_cut=120))
def test_mutated_fixtures(raw: bytes) -> None:
    same_tree(raw)


PARAM_PIECES = ["multipart/mixed", "text/plain", ";", "; ", ";\n\t", '"', "=", " = ", "boundary",
                "BOUNDARY", "Boundary ", "charset", "CharSet", "utf-8", "\"UTF-8\"", "b", "<",
                ">", "\\", "*", "*0", "'", "%41", " ", "\t", "\x0b", "\x1c", "\udcff", "\u0130",
                "\u212a", "é", "name"]


@given(st.lists(st.lists(st.sampled_from(PARAM_PIECES) | st.text(max_size=3), max_size=14)
                .map("".join), min_size=0, max_size=3),
       st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE", "X-Other"]))
def test_parameters(values: list[str], name: str) -> None:
    """Content-Type values of every shape: quoted, bare names, RFC 2231, 8-bit."""
    msg = Message()
    for value in values:
        msg.set_raw(name, value)
    same_lookups(msg)


@pytest.mark.parametrize("value", [
    'multipart/mixed; boundary="a;b"; charset=x', 'multipart/mixed; boundary="a\\"b"',
    "multipart/mixed; boundary*=utf-8''%41", "multipart/mixed; boundary*0=a; boundary*1=b",
    "multipart/mixed; boundary*0=a; boundary=z", "boundary=first; boundary=second",
    'text/plain; charset="<UTF-8>"', "text/plain; charset", "text/plain; CHARSET = x ;",
    'multipart/mixed; boundary=""x""', "multipart/mixed; boundary=<<x>> ",
    'text/plain; x="; charset=no"; charset=yes', 'text/plain; x="; charset=no',
    "text/plain; charset=caf\udce9", "text/plain; charset=\u212aoi8-r"])
def test_parameter_cases(value: str) -> None:
    msg = Message()
    msg.set_raw("Content-Type", value)
    same_lookups(msg)
    # Two fields: the first one counts.
    msg.set_raw("content-type", "text/plain; charset=second; boundary=second")
    same_lookups(msg)


def test_message_from_string_too() -> None:
    text = EDGE_CASES["dsn"].decode()
    assert shape(fastmime.message_from_string(text)) == shape(email.message_from_string(text))


@given(st.lists(st.sampled_from([p.decode("latin-1") for p in PIECES]
                                + ["\x85", "\u2028", "\u2029", "caf\xe9", "Subject: x\n"])
                | st.text(max_size=4), max_size=40))
def test_message_from_string_generated(pieces: list[str]) -> None:
    """Decoded text (returned headers) may hold line breaks of str.splitlines() that
    bytes decoded as ASCII never hold: NEL, LINE and PARAGRAPH SEPARATOR."""
    text = "".join(pieces)
    assert shape(fastmime.message_from_string(text)) == shape(email.message_from_string(text))


TEXT_PIECES = [" ", "\t", "\r", "\n", "\r\n", "\x0b", "\x1c", ":", "x", "é", "\udcff",
               "From ", "=?utf-8?q?x?=", "; ", "Content-Type", "multipart/mixed", "message/rfc822",
               "text/plain", "a" * 80]


@given(st.lists(st.tuples(st.sampled_from(["Subject", "Content-Type", "X", "content-type"]),
                          st.lists(st.sampled_from(TEXT_PIECES), max_size=6).map("".join)),
                max_size=4),
       st.none() | st.lists(st.sampled_from(TEXT_PIECES), max_size=8).map("".join),
       st.booleans())
def test_as_string(fields: list[tuple[str, str]], payload: str | None, digest: bool) -> None:
    """as_string of generated leaves: folded, 8-bit, long, odd line breaks, typed."""
    msg = Message()
    for name, value in fields:
        msg.set_raw(name, value)
    msg._payload = payload  # noqa: SLF001
    if digest:
        msg.set_default_type("message/rfc822")
    assert outcome(fastmime.as_string, msg) == outcome(Message.as_string, msg)


@pytest.mark.parametrize("value", ["x" * 99_990, "x" * 99_999 + " y", "x" * 1_000_010 + " y"])
def test_as_string_of_a_long_field(value: str) -> None:
    """Past 1,000,000 characters the generator folds: not a one-line field any more."""
    msg = Message()
    msg.set_raw("Subject", value)
    msg.set_payload("body\r\n")
    assert fastmime.as_string(msg) == msg.as_string()


@pytest.mark.parametrize("ctype", ["multipart/mixed", "message/rfc822", "message/delivery-status",
                                   "text/plain", "application/octet-stream"])
def test_as_string_by_type(ctype: str) -> None:
    """The generator writes the str body of a message/* or multipart/* part as it is."""
    msg = Message()
    msg.set_raw("Content-Type", ctype)
    msg.set_payload("one\r\ntwo\rthree\n")
    assert outcome(fastmime.as_string, msg) == outcome(Message.as_string, msg)


def test_lowercase_keeps_length_but_for_one_character() -> None:
    """fastmime.get skips a field whose name is not as long as the name looked up: only
    U+0130 changes length in lower(), into two characters that are not both ASCII."""
    changed = [c for c in map(chr, range(0x110000)) if len(c.lower()) != 1]
    assert changed == ["\u0130"]
    assert not "\u0130".lower().isascii()
