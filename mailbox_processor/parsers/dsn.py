"""RFC 3464 delivery status notifications (and RFC 6533 global-delivery-status).

The machine-readable part holds one block of per-message fields (Reporting-MTA,
Arrival-Date) and one block per recipient (Final-Recipient, Action, Status,
Remote-MTA, Diagnostic-Code; RFC 3464 section 2.3). Real MTAs bend the format:
blank lines go missing, fields are folded oddly, the part is labelled text/plain,
the Diagnostic-Code is cut short while the notice text has the full reply. This
parser reads fields line by line, starts a new recipient at each
Final-Recipient/Original-Recipient pair, and fills gaps from the notice text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email._policybase import compat32
from email.message import Message
from typing import ClassVar

from mailbox_processor.mime import Mail, part_text
from mailbox_processor.models import Finding, defer_context
from mailbox_processor.parsers.context import (
    QuickPattern,
    cut_returned,
    diagnostic_near,
    error_paragraphs,
    find_gateway,
    lowered_text,
    split_diagnostic,
)
from mailbox_processor.text import find_command, normalise_address

_DS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40})[ \t]*:[ \t]*(.*)$")
#: Field lines found fast (see :class:`QuickPattern`).
_FIELDS_IN_TEXT = QuickPattern(re.compile(r"^(?:Final|Original)-Recipient[ \t]*:", re.M | re.I))
_FINAL_RECIPIENT = QuickPattern(re.compile(r"^final-recipient[ \t]*:", re.M | re.I))
_STATUS_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")

_PER_MESSAGE = {"reporting-mta", "arrival-date", "received-from-mta", "original-envelope-id",
                "x-postfix-queue-id", "x-postfix-sender", "dsn-gateway"}


def parse_fields(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Split delivery-status text into per-message fields and per-recipient field dicts.

    Field names are lowercased; folded lines are joined with one space. A recipient
    block starts at ``Final-Recipient`` (or at ``Original-Recipient`` when the previous
    block already has one): robust against missing blank lines.
    """
    per_message, blocks = _parse_blocks(text)
    return per_message, [fields for fields, _rcpt in blocks]


def _parse_blocks(text: str) -> tuple[dict[str, str], list[tuple[dict[str, str], str]]]:
    """:func:`parse_fields`, each recipient block with its address (read once)."""
    per_message, blocks, _finals = _read_blocks(_text_lines(text))
    return per_message, blocks


#: Kinds of line that are not a field, in place of a field name in a line entry
#: (neither is one: a field name has no blank).
_BLANK = " "
_CONTINUED = "\t"
_NOT_A_FIELD = ""
#: One line of delivery-status text, read: (lowercased field name, stripped value),
#: or (_CONTINUED, the stripped line), (_BLANK, "") or (_NOT_A_FIELD, "").
_Line = tuple[str, str]


def _text_lines(text: str) -> list[_Line]:
    """The lines of delivery-status text, read (see :data:`_Line`)."""
    out: list[_Line] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            out.append((_BLANK, ""))
        elif line[0] in " \t":
            out.append((_CONTINUED, line.strip()))
        else:
            m = _FIELD.match(line)
            out.append((m.group(1).lower(), m.group(2).strip()) if m else (_NOT_A_FIELD, ""))
    return out


def _read_blocks(
    lines: list[_Line],
) -> tuple[dict[str, str], list[tuple[dict[str, str], str]], int]:
    """The per-message fields, the recipient blocks (with their address) and the
    number of Final-Recipient lines of the lines of a delivery-status part."""
    finals = 0
    per_message: dict[str, str] = {}
    recipients: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    target: dict[str, str] = per_message
    last_key: str | None = None
    for key, value in lines:
        if key == _BLANK:
            current, target, last_key = None, per_message, None
            continue
        if key == _CONTINUED:
            if last_key is not None and last_key in target:
                target[last_key] = (target[last_key] + " " + value).strip()
            continue
        if key == _NOT_A_FIELD:
            last_key = None
            continue
        if key == "final-recipient":
            finals += 1
            new = current is None or "final-recipient" in current or "action" in current \
                or "status" in current
        elif key == "original-recipient":
            new = current is None or "original-recipient" in current or "action" in current \
                or "status" in current
        else:
            new = False
        if new:
            current = {}
            recipients.append(current)
            target = current
        if key in target:
            if key == "diagnostic-code":
                target[key] += " " + value
            last_key = key
            continue
        target[key] = value
        last_key = key
    # Per-recipient fields written in the per-message block (one-recipient DSNs with
    # the blank line in the wrong place) apply to recipients that lack them.
    for key in ("action", "status", "diagnostic-code", "remote-mta", "last-attempt-date"):
        if key in per_message:
            for r in recipients:
                r.setdefault(key, per_message[key])
    blocks = []
    for fields in recipients:
        rcpt = _recipient_of(fields)
        if rcpt:
            blocks.append((fields, rcpt))
    return per_message, blocks, finals


