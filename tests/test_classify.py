"""What :func:`mailbox_processor.classify.classify` does around the rule table.

The table itself (which reply means which reason) is tested in ``test_rules.py``;
here: message kinds that bypass it, delivered and delayed actions, when a reason
is hard, how :func:`complete` fills status, SMTP code and command from the
diagnostic, the fallbacks, and when ``Finding.context`` is read.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbox_processor import classify as classify_module
from mailbox_processor.classify import (
    _CONTINUATION,
    _CONTINUATION_HINT,
    classify,
    complete,
    is_hard,
)
from mailbox_processor.models import HARD_REASONS, Classification, Finding
from mailbox_processor.rules import RULE_LITERALS


def _finding(diagnostic: str | None = None, *, action: str | None = "failed",
             status: str | None = None, code: str | None = None,
             command: str | None = None, kind: str | None = None,
             context: str | None = None) -> Finding:
    return Finding(recipient="user@example.com", action=action, status=status,
                   smtp_code=code, diagnostic=diagnostic, smtp_command=command,
                   kind=kind, context=context)


class _Unreadable(str):
    """A context string that fails the test if the classifier reads it."""

    def lower(self) -> str:
        raise AssertionError("Finding.context was read")

    def __add__(self, other: object) -> str:
        raise AssertionError("Finding.context was read")

    def __radd__(self, other: object) -> str:
        raise AssertionError("Finding.context was read")


# -- kinds that bypass the table -------------------------------------------------------


def test_feedback_kind_is_a_complaint() -> None:
    verdict = classify(_finding("550 5.1.1 User unknown", status="5.1.1", kind="feedback"))
    assert (verdict.classification, verdict.reason, verdict.rule_id) == (
        Classification.COMPLAINT, "feedback", "format-arf")


def test_vacation_kind_is_an_autoreply() -> None:
    verdict = classify(_finding("I am out of the office until Monday.", action=None,
                                kind="vacation"))
    assert (verdict.classification, verdict.reason, verdict.rule_id) == (
        Classification.AUTOREPLY, "vacation", "format-autoreply")


def test_kinds_are_not_completed() -> None:
    """Feedback and auto-replies keep the finding as the parser made it."""
    finding = _finding("550 5.1.1 User unknown", kind="feedback")
    assert classify(finding).finding is finding


# -- delivered -------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "status", "kind", "diagnostic"), [
    pytest.param("delivered", "2.0.0", None, "250 2.0.0 OK", id="action-delivered"),
    pytest.param("relayed", "2.0.0", None,
                 "250 2.0.0 Ok: queued as 4A5B6C7D8E", id="action-relayed"),
    pytest.param("expanded", "2.0.0", None, None, id="action-expanded"),
    pytest.param(None, None, "delivered", None, id="kind-delivered"),
    pytest.param(None, "2.1.5", None, "250 2.1.5 Recipient OK", id="status-2.x"),
    pytest.param(None, None, None, "250 2.0.0 Ok: queued as 4A5B6C7D8E",
                 id="status-2.x-from-diagnostic"),
])
def test_delivered(action: str | None, status: str | None, kind: str | None,
                   diagnostic: str | None) -> None:
    verdict = classify(_finding(diagnostic, action=action, status=status, kind=kind))
    assert (verdict.classification, verdict.reason, verdict.rule_id) == (
        Classification.DELIVERED, "delivered", "action-delivered")


def test_delivered_action_wins_over_failure_words() -> None:
    """A relayed report is a success even when the text mentions a failure."""
    verdict = classify(_finding("relayed to non-DSN-aware mailer; user unknown there",
                                action="relayed", status="2.0.0"))
    assert verdict.classification is Classification.DELIVERED


# -- delayed -----------------------------------------------------------------------------


@pytest.mark.parametrize(("diagnostic", "status", "reason", "rule_id"), [
    pytest.param("452-4.2.2 The recipient's inbox is out of storage space.", "4.2.2",
                 "mailboxfull", "mailboxfull-status", id="mailbox-full"),
    pytest.param("450 4.2.0 <user@example.com>: Recipient address rejected: Greylisted",
                 "4.2.0", "expired", "expired-greylisted", id="greylisted"),
    pytest.param("connect to mx.example.com[192.0.2.25]:25: No route to host", "4.4.1",
                 "networkerror", "networkerror-text", id="no-route"),
    pytest.param("550 5.1.1 <user@example.com>: Recipient address rejected: User unknown",
                 "5.1.1", "userunknown", "userunknown-status", id="even-a-5.1.1"),
    pytest.param(None, None, "expired", "action-delayed", id="no-cause"),
    pytest.param("Delivery has been postponed; the server keeps trying", None,
                 "expired", "action-delayed", id="cause-not-recognised"),
])
def test_delayed_keeps_its_cause(diagnostic: str | None, status: str | None, reason: str,
                                 rule_id: str) -> None:
    """A delay is never a bounce yet: classification DELAYED, reason from the table."""
    verdict = classify(_finding(diagnostic, action="delayed", status=status))
    assert (verdict.classification, verdict.reason, verdict.rule_id) == (
        Classification.DELAYED, reason, rule_id)
    assert not verdict.is_hard


# -- hard or soft ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["userunknown", "hostunknown", "hasmoved"])
@pytest.mark.parametrize(("status", "code"), [("5.1.1", "550"), (None, "550"), (None, None)])
def test_dead_address_reasons_are_hard(reason: str, status: str | None,
                                       code: str | None) -> None:
    assert is_hard(reason, status, code)


@pytest.mark.parametrize(("status", "code", "hard"), [
    pytest.param("5.1.10", None, True, id="status-5xx"),
    pytest.param("5.3.2", "421", True, id="status-5xx-beats-code"),
    pytest.param(None, "554", True, id="code-5xx"),
    pytest.param("4.3.2", None, False, id="status-4xx"),
    pytest.param("4.3.2", "554", False, id="status-4xx-beats-code"),
    pytest.param(None, "421", False, id="code-4xx"),
])
def test_notaccept_is_hard_only_with_5xx(status: str | None, code: str | None,
                                         hard: bool) -> None:
    assert is_hard("notaccept", status, code) is hard
    verdict = classify(_finding("Domain example.com does not accept mail (nullMX)",
                                status=status, code=code, command="RCPT"))
    assert verdict.reason == "notaccept"
    expected = Classification.HARD if hard else Classification.SOFT
    assert verdict.classification is expected


@pytest.mark.parametrize("reason", sorted(
    {"mailboxfull", "filtered", "blocked", "rejected", "expired", "suspend", "onhold",
     "undefined", "authfailure", "badreputation", "requireptr", "spamdetected"}))
def test_other_reasons_are_soft(reason: str) -> None:
    assert reason not in HARD_REASONS
    assert not is_hard(reason, "5.0.0", "550")


# -- complete(): status, code and command from the diagnostic -----------------------------


def test_generic_status_gives_way_to_a_quoted_specific_one() -> None:
    finding = _finding("550 5.1.1 <user@example.com>: Recipient address rejected: User "
                       "unknown in local recipient table", status="5.0.0")
    assert complete(finding).status == "5.1.1"
    verdict = classify(finding)
    assert (verdict.rule_id, verdict.classification) == (
        "userunknown-status", Classification.HARD)
    assert verdict.finding.status == "5.1.1"


@pytest.mark.parametrize(("status", "diagnostic", "kept"), [
    pytest.param("5.0.0", "452 4.2.2 Mailbox full", "5.0.0", id="other-class"),
    pytest.param("5.2.2", "550 5.1.1 Mailbox full", "5.2.2", id="specific-status"),
    pytest.param("4.0.0", "421 4.7.28 rate limited", "4.7.28", id="generic-4.0.0"),
])
def test_status_replacement_rules(status: str, diagnostic: str, kept: str) -> None:
    assert complete(_finding(diagnostic, status=status)).status == kept


def test_missing_status_is_read_from_the_diagnostic() -> None:
    finding = complete(_finding("Sorry, no mailbox here by that name. (#5.1.1)"))
    assert finding.status == "5.1.1"


@pytest.mark.parametrize(("diagnostic", "code"), [
    pytest.param("550 5.1.1 <user@example.com>: User unknown", "550", id="postfix"),
    pytest.param("550-5.1.1 The email account that you tried to reach does not exist.",
                 "550", id="gmail-multiline"),
    pytest.param("SMTP error from remote mail server after RCPT TO:<user@example.com>: "
                 "550 Unknown user", "550", id="exim"),
    pytest.param("Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)", None,
                 id="no-code"),
])
def test_smtp_code_is_read_from_the_diagnostic(diagnostic: str, code: str | None) -> None:
    assert complete(_finding(diagnostic)).smtp_code == code


@pytest.mark.parametrize(("diagnostic", "command"), [
    pytest.param("host mx.example.com[192.0.2.25] said: 550 5.1.1 <user@example.com>: "
                 "Recipient address rejected: User unknown (in reply to RCPT TO command)",
                 "RCPT", id="postfix-rcpt"),
    pytest.param("host mx.example.com[192.0.2.25] said: 554 5.7.1 Message rejected "
                 "(in reply to end of DATA command)", "DATA", id="postfix-end-of-data"),
    pytest.param("host mx.example.com[192.0.2.25] said: 553 5.1.8 Sender address rejected"
                 " (in reply to MAIL FROM command)", "MAIL", id="postfix-mail-from"),
    pytest.param("SMTP error from remote mail server after RCPT TO:<user@example.com>: "
                 "550 Unknown user", "RCPT", id="exim-rcpt"),
    pytest.param("SMTP error from remote mail server after end of data: 552 Message too "
                 "big", "DATA", id="exim-end-of-data"),
    pytest.param(">>> DATA\n<<< 554 5.7.1 Message rejected", "DATA", id="sendmail-data"),
    pytest.param("Remote host said: 550 No such user. Giving up on 192.0.2.25. "
                 "I'm not going to try again; most progress was RCPT TO response",
                 "RCPT", id="qmail-most-progress"),
    pytest.param("550 5.1.1 User unknown", None, id="not-said"),
    pytest.param("host mx.example.com[192.0.2.25] refused to talk to me: 554 5.7.1 "
                 "Service unavailable", "CONN", id="postfix-refused-to-talk"),
])
def test_smtp_command_is_read_from_the_diagnostic(diagnostic: str,
                                                  command: str | None) -> None:
    assert complete(_finding(diagnostic)).smtp_command == command


def test_given_fields_are_kept() -> None:
    finding = _finding("550 5.1.1 User unknown (in reply to end of DATA command)",
                       status="5.1.2", code="553", command="RCPT")
    assert complete(finding) is finding


def test_complete_returns_the_same_finding_when_nothing_is_added() -> None:
    finding = _finding("Delivery failed for unknown reasons")
    assert complete(finding) is finding


def test_completed_fields_drive_the_rules() -> None:
    """'User unknown' with the command read from the text: RCPT hard, DATA filtered."""
    at_rcpt = classify(_finding("550 User unknown (in reply to RCPT TO command)"))
    after_data = classify(_finding("550 User unknown (in reply to end of DATA command)"))
    assert (at_rcpt.rule_id, at_rcpt.classification) == (
        "userunknown-text", Classification.HARD)
    assert (after_data.rule_id, after_data.classification) == (
        "filtered-after-data", Classification.SOFT)


def test_multi_line_reply_reads_as_one_sentence() -> None:
    """Continuation codes ("550-5.7.1 ") inside a reply don't split a phrase."""
    verdict = classify(_finding(
        "550-5.7.1 [192.0.2.1] This message is not RFC\n550-5.7.1 5322 compliant.",
        status="5.7.1"))
    assert verdict.reason == "notcompliantrfc"


