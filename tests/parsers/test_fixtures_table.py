"""The sample bounce mailbox (fixtures/maildir) as a table of expectations.

One row per message: what a person reading the bounce would write down for every
recipient line, (recipient, classification, reason, status, smtp_code), plus the
returned original's Message-ID and Subject where the bounce carries them.
``fixtures/README.md`` says the same in prose; keep the two in step.

``ANY`` marks a field the message only states in prose (no DSN field, no SMTP reply
line), where reading it out or leaving it empty are both right.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from mailbox_processor.engine import parse_message
from mailbox_processor.models import Classification, Report

MAILDIR = Path(__file__).resolve().parents[2] / "fixtures" / "maildir"
ANY = "*"

Row = tuple[str, str, str | None, str | None, str | None]


class Case(NamedTuple):
    label: str
    path: str
    expected: list[Row]
    original: tuple[str, str] | None  # (Message-ID, Subject) of the returned message


CASES = [
    Case(
        "postfix-userunknown",
        "cur/1700000101.M101P4101.mx.example.org:2,S",
        [("alice.nobody@example.com", "hard", "userunknown", "5.1.1", "550")],
        ("<20231114221458.1A2B3C@news.example.org>",
         "November newsletter: what's new this month"),
    ),
    Case(
        "postfix-mailboxfull",
        "cur/1700000202.M202P4102.mx.example.org:2,S",
        [("bob.full@example.net", "soft", "mailboxfull", "5.2.2", "552")],
        ("<20231114221640.5D6E7F@news.example.org>", "Résumé of your November order"),
    ),
    Case(
        "postfix-mailboxfull-expired",
        "cur/1700432103.M303P4103.mx.example.org:2,S",
        [("carol@example.net", "soft", "mailboxfull", "4.2.2", "452")],
        ("<20231114221459.9F8E7D@news.example.org>", "Your invoice INV-2023-1187"),
    ),
    Case(
        "exim-userunknown",
        "cur/1700000404.M404P4104.mx.example.org:2,S",
        [("dave@example.com", "hard", "userunknown", "5.1.1", "550")],
        ("<20231114221800.2B3C4D@news.example.org>", "Your order has shipped"),
    ),
    Case(
        "exim-hostunknown",
        "cur/1700000505.M505P4105.mx.example.org:2,S",
        [("erin@nonexistent-domain.example.net", "hard", "hostunknown", None, None)],
        ("<20231114222001.6F7A8B@news.example.org>", "Meeting notes 14/11"),
    ),
    Case(
        "sendmail-hasmoved",
        "cur/1700000606.M606P4106.mx.example.org:2,S",
        [("frank@example.com", "hard", "hasmoved", "5.1.6", "551")],
        ("<20231114222315.0C1D2E@news.example.org>", "Your account statement"),
    ),
    Case(
        "qmail-userunknown",
        "cur/1700000707.M707P4107.mx.example.org:2,S",
        [("grace@example.com", "hard", "userunknown", "5.1.1", None)],
        ("<20231114222512.5A6B7C@news.example.org>", "Re: your support ticket #5521"),
    ),
    Case(
        "office365-userunknown",
        "cur/1700000808.M808P4108.mx.example.org:2,S",
        [("heidi.old@example.com", "hard", "userunknown", "5.1.10", "550")],
        ("<20231114222705.8C9D0E@news.example.org>", "Invitation: product webinar"),
    ),
    Case(
        "gmail-userunknown",
        "cur/1700000909.M909P4109.mx.example.org:2,S",
        [("ivy.gone@example.com", "hard", "userunknown", "5.1.1", "550")],
        ("<20231114222911.1F2A3B@news.example.org>", "Your free trial ends tomorrow"),
    ),
    Case(
        "yahoo-suspend",
        "new/1700001010.M1010P4110.mx.example.org",
        [("judith@example.net", "soft", "suspend", None, "554")],
        ("<20231114223005.2C3D4E@news.example.org>", "We miss you"),
    ),
    Case(
        "postfix-spamhaus-blocked",
        "cur/1700001111.M1111P4111.mx.example.org:2,S",
        [("ivan@example.net", "soft", "blocked", "5.7.1", "550")],
        ("<20231114223149.3C4D5E@news.example.org>", "Black Friday starts now"),
    ),
    Case(
        "postfix-greylisted-expired",
        "cur/1700433412.M1212P4112.mx.example.org:2,S",
        [("judy@example.org", "soft", "expired", "4.7.1", "450")],
        ("<20231114223650.7A8B9C@news.example.org>", "Password reset requested"),
    ),
    Case(
        "postfix-ratelimited",
        "cur/1700434213.M1313P4113.mx.example.org:2,S",
        [("kim.lee@example.com", "soft", "speeding", "4.7.28", "421")],
        ("<20231114225011.0D1E2F@news.example.org>", "Weekly digest #46"),
    ),
    Case(
        "postfix-hostunknown",
        "cur/1700001414.M1414P4114.mx.example.org:2,S",
        [("mallory@no-such-host.example.com", "hard", "hostunknown", "5.4.4", None)],
        ("<20231114223653.4E5F6A@news.example.org>", "Welcome to Example News"),
    ),
    Case(
        "exchange-delayed",
        "cur/1700015115.M1515P4115.mx.example.org:2,S",
        [("niaj@example.com", "delayed", "expired", "4.4.7", ANY)],
        ("<20231114223801.5B6C7D@news.example.org>", "Quarterly report Q3"),
    ),
    Case(
        "postfix-delivered",
        "cur/1700001616.M1616P4116.mx.example.org:2,S",
        [("olivia@example.com", "delivered", "delivered", "2.0.0", "250")],
        ("<20231114224014.8B9C0D@news.example.org>", "Contract for signature"),
    ),
    Case(
        "vacation-autoreply",
        "new/1700001717.M1717P4117.mx.example.org",
        [("peggy@example.com", "autoreply", "vacation", None, None)],
        None,
    ),
    Case(
        "arf-abuse",
        "cur/1700021818.M1818P4118.mx.example.org:2,S",
        [("rupert@example.com", "complaint", "feedback", None, None)],
        ("<20231114224455.7D8E9F@news.example.org>", "Flash sale: 24 hours only"),
    ),
    Case(
        "human-reply",
        "new/1700001919.M1919P4119.mx.example.org",
        [],
        None,
    ),
    Case(
        "sendmail-three-recipients",
        "cur/1700002020.M2020P4120.mx.example.org:2,S",
        [
            ("victor@example.com", "hard", "userunknown", "5.1.1", "550"),
            ("walter@example.net", "soft", "mailboxfull", "5.2.2", "552"),
            ("xavier@example.org", "delivered", "delivered", "2.1.5", None),
        ],
        ("<20231114225001.8E9F0A@news.example.org>", "Team offsite agenda"),
    ),
]


def _parse(case: Case) -> Report:
    return parse_message((MAILDIR / case.path).read_bytes())


def _actual_rows(report: Report, expected: list[Row]) -> list[Row]:
    """The report's rows, with a field shown as ANY wherever the expectation says ANY."""
    wild = {row[0]: row for row in expected}
    rows = []
    for v in report.verdicts:
        cls = v.classification.value if isinstance(v.classification, Classification) else str(
            v.classification
        )
        row: list[str | None] = [
            v.finding.recipient, cls, v.reason, v.finding.status, v.finding.smtp_code
        ]
        exp = wild.get(v.finding.recipient or "")
        if exp is not None:
            row = [ANY if e == ANY else a for a, e in zip(row, exp, strict=True)]
        rows.append((row[0] or "", row[1] or "", row[2], row[3], row[4]))
    return rows


