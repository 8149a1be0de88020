"""The detector gates of the legacy parser's flufl.bounce shortcut: a gate says "skip"
only when its detector would return no failures and raise nothing."""

from __future__ import annotations

import email
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import edited_samples

from mailbox_processor.mime import Mail
from mailbox_processor.parsers.context import cut_returned
from mailbox_processor.parsers.legacy import (
    _GATES,
    _SHORTCUTS,
    _addr_may_hold,
    _detector_plan,
    _FluflView,
    _notice_only,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"
MAILDIR = ROOT / "fixtures" / "maildir"
SAMPLES = sorted(p for sub in ("cur", "new") for p in (MAILDIR / sub).iterdir())
SAMPLES += sorted((ROOT / "fixtures" / "malformed").glob("*.eml"))
SAMPLES += sorted(CORPUS.iterdir()) if CORPUS.is_dir() else []


def check_gates(msg: Message) -> int:
    """Every skipped detector finds nothing without raising; returns how many were
    skipped (so that a test can tell it tested something)."""
    skipped = 0
    for detector, gate, _patterns, _shortcut in _detector_plan():
        if gate is None:
            continue
        try:
            keep = gate(_FluflView(msg))
        except Exception:  # the body could not be read: the detector reads it too
            keep = True
        if keep:
            continue
        skipped += 1
        temporary, permanent = detector().process(msg)  # must not raise
        assert not temporary and not permanent, detector.__name__
    return skipped


def views(raw: bytes) -> list[Message]:
    """The whole message, and the notice-only view the parser hands flufl.bounce."""
    mail = Mail.from_bytes(raw)
    return [email.message_from_bytes(raw), _notice_only(mail, cut_returned(mail.notice_text))]


def test_every_gate_is_used() -> None:
    plan = _detector_plan()
    assert sum(gate is not None for _d, gate, _p, _s in plan) == len(_GATES)
    # Each shortcut is found on its detector too.
    assert sum(shortcut is not None for *_rest, shortcut in plan) == len(_SHORTCUTS)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_real_messages(path: Path) -> None:
    for msg in views(path.read_bytes()):
        check_gates(msg)


@given(edited_samples(SAMPLES, [
    b"\n", b"\n\n", b"did not reach the following recipient\n",
    b"Hi. This is the qmail-send program\n\n<a@example.org>:\n",
    b"The following recipients did not receive this message:\n<b@x.org>\n",
    b", c@example.org,\n", b"X-Failed-Recipients: b@example.org\n",
    b"Content-Type: multipart/mixed; boundary=x\n", b"X-Mailer: Novell\n",
    b"From: MAILER-DAEMON@yahoo.com\n", b"From: mailer-daemon@yale.edu\n",
    b"From: x@aol.com\n", b"From: \n"], max_edits=4, max_cut=200))
def test_mutated(raw: bytes) -> None:
    for msg in views(raw):
        check_gates(msg)


#: Pieces of From fields: the addresses the gates look for, cut up by what the
#: address parser drops or inserts (white space, comments, quoted pairs, quotes, dots).
FROM_PIECES = st.lists(st.sampled_from(
    ["mailer-daemon", "MAILER-", "Daemon", "mai", "ler", "@", "yahoo", "ya", "hoo", ".com",
     "yale", "YALE", ".edu", "ed", "u", "aol", "AOL", ".", "x", " ", "\t", "\r\n ", "\n",
     "(", ")", "\\", '"', "<", ">", ",", ":", ";", "[", "]", "\u0130", "\u212a", "\xe9"]),
    max_size=14).map("".join)


@settings(max_examples=2000)
@given(FROM_PIECES, st.sampled_from(["text/plain", "multipart/mixed"]))
def test_from_gates(from_: str, ctype: str) -> None:
    msg = Message()
    msg["From"] = from_
    msg["Content-Type"] = ctype
    if ctype == "text/plain":
        msg.set_payload("mail to the following recipients could not be delivered\n  someone\n"
                        "Message not delivered to the following:\n  someone\nError Detail\n")
    else:
        part = Message()
        part.set_payload("x")
        msg.set_payload([part])
    check_gates(msg)


#: Addresses the gates look for, with what the address parser drops put in between.
NOISY_ADDRESS = st.tuples(
    st.sampled_from(["mailer-daemon@yahoo.com", "MAILER-DAEMON@Yale.EDU", "x@aol.com"]),
    st.lists(st.tuples(st.integers(min_value=0, max_value=30),
                       st.sampled_from([" ", "\t", "\r\n ", "\n", "(c)", "()", "\\",
                                        '"', "<", ">", "Name <", "a, "])),
             max_size=3),
).map(lambda t: _insert(*t))


def _insert(address: str, noise: list[tuple[int, str]]) -> str:
    for pos, piece in noise:
        pos %= len(address) + 1
        address = address[:pos] + piece + address[pos:]
    return address


@given(st.one_of(FROM_PIECES, NOISY_ADDRESS),
       st.sampled_from(["mailer-daemon@yahoo", "yale", "@aol.com"]))
@example("mailer(c)-daemon@yahoo.com", "mailer-daemon@yahoo")
@example("mailer-daemon@ya(c)hoo.com", "mailer-daemon@yahoo")
@example('"mailer-daemon@ya\\hoo.com"', "mailer-daemon@yahoo")
@example("mailer-daemon\r\n @yahoo.com", "mailer-daemon@yahoo")
@example("x@aol\r\n .com", "@aol.com")
def test_addr_may_hold(value: str, needle: str) -> None:
    """The gate's premise, directly: an address that holds the needle is never ruled out."""
    from email.utils import getaddresses, parseaddr

    found = [parseaddr(value)[1].lower(), parseaddr(value.lower())[1],
             *(a.lower() for _n, a in getaddresses([value]))]
    if any(needle in a for a in found):
        assert _addr_may_hold(value, needle)


#: Body lines: the start phrases of the body-scanning detectors, and noise.
BODY_LINES = st.lists(st.sampled_from([
    "We're sorry. There's a problem", "Check your send e-mail address.",
    "Hi. The MTA program at x", "Hi. This is the qmail-send program",
    "This is the mail delivery agent at x", "Unfortunately, your mail was not delivered",
    "Your mail message to the following", "  Hi. This is the", "", "<a@example.org>:",
    "did not reach the following recipient(s):", "Did not reach the following recipient",
    "  SMTP=a@example.org; on Mon", "a@example.org on Mon", "MSEXCH:x",
    "The following recipients did not receive this message:",
    "THE FOLLOWING RECIPIENTS DID NOT RECEIVE THIS MESSAGE:", "<b@example.org>",
    "x, c@example.org, y", "x,c@example.org,", ", @,", "- no such user", "\u017f\xe9",
    "the following recipients did not receive thi\u017f message:"]), max_size=8)


def _qmail_bodies() -> list[list[str]]:
    from flufl.bounce._detectors import qmail

    return [[tag, "", "<a@example.org>:"] for tag in qmail.introtags]


@settings(max_examples=1000)
@given(BODY_LINES, st.sampled_from(["text/plain", "multipart/mixed", "multipart/report"]))
@example(["The following recipients did not receive this message:", "<b@example.org>"],
         "multipart/mixed")
@example(["did not reach the following recipient(s):", "a@example.org on Mon"], "text/plain")
@example(["x,c@example.org,"], "text/plain")
def test_body_gates(lines: list[str], ctype: str) -> None:
    msg = Message()
    msg["From"] = "postmaster@example.org"
    msg["Content-Type"] = ctype
    body = "\n".join(lines) + "\n"
    if ctype == "text/plain":
        msg.set_payload(body)
    else:
        part = Message()
        part["Content-Type"] = "text/plain"
        part["Content-Description"] = "Notification"
        part.set_payload(body)
        msg.set_payload([part])
    check_gates(msg)


@pytest.mark.parametrize("lines", _qmail_bodies())
def test_qmail_tags(lines: list[str]) -> None:
    """Every intro tag opens a QSBMF bounce (the body gate must know them all)."""
    msg = Message()
    msg.set_payload("\n".join(lines) + "\n")
    check_gates(msg)


def _dsn_report(recipient: str) -> bytes:
    return (b"Content-Type: multipart/report; report-type=delivery-status; boundary=in\n\n"
            b"--in\nContent-Type: text/plain\n\nnot delivered\n"
            b"--in\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
            b"Final-Recipient: rfc822; " + recipient.encode() + b"\nAction: failed\n"
            b"Status: 5.1.1\n\n--in--\n")


#: Where flufl.bounce's DSN detector finds a delivery-status part: as the root, at
#: the top, nested in a multipart part, inside an attached message; and where not.
DSN_SHAPES = [
    b"Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
    b"Final-Recipient: rfc822; a@example.org\nAction: failed\n",
    b"From: x@example.org\n" + _dsn_report("b@example.org"),
    b"Content-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: text/plain\n\nhi\n"
    b"--out\n" + _dsn_report("c@example.org") + b"--out--\n",
    b"Content-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: message/rfc822\n\n"
    + _dsn_report("d@example.org") + b"--out--\n",
    b"Content-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: text/plain\n\nhi\n"
    b"--out\nContent-Type: message/delivery-status\n\nAction: failed\n"
    b"Final-Recipient: rfc822; e@example.org\n--out--\n",
    b"Content-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: text/plain\n\nhi\n"
    b"--out--\n",
]


@pytest.mark.parametrize("raw", DSN_SHAPES)
def test_dsn_gate(raw: bytes) -> None:
    """The DSN gate lets the detector run wherever it finds something."""
    from flufl.bounce._detectors.dsn import DSN

    gate = dict((d, g) for d, g, _p, _s in _detector_plan())[DSN]
    for msg in views(raw):
        found = any(DSN().process(msg))
        assert gate(_FluflView(msg)) or not found
        check_gates(msg)
    # (All but the last shape hold a report the detector reads.)
    assert any(DSN().process(email.message_from_bytes(raw))) == (raw is not DSN_SHAPES[-1])