# -- fallbacks -----------------------------------------------------------------------------


@pytest.mark.parametrize("diagnostic", [
    "Delivery to the following recipient failed permanently",
    "550 Delivery failed",
])
def test_unrecognised_words_are_onhold(diagnostic: str) -> None:
    verdict = classify(_finding(diagnostic))
    assert (verdict.classification, verdict.reason, verdict.rule_id) == (
        Classification.SOFT, "onhold", "fallback-onhold")


@pytest.mark.parametrize("diagnostic", [None, "", "  \n "])
def test_nothing_to_read_is_undefined(diagnostic: str | None) -> None:
    verdict = classify(_finding(diagnostic))
    assert (verdict.classification, verdict.reason, verdict.rule_id) == (
        Classification.SOFT, "undefined", "fallback-undefined")


def test_status_alone_uses_a_fallback_rule() -> None:
    verdict = classify(_finding(None, status="5.7.1"))
    assert (verdict.reason, verdict.rule_id) == ("securityerror", "securityerror-status")


# -- Finding.context --------------------------------------------------------------------


@pytest.mark.parametrize(("diagnostic", "status", "rule_id"), [
    pytest.param("452 4.3.1 Insufficient system resources", "4.3.1",
                 "systemfull-status", id="status-rule"),
    pytest.param("554 5.7.1 <user@example.com>: Relay access denied", "5.7.1",
                 "norelaying-text", id="text-rule"),
    pytest.param("452 4.2.2 Mailbox full", None, "mailboxfull-status",
                 id="status-from-diagnostic"),
    pytest.param("554 5.0.0 Service unavailable", "5.0.0", "systemerror-text",
                 id="generic-status-with-words"),
])
def test_context_is_not_read_when_the_diagnostic_names_a_cause(
    diagnostic: str, status: str | None, rule_id: str,
) -> None:
    verdict = classify(_finding(diagnostic, status=status,
                                context=_Unreadable("the recipient's mailbox is full")))
    assert verdict.rule_id == rule_id


