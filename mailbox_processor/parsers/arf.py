"""RFC 5965 Abuse Reporting Format feedback reports (spam complaints), and the
Microsoft JMRP variant (an attached message with ``X-HmXmrOriginalRecipient``)."""

from __future__ import annotations

import re
from typing import ClassVar

from mailbox_processor.mime import Mail, header_text, part_text
from mailbox_processor.models import Finding
from mailbox_processor.text import normalise_address

_RCPT_FIELDS = ("original-rcpt-to", "removal-recipient")


class ARF:
    """Feedback reports: one ``complaint`` finding per reported recipient."""

    name: ClassVar[str] = "arf"

    def parse(self, mail: Mail) -> list[Finding]:
        """See :class:`mailbox_processor.parsers.Parser`."""
        if not _may_be_arf(mail):
            return []
        return self._parse(mail)

    def _parse(self, mail: Mail) -> list[Finding]:
        """:meth:`parse` without the byte test first (kept for tests/parsers/test_arf.py)."""
        reports = mail.find_parts("message/feedback-report")
        is_arf = bool(reports) or "feedback-report" in (mail.header("Content-Type") or "").lower()
        if not is_arf and b"X-HmXmrOriginalRecipient" not in mail.raw:
            return []
        returned = mail.returned
        jmrp = returned is not None and returned.get("X-HmXmrOriginalRecipient") is not None
        if not is_arf and not jmrp:
            return []
        recipients: list[str] = []
        feedback_type = None
        arrival = None
        for part in reports:
            text = part_text(part)
            for m in re.finditer(r"^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$", text, re.M):
                key = m.group(1).lower()
                if key in _RCPT_FIELDS:
                    addr = normalise_address(m.group(2))
                    if addr and addr not in recipients:
                        recipients.append(addr)
                elif key == "feedback-type" and feedback_type is None:
                    feedback_type = m.group(2).strip().lower()
                elif key in ("arrival-date", "received-date") and arrival is None:
                    arrival = m.group(2).strip()
        if not recipients and returned is not None:
            for header in ("X-HmXmrOriginalRecipient", "To"):
                value = header_text(returned.get(header))
                addr = normalise_address(value) if value else None
                if addr:
                    recipients.append(addr)
                    break
        diag = f"feedback-type: {feedback_type}" if feedback_type else "complaint report"
        if not recipients:
            return [Finding(recipient=None, kind="feedback", reason="feedback", diagnostic=diag,
                            date=arrival)]
        return [
            Finding(recipient=r, kind="feedback", reason="feedback", diagnostic=diag, date=arrival)
            for r in recipients
        ]


def _may_be_arf(mail: Mail) -> bool:
    """False when the message's bytes cannot make a feedback report or a JMRP one.

    (Most mail is neither: this spares the look through the parts and the decoding of
    the Content-Type.) A ``message/feedback-report`` part or a Content-Type naming
    ``feedback-report`` needs those letters, in some case, in the bytes: a content
    type is the header's text lowercased, and the decoded Content-Type is too, unless
    decoding makes new letters (RFC 2047 words, 8-bit text). Unfolding puts a blank
    where a line broke, and the word has none, so it cannot join it.
    """
    # (Cheapest first. A search for one byte is several times faster than one for two:
    # "?" is in few messages, so it is looked for before "=?". The lowered bytes are
    # kept on the Mail: the legacy parser reads them too.)
    raw = mail.raw
    return (not raw.isascii() or (b"?" in raw and b"=?" in raw)
            or b"feedback-report" in mail.raw_lower or b"X-HmXmrOriginalRecipient" in raw)
