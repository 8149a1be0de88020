"""RFC 5965 Abuse Reporting Format feedback reports (spam complaints), and the
Microsoft JMRP variant (an attached message with ``X-HmXmrOriginalRecipient``)."""

from __future__ import annotations

import re
from email.message import Message
from typing import ClassVar

from mailbox_processor import fastmime
from mailbox_processor.mime import Mail, header_text, part_text
from mailbox_processor.models import Finding
from mailbox_processor.text import normalise_address

_RCPT_FIELDS = ("original-rcpt-to", "removal-recipient")


class ARF:
    """Feedback reports: one ``complaint`` finding per reported recipient."""

    name: ClassVar[str] = "arf"

    def parse(self, mail: Mail) -> list[Finding]:
        """See :class:`mailbox_processor.parsers.Parser`."""
        reports = mail.find_parts("message/feedback-report")
        is_arf = bool(reports) or "feedback-report" in (mail.header("Content-Type") or "").lower()
        returned = mail.returned
        # (The look for the JMRP header in the returned message's own fields comes before
        # the one through the whole raw message: most mail stops at it.)
        if not is_arf and (returned is None
                           or fastmime.get(returned, "x-hmxmroriginalrecipient") is None
                           or b"X-HmXmrOriginalRecipient" not in mail.raw):
            return []
        return self._read(reports, returned)

    def _read(self, reports: list[Message], returned: Message | None) -> list[Finding]:
        """The findings of a feedback report (its report parts and returned message)."""
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
            for header in ("x-hmxmroriginalrecipient", "to"):
                # (fastmime.get: a str, or a Header for a field with raw 8-bit bytes.)
                value = header_text(fastmime.get(returned, header))
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
