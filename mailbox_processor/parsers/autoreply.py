"""RFC 3834 automatic responses: vacation and out-of-office replies.

Runs last: bounces carry ``Auto-Submitted: auto-replied`` too, so a message only
gets here once no bounce format matched it. The finding's recipient is the person
who is away (the auto-reply's sender), classified ``autoreply``/``vacation``.
"""

from __future__ import annotations

import re
from typing import ClassVar

from mailbox_processor.mime import Mail
from mailbox_processor.models import Finding
from mailbox_processor.text import is_daemon_address, normalise_address

_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort|respuesta|r[eé]ponse)|auto:|"
    r"out of (?:the )?office|abwesenheit|away from|on vacation|vacation|"
    r"r[eé]ponse automatique|absence|i am away|i'm away|away until|risposta automatica|"
    r"autosvar|automaattinen vastaus|自動応答|不在)",
    re.I,
)
_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Never")


class AutoReply:
    """Vacation / out-of-office replies (RFC 3834 and the common vendor markers)."""

    name: ClassVar[str] = "autoreply"

    def parse(self, mail: Mail) -> list[Finding]:
        """See :class:`mailbox_processor.parsers.Parser`."""
        msg = mail.msg
        auto = (mail.header("Auto-Submitted") or "").lower()
        precedence = (mail.header("Precedence") or "").lower()
        signals = 0
        if auto.startswith("auto-replied"):
            signals += 2
        if any(msg.get(h) for h in _HEADERS):
            signals += 2
        if precedence in ("auto_reply", "auto-reply"):
            signals += 2
        if _SUBJECT.search(mail.subject):
            signals += 2
        if mail.header("X-Auto-Response-Suppress"):
            signals += 1
        if signals < 2:
            return []
        sender = normalise_address(mail.from_addr)
        if sender and is_daemon_address(sender):
            return []
        body = mail.notice_text[:2000].strip()
        diag = re.sub(r"\s+", " ", body)[:300] or mail.subject
        return [Finding(recipient=sender, kind="vacation", reason="vacation", diagnostic=diag)]
