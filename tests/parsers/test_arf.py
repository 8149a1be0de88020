"""The ARF parser's quick order of tests gives the answers of its plain reading.

The plain reading (:func:`plain`: the raw bytes searched for the JMRP header before
the returned message's fields) is the oracle, on the fixtures, the shared
corpus and edited copies of them.
"""

from __future__ import annotations

from hypothesis import given, settings
from strategies import edited_samples, enough, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.models import Finding
from mailbox_processor.parsers.arf import ARF


def plain(mail: Mail) -> list[Finding]:
    """The plain reading: the raw bytes searched for the JMRP header before the
    returned message's fields."""
    reports = mail.find_parts("message/feedback-report")
    is_arf = bool(reports) or "feedback-report" in (mail.header("Content-Type") or "").lower()
    if not is_arf and b"X-HmXmrOriginalRecipient" not in mail.raw:
        return []
    returned = mail.returned
    jmrp = returned is not None and returned.get("X-HmXmrOriginalRecipient") is not None
    if not is_arf and not jmrp:
        return []
    return ARF()._read(reports, returned)


def same(raw: bytes) -> bool:
    """The parser's answer is the plain reading's; True when it declined the message."""
    fast = ARF().parse(Mail.from_bytes(raw))
    assert fast == plain(Mail.from_bytes(raw))
    return not fast


def test_same_on_samples() -> None:
    paths = sample_paths()
    declined = [same(p.read_bytes()) for p in paths]
    # Both ways are exercised: most mail is declined, the feedback reports are read.
    assert 0 < sum(declined) < len(paths)
    arf = [p for p in paths if ARF().parse(Mail.from_bytes(p.read_bytes()))]
    assert len(arf) >= enough(3, 1)


_INSERTS = [
    b"Content-Type: message/Feedback-Report\n", b"; report-type=FEEDBACK-report",
    b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\n",
    b"\r\n", b"\n", b"\r", b"\n ", b"feedback-\n report", b"feedback-\r\n\treport",
    b"=?utf-8?q?feedback-report?=", b"=?utf-8?b?ZmVlZGJhY2stcmVwb3J0?=", b"\xe2\x84\xaa",
    b"X-HmXmrOriginalRecipient: a@example.com\n", b"--x\n", b"\n\n",
    b"Content-Type: message/feedback-report\n\nOriginal-Rcpt-To: b@example.org\n",
]


@settings(max_examples=300, deadline=None)
@given(edited_samples(sample_paths(), _INSERTS, max_edits=4, max_cut=40))
def test_same_on_edited_samples(raw: bytes) -> None:
    same(raw)


def test_decoded_content_type_still_read() -> None:
    """A Content-Type that names feedback-report only once decoded is not declined."""
    raw = (b"From: fbl@example.net\nTo: a@example.com\nSubject: report\n"
           b"Content-Type: text/plain; x==?utf-8?b?ZmVlZGJhY2stcmVwb3J0?=\n\nhello\n")
    assert b"feedback-report" not in raw.lower()
    findings = ARF().parse(Mail.from_bytes(raw))
    assert [f.kind for f in findings] == ["feedback"]
    assert ARF().parse(Mail.from_bytes(raw.replace(b"=?utf-8?b?ZmVlZGJhY2stcmVwb3J0?=",
                                                   b"feedback-repor"))) == []
