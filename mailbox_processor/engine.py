"""Parse one returned message into a :class:`~mailbox_processor.models.Report`.

This is the library's front door::

    >>> from mailbox_processor import parse_message
    >>> report = parse_message(open("bounce.eml", "rb").read())
    >>> [(v.recipient, v.classification.value, v.reason) for v in report.verdicts]
    [('user@example.com', 'hard', 'userunknown')]

The message is parsed once with the fast ``compat32`` policy of :mod:`email`; the
parsers in :data:`mailbox_processor.parsers.PARSERS` are tried in order and the first
that recognises the message wins; :func:`mailbox_processor.classify.classify` then
turns each finding into a verdict. Nothing here raises on bad input: problems are
listed in ``Report.problems`` and an unreadable message gets ``Report.error``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from mailbox_processor.classify import classify
from mailbox_processor.mime import Mail
from mailbox_processor.models import Finding, OriginalMessage, Report, Verdict
from mailbox_processor.parsers import PARSERS
from mailbox_processor.parsers.context import QuickPattern, find_returned, lowered_text
from mailbox_processor.text import normalise_address

log = logging.getLogger(__name__)

#: Bytes of one message that are parsed; the rest of a huge message (attachments of
#: the returned mail) cannot change the verdict and is noted as skipped.
MAX_PARSE_BYTES = 8 * 1024 * 1024

#: Findings kept per message (a DSN may list thousands of recipients).
MAX_FINDINGS = 50_000


def parse_message(raw: bytes) -> Report:
    """Return the verdicts for one raw RFC 5322 message (never raises on bad input).

    The result has one :class:`~mailbox_processor.models.Verdict` per recipient (no
    verdicts for a message that is not a bounce), the original message's headers
    when the bounce carries them, and ``problems`` / ``error`` saying what was
    wrong with the input.
    """
    problems: list[str] = []
    if not isinstance(raw, (bytes, bytearray)):
        return Report(verdicts=(), parser=None, error="input is not bytes")
    if not raw or raw.isspace():  # (as ``not raw.strip()``, without copying the bytes)
        return Report(verdicts=(), parser=None, error="empty message")
    if len(raw) > MAX_PARSE_BYTES:
        problems.append(
            f"message is {len(raw):,} bytes: only the first {MAX_PARSE_BYTES:,} were parsed"
        )
        raw = bytes(raw[:MAX_PARSE_BYTES])
    try:
        mail = Mail.from_bytes(bytes(raw))
    except Exception as exc:  # the stdlib parser is lenient; this is a last resort
        return Report(verdicts=(), parser=None, problems=tuple(problems),
                      error=f"cannot parse message: {exc}")
    if not _looks_like_mail(mail):
        return Report(verdicts=(), parser=None, problems=tuple(problems),
                      error="not an RFC 5322 message (no header fields found)")
    parser_name: str | None = None
    findings: list[Finding] = []
    for parser in PARSERS:
        try:
            findings = parser.parse(mail)
        except RecursionError:
            problems.append(f"parser {parser.name}: structure too deeply nested")
            findings = []
        except Exception as exc:  # a bug or odd input in one parser must not lose the mail
            log.debug("parser %s failed", parser.name, exc_info=True)
            problems.append(f"parser {parser.name} failed: {type(exc).__name__}: {exc}")
            findings = []
        if findings:
            parser_name = parser.name
            break
    if len(findings) > MAX_FINDINGS:
        problems.append(f"{len(findings):,} recipients: only the first {MAX_FINDINGS:,} kept")
        findings = findings[:MAX_FINDINGS]
    verdicts: list[Verdict] = [classify(f) for f in findings]
    problems.extend(p for p in mail.problems if p not in problems)
    return Report(
        verdicts=tuple(verdicts),
        parser=parser_name,
        message_id=_msgid(mail.header("Message-ID")),
        from_addr=normalise_address(mail.from_addr) or (mail.from_addr or None),
        subject=mail.subject or None,
        date=mail.header("Date"),
        original=_original(mail),
        problems=tuple(problems),
    )


def _looks_like_mail(mail: Mail) -> bool:
    """At least one real header field: arbitrary bytes parse as an empty-header body."""
    return not _MAIL_FIELDS.isdisjoint(mail.field_names)


_MAIL_FIELDS = frozenset({
    "from", "to", "subject", "date", "received", "message-id", "return-path",
    "content-type", "mime-version", "delivered-to", "x-failed-recipients"})


_ANGLE_MSGID = re.compile(r"<[^<>\s]+>")


def _msgid(value: str | None) -> str | None:
    if not value:
        return None
    m = _ANGLE_MSGID.search(value)
    return m.group(0) if m else value.strip() or None


_INLINE_HEADER = re.compile(r"^(Message-ID|Subject|From|To|Date)[ \t]*:[ \t]*(.*)$", re.I | re.M)
#: :data:`_INLINE_HEADER`, tried at line starts only, lowercased on ASCII text.
_INLINE_HEADER_QUICK = QuickPattern(_INLINE_HEADER)


def _original(mail: Mail) -> OriginalMessage:
    """Headers of the returned message: attached, as text/rfc822-headers, or inlined."""
    get: Callable[[str], str | None]
    if mail.returned is not None:
        get = mail.returned_header
    else:
        # Inlined after a marker ("--- Below this line is a copy of the message.").
        text = mail.notice_text
        m = find_returned(text)
        if not m:
            return OriginalMessage()
        found: dict[str, str] = {}
        # (Searching a slice is searching up to its end: finditer's endpos.)
        end = m.end() + 20000
        window = text if end >= len(text) else text[:end]
        lowered = lowered_text(text) if window is text and text.isascii() else None
        for hm in _INLINE_HEADER_QUICK.finditer(window, lowered, m.end()):
            found.setdefault(hm.group(1).lower(), hm.group(2).strip())

        def get(name: str) -> str | None:
            return found.get(name.lower())

    return OriginalMessage(
        message_id=_msgid(get("Message-ID")),
        subject=get("Subject"),
        from_addr=get("From"),
        to_addr=get("To"),
        date=get("Date"),
    )
