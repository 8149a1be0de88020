"""The RFC 3464 parser on hand-made reports: field quirks and vendor fields."""

from __future__ import annotations

from mailbox_processor import parse_message
from mailbox_processor.models import Classification
from mailbox_processor.parsers.dsn import parse_fields

DSN = """\
From: MAILER-DAEMON@mta.example.org
To: bounces@example.org
Subject: Delivery report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Delivery to the following recipient failed.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mta.example.org

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: {status}
Diagnostic-Code: smtp; {diag}
{extra}
--b1--
"""


def make(rcpt: str, status: str, diag: str, extra: str = "") -> bytes:
    return DSN.format(rcpt=rcpt, status=status, diag=diag, extra=extra).encode()


def test_powermta_bounce_category_decides() -> None:
    """PowerMTA classifies the bounce itself; its category beats ambiguous wording."""
    raw = make("user@example.com", "5.2.1", "550 5.2.1 <user@example.com>... User Unknown",
               "X-PowerMTA-BounceCategory: bad-mailbox\n")
    (verdict,) = parse_message(raw).verdicts
    assert (verdict.classification, verdict.reason, verdict.rule_id) == (
        Classification.HARD, "userunknown", "format-category")


def test_unknown_powermta_category_leaves_it_to_the_rules() -> None:
    raw = make("user@example.com", "5.2.2", "552 5.2.2 Mailbox full",
               "X-PowerMTA-BounceCategory: other\n")
    (verdict,) = parse_message(raw).verdicts
    assert (verdict.reason, verdict.rule_id) == ("mailboxfull", "mailboxfull-status")


def test_fields_without_blank_lines_and_folded_diagnostic() -> None:
    text = ("Reporting-MTA: dns; a.example\nFinal-Recipient: rfc822; a@example.com\n"
            "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1\n user unknown\n"
            "Final-Recipient: rfc822; b@example.com\nAction: delayed\nStatus: 4.4.7\n")
    per_message, blocks = parse_fields(text)
    assert per_message["reporting-mta"] == "dns; a.example"
    assert [b["final-recipient"] for b in blocks] == ["rfc822; a@example.com",
                                                     "rfc822; b@example.com"]
    assert blocks[0]["diagnostic-code"] == "smtp; 550 5.1.1 user unknown"
    assert blocks[1]["action"] == "delayed"
