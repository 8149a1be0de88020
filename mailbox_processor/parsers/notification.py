"""JSON bounce notifications mailed by sending services (Amazon SES, via SNS or direct).

Amazon SES documents the notification object: ``notificationType`` Bounce,
Complaint or Delivery, with ``bounce.bouncedRecipients[]`` (emailAddress, status,
diagnosticCode, action), ``bounce.bounceType`` Permanent/Transient and
``complaint.complainedRecipients[]``. An SNS envelope wraps it as a string in
``Message``.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from mailbox_processor.mime import Mail
from mailbox_processor.models import Finding
from mailbox_processor.parsers.context import split_diagnostic
from mailbox_processor.text import normalise_address

_RECIPIENT = re.compile(
    r'"emailAddress"\s*:\s*"([^"]+)"(?:\s*,\s*"action"\s*:\s*"([^"]*)")?'
    r'(?:\s*,\s*"status"\s*:\s*"([^"]*)")?(?:\s*,\s*"diagnosticCode"\s*:\s*"([^"]*)")?')


def _salvage(text: str) -> dict[str, Any] | None:
    """Rebuild the parts we need from a truncated notification (cut by a size limit)."""
    text = text.replace('\\"', '"')
    m = re.search(r'"notificationType"\s*:\s*"(\w+)"', text)
    if not m:
        return None
    kind = m.group(1)
    rcpts = [
        {"emailAddress": r[0], "action": r[1] or None, "status": r[2] or None,
         "diagnosticCode": r[3] or None}
        for r in _RECIPIENT.findall(text)
    ]
    if kind == "Bounce":
        t = re.search(r'"bounceType"\s*:\s*"(\w+)"', text)
        return {"notificationType": kind, "bounce": {
            "bounceType": t.group(1) if t else None, "bouncedRecipients": rcpts}}
    if kind == "Complaint":
        return {"notificationType": kind, "complaint": {"complainedRecipients": rcpts}}
    return None


def _load(text: str) -> dict[str, Any] | None:
    obj = _parse(text)
    return obj if obj is not None else _salvage(text)


def _parse(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0:
        return None
    end = text.rfind("}")
    try:
        obj = json.loads(text[start : end + 1])
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    inner = obj.get("Message")
    if isinstance(inner, str) and "notificationType" in inner:
        try:
            sub = json.loads(inner)
        except ValueError:
            return None
        return sub if isinstance(sub, dict) else None
    return obj if "notificationType" in obj or "eventType" in obj else None


class JSONNotification:
    """Amazon SES bounce / complaint / delivery notifications in a mail body."""

    name: ClassVar[str] = "json-notification"

    def parse(self, mail: Mail) -> list[Finding]:
        """See :class:`mailbox_processor.parsers.Parser`."""
        text = mail.notice_text
        if "notificationType" not in text and '"eventType"' not in text:
            return []
        obj = _load(text)
        if obj is None:
            return []
        kind = str(obj.get("notificationType") or obj.get("eventType") or "").lower()
        out: list[Finding] = []
        if kind == "bounce":
            b = obj.get("bounce") or {}
            reporting = str(b.get("reportingMTA") or "").split(";")[-1].strip() or None
            for r in b.get("bouncedRecipients") or []:
                dtype, diag = split_diagnostic(r.get("diagnosticCode"))
                action = r.get("action") or (
                    "failed" if b.get("bounceType") == "Permanent" else None)
                out.append(Finding(
                    recipient=normalise_address(r.get("emailAddress")),
                    action=action, status=r.get("status"), diagnostic=diag or b.get(
                        "bounceSubType"), diagnostic_type=dtype, reporting_mta=reporting,
                    date=b.get("timestamp")))
        elif kind == "complaint":
            c = obj.get("complaint") or {}
            for r in c.get("complainedRecipients") or []:
                out.append(Finding(
                    recipient=normalise_address(r.get("emailAddress")), kind="feedback",
                    reason="feedback", diagnostic=c.get("complaintFeedbackType"),
                    date=c.get("timestamp")))
        elif kind == "delivery":
            d = obj.get("delivery") or {}
            mail_obj = obj.get("mail") or {}
            rcpts = d.get("recipients") or mail_obj.get("destination") or []
            _, diag = split_diagnostic(d.get("smtpResponse"))
            for r in rcpts:
                out.append(Finding(
                    recipient=normalise_address(r), action="delivered", status="2.6.0",
                    kind="delivered", diagnostic=diag, remote_mta=d.get("remoteMtaIp"),
                    date=d.get("timestamp")))
        return [f for f in out if f.recipient]