@pytest.mark.parametrize(("diagnostic", "status", "context", "rule_id"), [
    pytest.param(None, "5.7.1", "Client host [192.0.2.1] blocked using zen.spamhaus.org",
                 "blocked-client", id="status-fallback-then-context"),
    pytest.param("Delivery to the following recipient failed permanently", None,
                 "The recipient's mailbox is full", "mailboxfull-text",
                 id="no-rule-then-context"),
])
def test_context_is_read_when_the_diagnostic_names_no_cause(
    diagnostic: str | None, status: str | None, context: str, rule_id: str,
) -> None:
    verdict = classify(_finding(diagnostic, status=status, context=context))
    assert verdict.rule_id == rule_id


def test_unreadable_context_would_be_noticed() -> None:
    """The sentinel used above does fail when the classifier reads the context."""
    with pytest.raises(AssertionError, match="context was read"):
        classify(_finding(None, status="5.7.1", context=_Unreadable("blocked")))


def test_context_cannot_add_a_fallback() -> None:
    """Context that only meets a fallback rule (a bare 550 plus 'recipient') is ignored."""
    verdict = classify(_finding("550 Delivery failed",
                                context="Recipient: user@example.com"))
    assert verdict.rule_id == "fallback-onhold"


def test_context_is_not_stored() -> None:
    with_context = _finding("550 Delivery failed", context="more words")
    assert with_context == _finding("550 Delivery failed")
    assert "more words" not in repr(with_context)