def _recipient_of(fields: dict[str, str]) -> str | None:
    first = None
    for key in ("final-recipient", "original-recipient", "x-actual-recipient"):
        value = fields.get(key)
        if value:
            addr = normalise_address(value)
            if not addr:
                continue
            if first is not None:
                return addr
            # A final recipient on an internal host ("user@server", no dot in the
            # domain) is the gateway's rewrite; the original recipient (the next
            # address found) is the address that was mailed.
            if "." in addr.rsplit("@", 1)[1]:
                return addr
            first = addr
    return first


def _ds_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        # compat32 parses message/delivery-status into one Message per block.
        blocks = []
        for block in payload:
            if isinstance(block, Message):
                # (A value is a str, or a Header when it has raw 8-bit bytes.)
                fields: Sequence[tuple[str, object]] = block.items()
                lines = [f"{k}: {v}" for k, v in fields]
                body = block.get_payload()
                if isinstance(body, str) and body.strip():
                    lines.append(body)
                blocks.append("\n".join(lines))
        return "\n\n".join(blocks)
    return part_text(part)


#: A field name as :data:`_FIELD` reads it.
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,40}")
#: The fields of RFC 3464 and the common vendor ones as MTAs spell them: names known
#: to be :data:`_FIELD_NAME` s without asking the regex.
_COMMON_FIELD_NAMES = frozenset({
    "Action", "Status", "Reporting-MTA", "Final-Recipient", "Diagnostic-Code",
    "Arrival-Date", "Remote-MTA", "Original-Recipient", "X-Postfix-Queue-ID",
    "X-Postfix-Sender", "Received-From-MTA", "Last-Attempt-Date", "X-Actual-Recipient",
    "Original-Envelope-Id", "Will-Retry-Until", "Final-Log-ID", "DSN-Gateway",
})
assert all(_FIELD_NAME.fullmatch(name) for name in _COMMON_FIELD_NAMES)


def _ds_lines(part: Message) -> list[_Line] | None:
    """``_text_lines(_ds_text(part))``, read from compat32's blocks without the text.

    A block renders as lines ``f"{name}: {value}"`` (compat32 returns an ASCII value
    unchanged: only one with surrogates becomes a Header) and there is a blank line
    between blocks. For a name that is a :data:`_FIELD_NAME` and a value of one line,
    :data:`_FIELD` reads that line as (name, value stripped); any other field (a folded
    value, an odd name) is read as its rendered lines. The text's line breaks are only
    these, its "\\r\\n" pairs all inside a value (compat32 strips a value's last line
    break), so reading field by field splits the same lines. A blank line before each
    block rather than between them reads the same (it only starts over). None when a
    block has a body or a value that is not ASCII, or a lone "\\r" (the text's count
    of Final-Recipient lines would see no line start after it): the text is then
    rendered and read as ever.
    """
    payload = part.get_payload()
    if not isinstance(payload, list):
        return None
    out: list[_Line] = []
    for block in payload:
        if not isinstance(block, Message):
            continue
        # (get_payload() would look up Content-Transfer-Encoding first. A string body
        # that is blank has no surrogates, so it is what get_payload() returns; any
        # other non-string it returns as is.)
        body = block._payload  # type: ignore[union-attr]  # noqa: SLF001
        if block.policy is not compat32 or (isinstance(body, str) and body.strip()):
            return None
        out.append((_BLANK, ""))
        # (raw_items() would copy the list.)
        for name, value in block._headers:  # type: ignore[union-attr]  # noqa: SLF001
            if not (isinstance(value, str) and value.isascii()):
                return None
            if "\n" not in value and "\r" not in value \
                    and (name in _COMMON_FIELD_NAMES or _FIELD_NAME.fullmatch(name)):
                out.append((name.lower(), value.strip()))
            elif value.endswith("\r") or "\r" in value.replace("\r\n", ""):
                return None
            else:
                out.extend(_text_lines(f"{name}: {value}"))
    return out