def _key(row: Row) -> tuple[str, ...]:
    return tuple("" if x is None else str(x) for x in row)


def test_every_maildir_message_has_a_row() -> None:
    on_disk = {
        str(p.relative_to(MAILDIR))
        for sub in ("cur", "new")
        for p in (MAILDIR / sub).iterdir()
        if not p.name.startswith(".")
    }
    in_table = {c.path for c in CASES}
    assert on_disk == in_table
    assert len({c.label for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_verdicts(case: Case) -> None:
    report = _parse(case)
    assert isinstance(report, Report)
    assert report.error is None, report.error
    actual = sorted(_actual_rows(report, case.expected), key=_key)
    assert actual == sorted(case.expected, key=_key)


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_bounce_flag(case: Case) -> None:
    """Report.is_bounce is true exactly when some recipient is hard or soft."""
    report = _parse(case)
    assert report.is_bounce == any(row[1] in ("hard", "soft") for row in case.expected)


WITH_ORIGINAL = [c for c in CASES if c.original is not None]


def _bare_msgid(value: str | None) -> str | None:
    return None if value is None else value.strip().strip("<>").strip()


@pytest.mark.parametrize("case", WITH_ORIGINAL, ids=[c.label for c in WITH_ORIGINAL])
def test_original_message(case: Case) -> None:
    assert case.original is not None
    msgid, subject = case.original
    report = _parse(case)
    assert (_bare_msgid(report.original.message_id), report.original.subject) == (
        _bare_msgid(msgid),
        subject,
    )


def _summary(report: Report) -> list[tuple[str | None, ...]]:
    return sorted(
        (
            (v.finding.recipient, v.classification.value, v.reason, v.finding.status,
             v.finding.smtp_code)
            for v in report.verdicts
        ),
        key=lambda row: tuple("" if x is None else str(x) for x in row),
    )


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_line_endings_do_not_matter(case: Case) -> None:
    """The same message with CRLF (or LF) line endings gives the same verdicts."""
    raw = (MAILDIR / case.path).read_bytes()
    lf = raw.replace(b"\r\n", b"\n")
    crlf = lf.replace(b"\n", b"\r\n")
    assert _summary(parse_message(crlf)) == _summary(parse_message(lf))


#: (label, recipient) -> words of the remote server the diagnostic must carry
DIAGNOSTIC_WORDS = {
    ("postfix-userunknown", "alice.nobody@example.com"): "User unknown in virtual mailbox table",
    ("postfix-mailboxfull", "bob.full@example.net"): "Mailbox full: user is over quota",
    ("postfix-mailboxfull-expired", "carol@example.net"): "Mailbox full, try again later",
    ("exim-userunknown", "dave@example.com"): "User unknown in local recipient table",
    ("exim-hostunknown", "erin@nonexistent-domain.example.net"): "Unrouteable address",
    ("sendmail-hasmoved", "frank@example.com"): "User has moved",
    ("qmail-userunknown", "grace@example.com"): "no mailbox here by that name",
    ("office365-userunknown", "heidi.old@example.com"): "RESOLVER.ADR.RecipientNotFound",
    ("gmail-userunknown", "ivy.gone@example.com"): "tried to reach does not exist",
    ("yahoo-suspend", "judith@example.net"): "This mailbox is disabled",
    ("postfix-spamhaus-blocked", "ivan@example.net"): "blocked using Spamhaus",
    ("postfix-greylisted-expired", "judy@example.org"): "Greylisted",
    ("postfix-ratelimited", "kim.lee@example.com"): "rate limited",
    ("postfix-hostunknown", "mallory@no-such-host.example.com"): "Host or domain name not found",
    ("sendmail-three-recipients", "victor@example.com"): "User unknown",
    ("sendmail-three-recipients", "walter@example.net"): "Mailbox full",
}

#: the bounce's own boilerplate, which is not what the remote server said
BOILERPLATE = (
    "This message was created automatically",
    "A message that you sent could not be delivered",
    "This is the qmail-send program",
    "I'm afraid I wasn't able",
    "Below this line is a copy",
    "This is a copy of the message",
    "I'm sorry to have to inform you",
)

DIAGNOSTIC_CASES = [(c, r, w) for c in CASES for (lb, r), w in DIAGNOSTIC_WORDS.items()
                    if lb == c.label]


@pytest.mark.parametrize(
    ("case", "recipient", "words"), DIAGNOSTIC_CASES,
    ids=[f"{c.label}-{r.split('@')[0]}" for c, r, _ in DIAGNOSTIC_CASES],
)
def test_diagnostic_is_the_servers_words(case: Case, recipient: str, words: str) -> None:
    report = _parse(case)
    diagnostics = [v.finding.diagnostic or "" for v in report.verdicts
                   if v.finding.recipient == recipient]
    assert len(diagnostics) == 1
    flat = " ".join(diagnostics[0].split())
    assert words in flat
    assert [b for b in BOILERPLATE if b in flat] == []