def test_user_unknown_yields_to_a_disabled_account_in_the_notice() -> None:
    """The only other reading of context: 'user unknown' where the notice says the
    account is disabled (au/ezweb answers so): the address exists, so it is soft."""
    finding = Finding(recipient="user@example.com", action="failed",
                      diagnostic="550 user unknown (in reply to RCPT TO command)",
                      context="The user(s) account is disabled.")
    verdict = classify(finding)
    assert (verdict.reason, verdict.classification) == ("suspend", Classification.SOFT)
    plain = classify(Finding(recipient="user@example.com", action="failed",
                             diagnostic="550 user unknown (in reply to RCPT TO command)"))
    assert (plain.reason, plain.classification) == ("userunknown", Classification.HARD)


@pytest.mark.parametrize(("gateway", "status", "rule_id"), [
    ("active-hunter", None, "gateway-active-hunter"),
    ("amazon-ses-inbound", "5.1.1", "gateway-amazon-ses-inbound"),
])
def test_user_unknown_behind_a_gateway_is_filtered(gateway: str, status: str | None,
                                                   rule_id: str) -> None:
    """A gateway that accepted the recipient cannot prove it gone: soft, not hard."""
    finding = Finding(recipient="user@example.com", action="failed", status=status,
                      diagnostic="550 Recipient address rejected: User unknown",
                      smtp_command="RCPT", gateway=gateway)
    verdict = classify(finding)
    assert (verdict.reason, verdict.classification, verdict.rule_id) == (
        "filtered", Classification.SOFT, rule_id)


def test_explicit_5_1_1_relayed_by_a_plain_gateway_stays_hard() -> None:
    finding = Finding(recipient="user@example.com", action="failed", status="5.1.1",
                      diagnostic="550 5.1.1 User unknown", gateway="active-hunter")
    assert classify(finding).classification is Classification.HARD