def _ds_source(part: Message) -> str | list[_Line]:
    """A delivery-status part's lines, read (:func:`_ds_lines`), or else its text."""
    lines = _ds_lines(part)
    return lines if lines is not None else _ds_text(part)


_DAEMON_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery", re.I)


def _is_wrapped_bounce(mail: Mail) -> bool:
    """The outer message is itself a bounce notice (from a mailer daemon)."""
    # (The byte test first: most messages fail it, and From need not be decoded.)
    return b"delivery-status" in mail.raw and bool(_DAEMON_FROM.search(mail.from_addr))


#: PowerMTA's own bounce categories (``X-PowerMTA-BounceCategory``, documented in
#: the PowerMTA user's guide) -> our reason words. "other" and unknown ones map to
#: nothing: the rule table decides.
POWERMTA_CATEGORIES = {
    "bad-mailbox": "userunknown",
    "bad-domain": "hostunknown",
    "inactive-mailbox": "suspend",
    "quota-issues": "mailboxfull",
    "message-expired": "expired",
    "no-answer-from-host": "expired",
    "bad-connection": "networkerror",
    "routing-errors": "systemerror",
    "bad-configuration": "systemerror",
    "protocol-errors": "systemerror",
    "spam-related": "spamdetected",
    "virus-related": "virusdetected",
    "content-related": "contenterror",
    "policy-related": "policyviolation",
    "invalid-sender": "rejected",
    "relaying-issues": "norelaying",
}