def test_a_senders_own_quota_is_not_a_full_mailbox() -> None:
    """Amazon SES 'Throttling failure: Daily message quota exceeded' is about us."""
    verdict = classify(Finding(recipient="user@example.com", action="failed",
                               diagnostic="454 Throttling failure: Daily message quota exceeded."))
    assert verdict.reason in ("toomanyconn", "speeding")  # both "ratelimited" in Sisimai 5.2
    assert verdict.classification is Classification.SOFT


def test_a_server_refusing_our_domain_is_not_a_null_mx() -> None:
    verdict = classify(Finding(recipient="user@example.com", action="failed",
                               diagnostic="550 This server does not accept mail from example.org"))
    assert verdict.classification is Classification.SOFT


# -- the continuation pattern, rewritten for speed, removes what the plain one did ---


@pytest.mark.parametrize("text", [
    "", "550", " 550 x", "a 550 x", "a\n550-5.1.1 b", "a  \t 451 4.1.1 x", "\n\n550 a",
    "a\u00a0550 b", "a 550 5.1.1 b 550-5.1.1 c", "550-5.7.1 a\n550-5.7.1 b\n550 5.7.1 c",
    "a 5501 b", "a 550-b", "a 550 5.1.1", "x 250 2.0.0 ok 550 5.1.1 no", "a 550  b",
    "a\r\n421-4.7.0 b\r\n421 4.7.0 c", "a 550 5.1.1b", "a  550 550 5.1.1 b",
])
def test_continuation_pattern_matches_the_plain_one(text: str) -> None:
    plain = re.compile(r"(?<=\S)\s+[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3} )?(?=\S)")
    assert _CONTINUATION.sub(" ", text) == plain.sub(" ", text)
    # The hint that decides whether to substitute at all is found wherever it matches.
    assert _CONTINUATION_HINT.search(text) or not _CONTINUATION.search(text)


@given(st.text(alphabet="0245 -.\n\txa\u00a0", max_size=30))
def test_continuation_is_only_found_with_its_hint(text: str) -> None:
    assert _CONTINUATION_HINT.search(text) or not _CONTINUATION.search(text)


# -- the context read after the diagnostic: only the new part is scanned ------------------

#: Text and context pairs that put literals of the rule table across the gap.
_LITERALS = sorted(RULE_LITERALS.literals - {""})
_SIDE = st.text(alphabet="abcdeilmnorstu .5", max_size=12)


@given(st.lists(st.sampled_from(_LITERALS), max_size=3), _SIDE, _SIDE,
       st.integers(0, 40), st.integers(0, 40))
def test_literals_of_the_wider_text_from_its_tail(words: list[str], before: str, after: str,
                                                 cut: int, gap: int) -> None:
    whole = before + " ".join(words) + after
    cut = min(cut, len(whole))
    text, context = whole[:cut], whole[cut + 1:]  # the joining space replaces one character
    wide = f"{text} {context}"
    tail = wide[max(0, len(text) + 1 - RULE_LITERALS.longest):]
    assert RULE_LITERALS(text) | RULE_LITERALS(tail) == RULE_LITERALS(wide)


@pytest.mark.parametrize(("text", "context"), [
    ("delivery failed", "the mailbox is full"), ("550 sorry", "user unknown here"),
    ("no such", " user"), ("mailbox", "full"), ("", "quota exceeded"), ("x", ""),
    ("sorry, no mailbox", "here by that name"), ("user un", "known"), ("over qu", "ota"),
])
@pytest.mark.parametrize(("status", "code", "command"), [
    ("", "", ""), ("5.0.0", "550", ""), ("5.1.1", "550", "RCPT"), ("5.2.2", "552", ""),
    ("4.0.0", "", ""), ("5.0.0", "554", "DATA"),
])
@pytest.mark.pure_python
def test_wider_reading_is_the_plain_one(monkeypatch: pytest.MonkeyPatch, text: str,
                                        context: str, status: str, code: str,
                                        command: str) -> None:
    """The verdict is the same when the rule table scans each text whole."""
    finding = _finding(text, status=status or None, code=code or None,
                       command=command or None, context=context)
    fast = classify(finding)
    plain_match = classify_module._match
    monkeypatch.setattr(classify_module, "_match", lambda plan, text, present: plain_match(
        plan, text, RULE_LITERALS(text) if plan.reads_text else frozenset()))
    assert classify(finding) == fast