def _norm_action(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().lower().split()[0].strip(".;,") if value.strip() else ""
    if v.startswith("fail") or v in ("permanent", "error", "undeliverable"):
        return "failed"
    if v.startswith("delay") or v in ("transient", "deferred"):
        return "delayed"
    if v.startswith("deliver") or v == "success":
        return "delivered"
    if v.startswith("relay"):
        return "relayed"
    if v.startswith("expand"):
        return "expanded"
    return v or None


def _has_recipient_fields(text: str) -> bool:
    """``text`` has a Final-Recipient or Original-Recipient field line."""
    # (Lowercased through the helpers' cache: the legacy parser, next in line,
    # lowercases the same notice to look for the returned message.)
    return _FIELDS_IN_TEXT.found_in(text, lowered_text(text) if text.isascii() else None)


def _count_final_recipients(text: str) -> int:
    """How many Final-Recipient field lines ``text`` has."""
    return sum(1 for _m in _FINAL_RECIPIENT.finditer(text))


class DSN:
    """RFC 3464 / RFC 6533 delivery status notifications, however they are labelled."""

    name: ClassVar[str] = "dsn"
    _notice: str = ""
    _notice_command: str | None = None
    _notice_command_read: bool = False
    _use_notice: bool = True
    _whole_notice_context: bool = False
    _gateway: str | None = None

    def __init__(self) -> None:
        # (Not a class default: a native class compiled by mypyc takes only constants.)
        self._others: frozenset[str] = frozenset()

    def parse(self, mail: Mail) -> list[Finding]:
        """See :class:`mailbox_processor.parsers.Parser`."""
        texts = [_ds_source(p) for p in mail.find_parts(*_DS_TYPES)]
        if not texts and _is_wrapped_bounce(mail):
            # A gateway returned the DSN it got, attached whole (message/rfc822).
            texts = [_ds_source(p) for p in mail.find_parts(*_DS_TYPES, max_depth=1)]
        if not texts:
            # Some MTAs send the fields as text/plain (or inside the notice itself).
            if "report" not in mail.content_type and not _has_recipient_fields(
                mail.notice_text[:200_000]
            ):
                return []
            for part, depth in mail.parts:
                if depth == 0 and (mail.ctype(part) in ("text/plain", "text/delivery-status")
                                   or mail.ctype(part).startswith("multipart/")) \
                        and not part.is_multipart():
                    t = part_text(part)
                    if _has_recipient_fields(t):
                        texts.append(t)
            if not texts:
                return []
        findings: list[Finding] = []
        seen: set[str] = set()
        notice = mail.notice_text
        # The notice's own SMTP command is the last resort of every recipient: most
        # diagnostics name theirs, so it is read only when one does not.
        self._notice, self._notice_command_read = notice, False
        for text in texts:
            if isinstance(text, str):
                per_message, blocks = _parse_blocks(text)
                declared = _count_final_recipients(text)
            else:
                # (In the rendered text the lines read as Final-Recipient are all the
                # Final-Recipient ones.)
                per_message, blocks, declared = _read_blocks(text)
            if not blocks:
                mail._problem("delivery-status part without a readable recipient block")
            elif declared > len(blocks):
                mail._problem(f"delivery-status: {declared - len(blocks)} recipient block(s) "
                              "without a valid address were skipped")
            # Thousands of recipients: read the DSN fields only (bounded work).
            self._use_notice = len(blocks) <= 200
            self._others = frozenset(rcpt for _fields, rcpt in blocks)
            # One recipient: the whole notice speaks about it ("The user(s) account is
            # disabled."), so its error paragraphs are context for the classifier.
            self._whole_notice_context = len(blocks) == 1
            reporting = _mta(per_message.get("reporting-mta"))
            self._gateway = find_gateway(mail, reporting)
            for fields, rcpt in blocks:
                if rcpt in seen:
                    continue
                seen.add(rcpt)
                findings.append(self._finding(rcpt, fields, reporting, notice))
        self._notice = ""
        return findings

    def _command_in_notice(self) -> str | None:
        """:func:`find_command` over the whole notice, read once per message."""
        if not self._notice_command_read:
            self._notice_command = find_command(self._notice,
                                                lowered=lowered_text(self._notice))
            self._notice_command_read = True
        return self._notice_command

    def _finding(
        self, rcpt: str, fields: dict[str, str], reporting: str | None, notice: str
    ) -> Finding:
        dtype, diag = split_diagnostic(fields.get("diagnostic-code"))
        status_field = (fields.get("status") or "").strip()
        status = status_field.split()[0].rstrip(".;,") if status_field else None
        if status and not _STATUS_CODE.fullmatch(status):
            status = None
        others = self._others - {rcpt}
        # The text around the address in the notice is read where the diagnostic is
        # short or names no command; else only if the classifier asks for the context.
        near: str | None = None
        near_read = not self._use_notice
        if not near_read and len(diag or "") < 20:
            near, near_read = diagnostic_near(notice, rcpt, others=others), True
            # A short or missing Diagnostic-Code: the notice often has the full reply.
            if near and (not diag or diag.lower() in near.lower()):
                diag = near
        # (When diag is near, a second look at near would find nothing either.)
        # (An empty text names no command: it is not searched.)
        command = find_command(diag) if diag else None
        if not command:
            if not near_read:
                near, near_read = diagnostic_near(notice, rcpt, others=others), True
            command = (find_command(near) if near and near is not diag else None) \
                or self._command_in_notice()
        finding = Finding(
            recipient=rcpt,
            action=_norm_action(fields.get("action")),
            status=status,
            diagnostic=diag or None,
            diagnostic_type=dtype,
            smtp_command=command,
            gateway=self._gateway,
            reason=POWERMTA_CATEGORIES.get(
                (fields.get("x-powermta-bouncecategory") or "").strip().lower()),
            remote_mta=_mta(fields.get("remote-mta")),
            reporting_mta=reporting,
            date=fields.get("last-attempt-date") or fields.get("arrival-date"),
        )
        return defer_context(finding, _context, notice, rcpt, others, near, near_read, diag,
                             self._whole_notice_context)


def _context(notice: str, rcpt: str, others: frozenset[str], near: str | None,
             near_read: bool, diag: str | None, whole_notice: bool) -> str | None:
    """A DSN finding's context (see :func:`defer_context`): the text around the
    address in the notice, unless it is the diagnostic, and the notice's error
    paragraphs when the notice speaks about this one recipient."""
    if not near_read:
        near = diagnostic_near(notice, rcpt, others=others)
    notice_context = error_paragraphs(cut_returned(notice), exclude=[]) if whole_notice \
        else None
    return " ".join(c for c in (near if near != diag else None, notice_context) if c) or None


def _mta(value: str | None) -> str | None:
    if not value:
        return None
    v = value.split(";", 1)[1] if ";" in value else value
    v = v.strip().strip("[]").strip()
    return v.split()[0] if v else None
