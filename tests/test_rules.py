"""The rule table (``mailbox_processor.rules``) as data that tests can check.

STYLE.md convention 5: "Tests check that ids are unique, that every rule has at
least one fixture, and that no fixture matches rules of different kinds." Here a
fixture is one realistic server reply in :data:`EXAMPLES`, written in the words
of the MTA or provider its id names (anonymised to example.com/.org/.net and
192.0.2.0/24). Each row reads (rule_id, diagnostic, status, smtp_code,
smtp_command); ``None`` means the bounce does not say and :func:`classify` is left
to read it from the diagnostic.

Rows that we believe right but that the current table classifies differently are
marked ``xfail(strict=True)`` in :data:`MISCLASSIFIED`, with the rule they hit, so
that the lead can decide; they are not weakened to fit.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbox_processor.classify import (
    classify,
    complete,
    is_hard,
    match_rule,
    match_rule_reference,
)
from mailbox_processor.engine import parse_message
from mailbox_processor.models import (
    HARD_REASONS,
    REASONS,
    SENDER_SIDE_REASONS,
    Classification,
    Finding,
)
from mailbox_processor.rules import RULE_LITERALS, RULES, LiteralScan, Probe, Rule, _alternatives

Example = tuple[str, str, str | None, str | None, str | None]

RULES_BY_ID = {rule.id: rule for rule in RULES}

#: Reasons that are never about the recipient's address: they must never be hard.
NEVER_HARD = SENDER_SIDE_REASONS | {"rejected"}

#: Realistic replies, one or more per rule id: {example id: (rule_id, diagnostic,
#: status, smtp_code, smtp_command)}.
EXAMPLES: dict[str, Example] = {
    # -- mailboxfull ---------------------------------------------------------------
    "gmail-452-4.2.2-out-of-storage": (
        "mailboxfull-status",
        "452-4.2.2 The recipient's inbox is out of storage space. Please direct the"
        " recipient to 452 4.2.2 https://support.google.com/mail/?p=OverQuotaTemp",
        "4.2.2", "452", "RCPT"),
    "exchange-552-5.2.2-mailbox-full": (
        "mailboxfull-status",
        "552 5.2.2 STOREDRV.Deliver; mailbox full",
        "5.2.2", "552", None),
    "qmail-over-quota": (
        "mailboxfull-text",
        "Sorry, the user is over quota and can't receive any mail right now.",
        None, None, None),
    "exim-appendfile-quota": (
        "mailboxfull-text",
        "mailbox is full (MTA-imposed quota exceeded while writing to file"
        " /var/mail/user)",
        None, None, None),
    "orange-boite-pleine-5.1.1": (
        "mailboxfull-text",
        "552 5.1.1 <user@example.com>: boite du destinataire pleine. recipient overquota",
        "5.1.1", "552", "RCPT"),
    # -- size limits -----------------------------------------------------------------
    "gmail-552-5.2.3-size": (
        "exceedlimit-status",
        "552-5.2.3 Your message exceeded Google's message size limits. Please visit"
        " 552 5.2.3 https://support.google.com/mail/?p=MaxSizeError",
        "5.2.3", "552", "DATA"),
    "sendmail-552-5.2.3-fixed-maximum": (
        "exceedlimit-status",
        "552 5.2.3 Message size exceeds fixed maximum message size (10485760)",
        "5.2.3", "552", "DATA"),
    "postfix-552-5.3.4-message-file-too-big": (
        "mesgtoobig-status",
        "552 5.3.4 Error: message file too big (in reply to end of DATA command)",
        "5.3.4", "552", None),
    "exim-552-exceeds-maximum-permitted": (
        "mesgtoobig-text",
        "SMTP error from remote mail server after MAIL FROM:<sender@example.org>"
        " SIZE=31457280: 552 Message size exceeds maximum permitted",
        None, None, "DATA"),
    "exchange-550-5.2.3-recipsizelimit": (
        "mesgtoobig-recipient",
        "550 5.2.3 RESOLVER.RST.RecipSizeLimit; message too large for this recipient",
        "5.2.3", "550", "RCPT"),
    "qmail-databytes": (
        "mesgtoobig-text",
        "552 sorry, that message size exceeds my databytes limit",
        None, "552", None),
    "generic-552-message-too-large": (
        "exceedlimit-text",
        "552 Message too large",
        None, "552", "DATA"),
    # -- suspend -----------------------------------------------------------------------
    "rfc3463-550-5.7.13-disabled": (
        "suspend-status",
        "550 5.7.13 <user@example.com>: user account disabled",
        "5.7.13", "550", "RCPT"),
    "gmail-550-5.2.1-disabled": (
        "suspend-text",
        "550-5.2.1 The email account that you tried to reach is disabled. Learn more at"
        " 550 5.2.1 https://support.google.com/mail/?p=DisabledUser",
        "5.2.1", "550", "RCPT"),
    "yahoo-554-mailbox-disabled": (
        "suspend-text",
        "554 delivery error: dd Sorry your message to user@example.com cannot be"
        " delivered. This mailbox is disabled (554.30). - mta1234.mail.example.com",
        None, "554", "DATA"),
    # -- hasmoved ----------------------------------------------------------------------
    "rfc3463-550-5.1.6-moved": (
        "hasmoved-status",
        "550 5.1.6 <user@example.com>: mailbox has moved, no forwarding address",
        "5.1.6", "550", "RCPT"),
    "rrvs-550-5.7.17-owner-changed": (
        "hasmoved-status",
        "550 5.7.17 Mailbox owner has changed",
        "5.7.17", "550", "RCPT"),
    "sendmail-551-user-has-moved": (
        "hasmoved-text",
        "551 User has moved; please try <user@example.org>",
        None, "551", "RCPT"),
    # -- norelaying --------------------------------------------------------------------
    "postfix-554-5.7.1-relay-access-denied": (
        "norelaying-text",
        "554 5.7.1 <user@example.com>: Relay access denied",
        "5.7.1", "554", "RCPT"),
    "sendmail-550-5.7.1-relaying-denied": (
        "norelaying-text",
        "550 5.7.1 <user@example.com>... Relaying denied",
        "5.7.1", "550", "RCPT"),
    "qmail-553-rcpthosts": (
        "norelaying-text",
        "553 sorry, that domain isn't in my list of allowed rcpthosts",
        None, "553", "RCPT"),
    # -- speeding ----------------------------------------------------------------------
    "gmail-421-4.7.28-unusual-rate": (
        "speeding-status",
        "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited"
        " mail originating from your IP address. To protect our users from spam, mail"
        " sent from your IP address has been temporarily rate limited.",
        "4.7.28", "421", "DATA"),
    "microsoft-451-4.7.650-rate-limited": (
        "badreputation-text",
        "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due"
        " to IP reputation.",
        "4.7.650", "451", "RCPT"),
    "postfix-policyd-rate-limit": (
        "speeding-text",
        "450 4.7.1 <user@example.com>: Recipient address rejected: Rate limit exceeded",
        "4.7.1", "450", "RCPT"),
    "postfix-anvil-too-much-mail": (
        "speeding-client",
        "450 4.7.1 Error: too much mail from 192.0.2.1",
        "4.7.1", "450", "MAIL"),
    # -- authfailure -------------------------------------------------------------------
    "gmail-550-5.7.26-unauthenticated": (
        "authfailure-text",
        "550-5.7.26 This mail is unauthenticated, which poses a security risk to the"
        " sender and Gmail users, and has been blocked. The sender must authenticate"
        " with at least one of SPF or DKIM. For this message, DKIM checks did not pass"
        " and SPF check for [example.org] did not pass with ip: [192.0.2.1].",
        "5.7.26", "550", "DATA"),
    "microsoft-550-5.7.509-dmarc": (
        "authfailure-text",
        "550 5.7.509 Access denied, sending domain [example.org] does not pass DMARC"
        " verification and has a DMARC policy of reject.",
        "5.7.509", "550", "DATA"),
    "postfix-policyd-spf-fail": (
        "authfailure-text",
        "550 5.7.23 <user@example.com>: Recipient address rejected: Message rejected"
        " due to: SPF fail - not authorized. Please see"
        " http://www.open-spf.org/Why;id=sender@example.org;ip=192.0.2.1;r=mx.example.com",
        "5.7.23", "550", "RCPT"),
    "rfc7372-550-5.7.20-no-dkim": (
        "authfailure-status",
        "550 5.7.20 No passing DKIM signature found",
        "5.7.20", "550", "DATA"),
    "microsoft-550-5.7.515-auth-level": (
        "authfailure-status",
        "550 5.7.515 Access denied, sending domain example.org doesn't meet the required"
        " authentication level.",
        "5.7.515", "550", "DATA"),
    # -- local delivery agents -----------------------------------------------------------
    "postfix-pipe-command-died": (
        "mailererror-local",
        "Command died with status 127: \"/usr/local/bin/mailfilter\". Command output:"
        " sh: 1: /usr/local/bin/mailfilter: not found",
        "5.3.0", None, None),
    "sendmail-unknown-mailer-error": (
        "mailererror-text",
        "554 5.3.0 unknown mailer error 1",
        "5.3.0", "554", None),
    "exim-local-delivery-failed": (
        "mailererror-text",
        "local delivery failed",
        "5.0.0", None, None),
    # -- requireptr ----------------------------------------------------------------------
    "postfix-450-cannot-find-hostname": (
        "requireptr-text",
        "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
        "4.7.1", "450", "RCPT"),
    "gmail-550-5.7.25-ptr": (
        "requireptr-text",
        "550-5.7.25 [192.0.2.1] The IP address sending this message does not have a PTR"
        " record setup, or the corresponding forward DNS entry does not point to the"
        " sending IP. As a policy, Gmail does not accept messages from IPs with missing"
        " PTR records.",
        "5.7.25", "550", "DATA"),
    "rfc7372-550-5.7.25-bare": (
        "requireptr-status",
        "550 5.7.25 Client IP address does not resolve",
        "5.7.25", "550", None),
    # -- securityerror -------------------------------------------------------------------
    "exchange-550-5.7.1-auth-required": (
        "securityerror-auth",
        "550 5.7.1 RESOLVER.RST.AuthRequired; authentication required [Stage:"
        " CreateMessage]",
        "5.7.1", "550", "RCPT"),
    "postfix-530-starttls-first": (
        "securityerror-text",
        "530 5.7.0 Must issue a STARTTLS command first",
        "5.7.0", "530", None),
    "generic-550-5.7.1-bare-rejected": (
        "securityerror-status",
        "554 5.7.1 Message rejected",
        "5.7.1", "554", "DATA"),
    # -- policyviolation -----------------------------------------------------------------
    "yahoo-554-5.7.9-policy-reasons": (
        "policyviolation-early",
        "554 5.7.9 Message not accepted for policy reasons. See"
        " https://senders.yahooinc.com/error-codes",
        "5.7.9", "554", "DATA"),
    "exchange-550-5.7.1-transport-rule": (
        "policyviolation-early",
        "550 5.7.1 TRANSPORT.RULES.RejectMessage; the message was rejected by"
        " organization policy",
        "5.7.1", "550", "DATA"),
    "mailman-members-only": (
        "policyviolation-text",
        "553 5.7.1 Message rejected: sender not in members-only list",
        "5.7.1", "553", "RCPT"),
    "filter-illegal-attachment": (
        "policyviolation-text",
        "552 5.7.0 Message rejected: illegal attachment type (.exe)",
        "5.7.0", "552", "DATA"),
    # -- blocked -------------------------------------------------------------------------
    "postfix-554-client-host-rbl": (
        "blocked-client",
        "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using"
        " zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1",
        "5.7.1", "554", "RCPT"),
    "postfix-554-client-access-denied": (
        "blocked-client",
        "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied",
        "5.7.1", "554", "RCPT"),
    "microsoft-550-s3150-block-list": (
        "blocked-client",
        "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact"
        " your Internet service provider since part of their network is on our block"
        " list (S3150).",
        "5.7.1", "550", "RCPT"),
    "postfix-504-helo-not-fqdn": (
        "blocked-connect",
        "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"
        " (in reply to HELO command)",
        "5.5.2", "504", None),
    "greeting-554-refused-to-talk": (
        "blocked-connect",
        "host mx.example.com[192.0.2.25] refused to talk to me: 554 5.7.1"
        " mx.example.com ESMTP Service not available",
        "5.7.1", "554", "CONN"),
    "milter-451-4.7.1-temporarily-rejected": (
        "blocked-status",
        "451 4.7.1 Temporarily rejected. Try again later.",
        "4.7.1", "451", "RCPT"),
    "att-553-dnsbl": (
        "blocked-text",
        "553 5.3.0 flpd575 DNSBL:RBL 521< 192.0.2.1 >_is_blocked.For assistance forward"
        " this error to abuse_rbl@abuse-att.net",
        "5.3.0", "553", None),
    "earthlink-550-dynamic-ip": (
        "blocked-text",
        "550 Dynamic IP addresses are not allowed to send mail directly, use your"
        " provider's relay",
        None, "550", None),
    "greeting-554-no-smtp-service": (
        "blocked-code",
        "554 mx.example.com No SMTP service here",
        None, "554", None),
    # -- rejected (sender side) ----------------------------------------------------------
    "postfix-mail-from-user-unknown": (
        "rejected-sender",
        "550 5.1.0 <sender@example.org>: Sender address rejected: User unknown in local"
        " recipient table (in reply to MAIL FROM command)",
        "5.1.0", "550", None),
    "gmail-5.2.1-receiving-rate": (
        "speeding-recipient",
        "550-5.2.1 The user you are trying to contact is receiving mail at a rate that"
        " prevents additional messages from being delivered. Please resend your message at"
        " a later time.",
        "5.2.1", "550", "DATA"),
    "null-sender-refused": (
        "rejected-text",
        "550 5.7.1 Null sender is not allowed for this recipient",
        "5.7.1", "550", "RCPT"),
    "domino-not-listed": (
        "userunknown-directory",
        "User John Doe (john.doe@example.com) not listed in Domino Directory",
        None, None, None),
    "exchange2003-name-not-recognized": (
        "userunknown-directory",
        "The recipient name is not recognized MSEXCH:IMS:EXAMPLE:SITE:SERVER 0 (000C05A6)"
        " Unknown Recipient",
        None, None, None),
    "postfix-mail-from-plain": (
        "rejected-mailfrom",
        "host mx.example.com[192.0.2.25] said: 550 5.7.1 Not accepting mail from this"
        " envelope (in reply to MAIL FROM command)",
        "5.7.1", "550", None),
    "postfix-sender-nullmx": (
        "rejected-sender",
        "550 5.7.27 <sender@example.org>: Sender address rejected: Domain example.org"
        " does not accept mail (nullMX)",
        "5.7.27", "550", "RCPT"),
    "exim-sender-verify-failed": (
        "rejected-sender",
        "SMTP error from remote mail server after RCPT TO:<user@example.com>:"
        " 550-Verification failed for <sender@example.org> 550-Unrouteable address"
        " 550 Sender verify failed",
        None, "550", None),
    "postfix-553-sender-not-owned": (
        "rejected-sender",
        "553 5.7.1 <sender@example.org>: Sender address rejected: not owned by user"
        " sender@example.org",
        "5.7.1", "553", "RCPT"),
    # -- DNS and null MX -----------------------------------------------------------------
    "postfix-dns-try-again": (
        "networkerror-dns",
        "Host or domain name not found. Name service error for name=example.com type=MX:"
        " Host not found, try again",
        "4.4.3", None, None),
    "postfix-dns-malformed-reply": (
        "networkerror-dns",
        "Name service error for name=example.com type=MX: Malformed or unexpected name"
        " server reply",
        "4.4.3", None, None),
    "postfix-nullmx": (
        "notaccept-nullmx",
        "Domain example.com does not accept mail (nullMX)",
        "5.1.10", None, None),
    # -- userunknown / filtered ----------------------------------------------------------
    "postfix-virtual-5.1.1": (
        "userunknown-status",
        "550 5.1.1 <user@example.com>: Recipient address rejected: User unknown in"
        " virtual mailbox table",
        "5.1.1", "550", "RCPT"),
    "gmail-550-5.1.1-does-not-exist": (
        "userunknown-status",
        "550-5.1.1 The email account that you tried to reach does not exist. Please try"
        " 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1"
        " unnecessary spaces. Learn more at 550 5.1.1"
        " https://support.google.com/mail/?p=NoSuchUser",
        "5.1.1", "550", "RCPT"),
    "exchange-550-5.1.10-recipient-not-found": (
        "userunknown-status",
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient user@example.com not found"
        " by SMTP address lookup",
        "5.1.10", "550", "RCPT"),
    "exim-550-unknown-user": (
        "userunknown-text",
        "SMTP error from remote mail server after RCPT TO:<user@example.com>: 550 Unknown"
        " user",
        None, None, None),
    "domino-550-no-such-user": (
        "userunknown-text",
        "550 No such user (user@example.com)",
        None, "550", "RCPT"),
    "o365-550-5.4.1-dbeb-access-denied": (
        "userunknown-text",
        "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"
        " [DM6NAM12FT019.eop-nam12.prod.protection.outlook.com]",
        "5.4.1", "550", "RCPT"),
    # Yahoo refuses unknown users only at end of DATA: the recipient was accepted at
    # RCPT, so like every "user unknown" after DATA it reads as filtered (soft) — the
    # labelled corpus (Sisimai) agrees for this wording.
    "yahoo-554-dd-no-account": (
        "filtered-after-data",
        "554 delivery error: dd This user doesn't have a yahoo.com account"
        " (user@yahoo.com) [0] - mta1002.mail.gq1.yahoo.com"
        " (in reply to end of DATA command)",
        None, "554", None),
    "postfix-user-unknown-after-data": (
        "filtered-after-data",
        "550 user unknown (in reply to end of DATA command)",
        None, "550", None),
    "exchange-550-5.7.1-notauthorized": (
        "filtered-text",
        "550 5.7.1 RESOLVER.RST.NotAuthorized; not authorized",
        "5.7.1", "550", "RCPT"),
    "generic-550-5.2.4-list-expansion": (
        "filtered-status",
        "550 5.2.4 Mailing list expansion problem",
        "5.2.4", "550", "RCPT"),
    "rfc5321-553-mailbox-name-not-allowed": (
        "userunknown-code",
        "553 Requested action not taken: mailbox name not allowed",
        None, "553", "RCPT"),
    # -- hostunknown ---------------------------------------------------------------------
    "exchange-550-5.4.4-nonexistent-domain": (
        "hostunknown-status",
        "550 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
        "5.4.4", "550", None),
    "sendmail-550-5.1.2-host-unknown": (
        "hostunknown-status",
        "550 5.1.2 <user@example.invalid>... Host unknown (Name server:"
        " example.invalid: host not found)",
        "5.1.2", "550", None),
    "postfix-host-not-found-5.0.0": (
        "hostunknown-text",
        "Host or domain name not found. Name service error for name=example.invalid"
        " type=MX: Host not found",
        "5.0.0", None, None),
    "exim-unrouteable-address": (
        "hostunknown-text",
        "Unrouteable address",
        "5.0.0", None, None),
    "exchange-550-5.4.310-dns-domain": (
        "hostunknown-domain",
        "550 5.4.310 DNS domain example.invalid does not exist"
        " [Message=InfoDomainNonexistent] [LastAttemptedServerName=example.invalid]",
        "5.4.310", "550", None),
    "postfix-450-helo-host-not-found": (
        "blocked-client",
        "450 4.7.1 <mail.example.org>: Helo command rejected: Host not found"
        " (in reply to RCPT TO command)",
        "4.7.1", "450", None),
    # -- content -------------------------------------------------------------------------
    "postfix-554-5.6.1-body-type": (
        "contenterror-media",
        "554 5.6.1 Body type not supported by remote host",
        "5.6.1", "554", "DATA"),
    "rfc3463-554-5.6.3-conversion": (
        "contenterror-media",
        "554 5.6.3 Conversion required but not supported",
        "5.6.3", "554", "DATA"),
    "filter-550-invalid-header": (
        "contenterror-text",
        "550 5.7.1 Message contains invalid header",
        "5.7.1", "550", "DATA"),
    "gmail-550-5.7.1-rfc5322": (
        "notcompliantrfc-text",
        "550-5.7.1 [192.0.2.1] Our system has detected that this message is not RFC"
        " 5322 compliant: 'From' header is missing.",
        "5.7.1", "550", "DATA"),
    "exchange-550-5.7.1-spam": (
        "spamdetected-text",
        "550 5.7.1 Message rejected as spam by Content Filtering.",
        "5.7.1", "550", "DATA"),
    "postfix-header-checks-content-rejected": (
        "spamdetected-content",
        "550 5.7.1 Message content rejected",
        "5.7.1", "550", "DATA"),
    "mailru-550-spam-rejected": (
        "spamdetected-text",
        "550 spam message rejected. Please visit http://help.mail.ru/notspam-support/id"
        " or report details to abuse@corp.mail.ru",
        None, "550", "DATA"),
    "amavis-554-infected": (
        "virusdetected-text",
        "554 5.7.0 Reject, id=12345-01 - INFECTED: Eicar-Test-Signature",
        "5.7.0", "554", "DATA"),
    "exim-clamav-virus": (
        "virusdetected-text",
        "550 This message contains a virus (Eicar-Test-Signature) and has been rejected",
        None, "550", "DATA"),
    # -- reputation ----------------------------------------------------------------------
    "gmail-421-4.7.0-low-reputation": (
        "badreputation-text",
        "421-4.7.0 [192.0.2.1] Our system has detected that this message is suspicious"
        " due to the very low reputation of the sending IP address. To best protect"
        " our users from spam, the message has been blocked.",
        "4.7.0", "421", "DATA"),
    "yahoo-421-tss04": (
        "badreputation-text",
        "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to"
        " unexpected volume or user complaints - 4.16.55.1; see"
        " https://senders.yahooinc.com/error-codes",
        "4.7.0", "421", "RCPT"),
    # -- connections and recipients ------------------------------------------------------
    "postfix-421-too-many-connections": (
        "toomanyconn-text",
        "421 4.7.0 Error: too many connections from 192.0.2.1",
        "4.7.0", "421", None),
    "postfix-452-too-many-recipients": (
        "toomanyconn-text",
        "452 4.5.3 Error: too many recipients",
        "4.5.3", "452", "RCPT"),
    "generic-452-4.5.3-recipient-limit": (
        "toomanyconn-status",
        "452 4.5.3 Recipient limit reached for this message",
        "4.5.3", "452", "RCPT"),
    "sendmail-421-connection-rate": (
        "toomanyconn-text",
        "421 4.3.2 Connection rate limit exceeded.",
        "4.3.2", "421", None),
    "sendmail-421-too-many-open": (
        "toomanyconn-text",
        "421 4.3.2 Too many open connections.",
        "4.3.2", "421", None),
    # -- greylisting, expiry, network ----------------------------------------------------
    "postgrey-450-greylisted": (
        "expired-greylisted",
        "450 4.2.0 <user@example.com>: Recipient address rejected: Greylisted, see"
        " http://postgrey.schweikert.ch/help/example.com.html",
        "4.2.0", "450", "RCPT"),
    "exchange-4.4.7-queue-expired": (
        "expired-message",
        "550 4.4.7 QUEUE.Expired; message expired",
        "4.4.7", "550", None),
    "postfix-connection-timed-out": (
        "expired-queue",
        "connect to mx.example.com[192.0.2.25]:25: Connection timed out",
        "4.4.1", None, None),
    "sendmail-could-not-be-delivered-for": (
        "expired-queue",
        "Message could not be delivered for 5 days",
        "4.4.7", None, None),
    "exim-failing-for-a-long-time": (
        "expired-text",
        "all hosts for 'example.com' have been failing for a long time (and retry time"
        " not reached)",
        "4.0.0", None, None),
    "exchange-421-4.4.7-unable-to-deliver": (
        "expired-status",
        "421 4.4.7 Unable to deliver this message",
        "4.4.7", "421", None),
    "qmail-no-smtp-connection": (
        "networkerror-connect",
        "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)",
        None, None, None),
    "postfix-no-route-to-host": (
        "networkerror-text",
        "connect to mx.example.com[192.0.2.25]:25: No route to host",
        "4.4.1", None, None),
    "sendmail-554-too-many-hops": (
        "networkerror-text",
        "554 5.4.6 Too many hops 26 (25 max)",
        "5.4.6", "554", "DATA"),
    "postfix-connection-refused": (
        "networkerror-text",
        "connect to mx.example.com[192.0.2.25]:25: Connection refused",
        "4.4.1", None, None),
    "exchange-451-4.4.0-primary-target": (
        "networkerror-status",
        "451 4.4.0 Primary target IP address responded with: \"451 Please try later\"",
        "4.4.0", "451", None),
    # -- system --------------------------------------------------------------------------
    "postfix-loops-back-to-myself": (
        "systemerror-text",
        "mail for example.com loops back to myself",
        "5.4.6", None, None),
    "postfix-451-queue-file-write-error": (
        "systemerror-text",
        "451 4.3.0 Error: queue file write error",
        "4.3.0", "451", "DATA"),
    "generic-451-4.3.0-undefined": (
        "systemerror-status",
        "451 4.3.0 Other or undefined mail system status",
        "4.3.0", "451", "DATA"),
    "postfix-452-4.3.1-storage": (
        "systemfull-disk",
        "452 4.3.1 Insufficient system storage",
        "4.3.1", "452", None),
    "exchange-452-4.3.1-back-pressure": (
        "systemfull-status",
        "452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Program Files\\"
        "Microsoft\\Exchange Server\\V15\\TransportRoles\\data\\Queue])",
        "4.3.1", "452", None),
    "exchange-452-4.3.1-back-pressure-at-mail": (
        "systemfull-status",
        "452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Program Files\\"
        "Microsoft\\Exchange Server\\V15\\TransportRoles\\data\\Queue])",
        "4.3.1", "452", "MAIL"),
    "rfc5321-452-insufficient-storage": (
        "systemfull-disk",
        "452 Requested action not taken: insufficient system storage",
        None, "452", "RCPT"),
    "sendmail-452-4.4.5-disk-space": (
        "systemfull-disk",
        "452 4.4.5 Insufficient disk space; try again later",
        "4.4.5", "452", None),
    "generic-452-out-of-disk-space": (
        "systemfull-text",
        "452 Error: out of disk space",
        None, "452", "DATA"),
    "rfc3463-550-5.3.2-not-accepting": (
        "notaccept-status",
        "550 5.3.2 System not accepting network messages",
        "5.3.2", "550", None),
    "sendmail-554-esmtp-not-accepting": (
        "notaccept-text",
        "554 mail.example.net ESMTP not accepting messages",
        None, "554", None),
    # -- the sender's null MX (RFC 7505 X.7.27) is a sender-side refusal ----------------
    "postfix-550-5.7.27-sender-nullmx": (
        "rejected-sender",
        "550 5.7.27 <sender@example.org>: Sender address rejected: Domain example.org"
        " does not accept mail (nullMX)",
        "5.7.27", "550", "RCPT"),
    # -- protocol ------------------------------------------------------------------------
    "exchange-500-command-unrecognized": (
        "syntaxerror-text",
        "500 5.5.1 Command unrecognized: \"XEXCH50\"",
        "5.5.1", "500", None),
    "sendmail-503-bad-sequence": (
        "syntaxerror-text",
        "503 5.5.1 Bad sequence of commands",
        "5.5.1", "503", "DATA"),
    "generic-501-syntax-help": (
        "syntaxerror-code",
        "501 Syntax: RCPT TO: <address>",
        None, "501", "RCPT"),
    "gateway-550-quarantined": (
        "onhold-text",
        "550 Message has been quarantined",
        None, "550", "DATA"),
}


#: Rows the current table classifies differently from what the reply means:
#: {example id: what it hits instead}. Expected to fail until the lead decides.
MISCLASSIFIED = {
}

#: Rows whose non-fallback matches mix hard and soft reasons on purpose:
#: {example id: why the table order resolves it}.
INTENDED_OVERLAPS = {
    "sendmail-421-too-many-open": (
        "4.3.2 names notaccept, which is hard only with a 5xx; toomanyconn-text precedes "
        "the status rule"),
    "postfix-450-helo-host-not-found": (
        "'Helo command rejected: Host not found' is about our HELO name: blocked-client "
        "precedes hostunknown-text"),
    "postfix-550-5.7.27-sender-nullmx": (
        "the sender's null MX: rejected-sender precedes the hard notaccept wording"),
    "postfix-sender-nullmx": (
        "the null MX is the *sender's* domain: rejected-sender precedes the hard "
        "hostunknown/notaccept wording, and the safe (soft) side wins"),
    "orange-boite-pleine-5.1.1": (
        "Orange sends 5.1.1 for a full mailbox; mailboxfull-text precedes "
        "userunknown-status (the words beat the status they contradict)"),
    "o365-550-5.4.1-dbeb-access-denied": (
        "Office 365 directory-based edge blocking: 'Recipient address rejected: Access "
        "denied' at RCPT is an unknown address; userunknown-text precedes blocked-text"),
    "exim-sender-verify-failed": (
        "'Unrouteable address' is the sender's, inside Exim's sender-verify callout; "
        "rejected-text precedes hostunknown-text"),
    "postfix-dns-try-again": (
        "Postfix prefixes temporary DNS failures with 'Host or domain name not found'; "
        "networkerror-dns ('try again') precedes hostunknown-text"),
    "sendmail-550-5.1.2-host-unknown": (
        "'(Name server: ...: host not found)' names the lookup that failed; "
        "hostunknown-status precedes networkerror-text's 'name server'"),
    "sendmail-421-connection-rate": (
        "4.3.2 'system not accepting' is transient here: text rules precede "
        "notaccept-status, and notaccept with a 4xx is soft anyway"),
}

#: Rows whose hard/soft overlap the table order resolves the wrong way (see
#: :data:`MISCLASSIFIED`): the ambiguity guard is expected to fail on them.
UNRESOLVED_OVERLAPS = {
}


def _params(xfail: dict[str, str]) -> list[object]:
    """One ``pytest.param`` per example, id = example id, xfail where listed."""
    out: list[object] = []
    for example_id, example in EXAMPLES.items():
        marks = ()
        if example_id in xfail:
            marks = (pytest.mark.xfail(strict=True, reason=xfail[example_id]),)
        out.append(pytest.param(*example, id=example_id, marks=marks))
    return out


def _finding(diagnostic: str, status: str | None, code: str | None,
             command: str | None, action: str = "failed") -> Finding:
    return Finding(recipient="user@example.com", action=action, status=status,
                   smtp_code=code, diagnostic=diagnostic, smtp_command=command)


def _is_hard_reason(reason: str) -> bool:
    return reason in HARD_REASONS


def _expected_class(reason: str, finding: Finding) -> Classification:
    """Hard for a dead address; ``notaccept`` only with a 5xx status or code."""
    if reason in ("userunknown", "hostunknown", "hasmoved"):
        return Classification.HARD
    if reason == "notaccept":
        first = (finding.status or finding.smtp_code or "5")[:1]
        return Classification.HARD if first == "5" else Classification.SOFT
    return Classification.SOFT


# -- the table itself ----------------------------------------------------------------


def test_rule_ids_are_unique() -> None:
    ids = [rule.id for rule in RULES]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_well_formed(rule: Rule) -> None:
    assert re.fullmatch(r"[a-z]+(?:-[a-z0-9]+)+", rule.id), "ids are kebab-case"
    assert rule.id.startswith(rule.reason + "-"), "an id starts with its reason word"
    assert rule.reason in REASONS
    assert rule.note.strip(), "every rule says where its pattern comes from"
    conditions = {
        "text": (rule.text, rule.text_re), "status": (rule.status, rule.status_re),
        "code": (rule.code, rule.code_re), "command": (rule.command, rule.command_re),
    }
    assert any(source is not None for source, _ in conditions.values()), (
        "a rule with no condition would match everything")
    for name, (source, compiled) in conditions.items():
        if source is not None:
            assert isinstance(compiled, re.Pattern), f"{name} not compiled"
            assert compiled.pattern == source
    if rule.unless is not None:
        assert isinstance(rule.unless_re, re.Pattern)


def test_fallbacks_come_last() -> None:
    """Fallback rules (status class, bare reply code) are the table's last resort."""
    flags = [rule.fallback for rule in RULES]
    first = flags.index(True)
    assert all(flags[first:]), [r.id for r in RULES[first:] if not r.fallback]


def test_every_rule_has_an_example() -> None:
    """Compare ids both ways: no rule without an example, no example of a lost rule."""
    in_table = {rule.id for rule in RULES}
    in_examples = {example[0] for example in EXAMPLES.values()}
    assert sorted(in_table - in_examples) == [], "rules without an example"
    assert sorted(in_examples - in_table) == [], "examples naming no rule"


def test_listed_ids_are_examples() -> None:
    for table in (MISCLASSIFIED, INTENDED_OVERLAPS, UNRESOLVED_OVERLAPS):
        assert sorted(set(table) - set(EXAMPLES)) == []
    assert not set(INTENDED_OVERLAPS) & set(UNRESOLVED_OVERLAPS)
    assert set(UNRESOLVED_OVERLAPS) <= set(MISCLASSIFIED), "a wrong overlap misclassifies"


# -- every example lands on its rule ---------------------------------------------------


@pytest.mark.parametrize(("rule_id", "diagnostic", "status", "code", "command"),
                         _params(MISCLASSIFIED))
def test_example_is_classified_by_its_rule(rule_id: str, diagnostic: str, status: str | None,
                                           code: str | None, command: str | None) -> None:
    verdict = classify(_finding(diagnostic, status, code, command))
    reason = RULES_BY_ID[rule_id].reason
    assert (verdict.rule_id, verdict.reason) == (rule_id, reason)
    assert verdict.classification is _expected_class(reason, verdict.finding)


# -- the ambiguity guard -----------------------------------------------------------------


def _non_fallback_matches(diagnostic: str, status: str | None, code: str | None,
                          command: str | None) -> list[Rule]:
    """Every non-fallback rule that matches the lowercased diagnostic and the
    status, code and command that :func:`complete` gives classify()."""
    finding = complete(_finding(diagnostic, status, code, command))
    text = diagnostic.lower()
    return [
        rule for rule in RULES
        if not rule.fallback and rule.matches(
            text, finding.status or "", finding.smtp_code or "", finding.smtp_command or "")
    ]


@pytest.mark.parametrize(("rule_id", "diagnostic", "status", "code", "command"),
                         _params(UNRESOLVED_OVERLAPS))
def test_example_does_not_mix_hard_and_soft_rules(
    request: pytest.FixtureRequest, rule_id: str, diagnostic: str, status: str | None,
    code: str | None, command: str | None,
) -> None:
    example_id = request.node.callspec.id
    matched = _non_fallback_matches(diagnostic, status, code, command)
    hard = sorted(r.id for r in matched if _is_hard_reason(r.reason))
    soft = sorted(r.id for r in matched if not _is_hard_reason(r.reason))
    if example_id in INTENDED_OVERLAPS:
        assert hard and soft, "listed as an intended overlap but no longer mixes: unlist it"
        return
    assert not (hard and soft), f"hard {hard} and soft {soft} both match"


# -- order-sensitive on purpose ----------------------------------------------------------


def test_full_mailbox_beats_a_5_1_1_status() -> None:
    verdict = classify(_finding(
        "552 5.1.1 <user@example.com>: Mailbox is full", "5.1.1", "552", "RCPT"))
    assert (verdict.reason, verdict.classification) == ("mailboxfull", Classification.SOFT)


@pytest.mark.parametrize("diagnostic", [
    "550 user unknown (in reply to end of DATA command)",
    "SMTP error from remote mail server after end of data: 550 Unknown user",
    ">>> DATA <<< 550 No such user here",
])
def test_user_unknown_in_reply_to_data_is_filtered(diagnostic: str) -> None:
    """Accepted at RCPT TO, refused after DATA: the mailbox exists, a filter said no."""
    verdict = classify(_finding(diagnostic, None, None, None))
    assert verdict.finding.smtp_command == "DATA"
    assert (verdict.reason, verdict.classification) == ("filtered", Classification.SOFT)


@pytest.mark.parametrize("diagnostic", [
    "550 5.1.1 Your IP address 192.0.2.1 is listed in our blacklist",
    "550 5.1.1 Service unavailable; client [192.0.2.1] blocked using Spamhaus",
    "550 5.1.1 <user@example.com>: Recipient address rejected: sending IP is on a "
    "block list",
    pytest.param(
        "550 5.1.1 Too many invalid recipients from 192.0.2.1", id="too-many-invalid"),
])
def test_5_1_1_with_block_wording_is_not_userunknown(diagnostic: str) -> None:
    verdict = classify(_finding(diagnostic, "5.1.1", "550", "RCPT"))
    assert verdict.reason != "userunknown"
    assert verdict.classification is Classification.SOFT


@pytest.mark.parametrize(("diagnostic", "status"), [
    ("550 5.1.1 <sender@example.org>: Sender address rejected: User unknown in local "
     "recipient table", "5.1.1"),
    ("553 5.1.2 <sender@example.invalid>: Sender address rejected: Domain not found",
     "5.1.2"),
    ("550 5.1.0 <sender@example.org>: Sender address rejected: Domain example.org does "
     "not accept mail (nullMX)", "5.1.0"),
    ("550 5.7.27 <sender@example.org>: Sender address rejected: Domain example.org does "
     "not accept mail (nullMX)", "5.7.27"),
    ("553 5.1.8 <sender@example.org>... Domain of sender address sender@example.org "
     "does not exist", "5.1.8"),
    ("550 No such user here", None),
])
def test_mail_from_rejection_is_never_hard(diagnostic: str, status: str | None) -> None:
    """A reply to MAIL FROM is about our sender address, whatever its words say."""
    verdict = classify(_finding(diagnostic, status, None, "MAIL"))
    assert verdict.classification is Classification.SOFT
    assert verdict.reason not in HARD_REASONS


@pytest.mark.parametrize("reason", sorted(NEVER_HARD))
def test_sender_side_reasons_are_never_hard(reason: str) -> None:
    for status, code in (("5.7.1", "550"), ("5.0.0", "554"), (None, "550"), (None, None)):
        assert not is_hard(reason, status, code)


@pytest.mark.parametrize(
    ("rule_id", "diagnostic", "status", "code", "command"),
    [pytest.param(*example, id=example_id) for example_id, example in EXAMPLES.items()
     if RULES_BY_ID[example[0]].reason in NEVER_HARD and example_id not in MISCLASSIFIED],
)
def test_sender_side_examples_are_soft(rule_id: str, diagnostic: str, status: str | None,
                                       code: str | None, command: str | None) -> None:
    verdict = classify(_finding(diagnostic, status, code, command))
    assert verdict.reason in NEVER_HARD
    assert verdict.classification is Classification.SOFT


def test_sender_side_reasons_are_not_hard_reasons() -> None:
    assert not NEVER_HARD & HARD_REASONS
    assert NEVER_HARD <= REASONS


# -- the fast matcher: literal prefilters must never change an answer -------------------


def _texts() -> list[str]:
    """Lowercased diagnostics and contexts to check prefilters on: the examples above,
    every fixture's findings, each rule's own literals (the near misses), and a few
    hand-made traps."""
    texts = {example[1].lower() for example in EXAMPLES.values()}
    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    for path in sorted(fixtures.rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".md"):
            for verdict in parse_message(path.read_bytes()).verdicts:
                for text in (verdict.finding.diagnostic, verdict.finding.context):
                    if text:
                        texts.add(text.lower())
    for rule in RULES:
        for probe in (rule.text_probe, rule.unless_probe):
            if probe is not None:
                literals = sorted(probe.literals - {""})
                texts.update(literals)
                texts.add(" ".join(literals))
                texts.update(literal[1:] + " x " + literal[:-1] for literal in literals)
    texts.update(["", " ", "user@example.com does not exist", "<a@b> does not exist",
                  "spam house", "spamhaus", "server does not accept mail from you",
                  "connection rate limit", "unknown user: x", "x unknown user:"])
    return sorted(texts)


TEXTS = _texts()
PROBED = [pytest.param(rule, attr, id=f"{rule.id}-{attr}") for rule in RULES
          for attr in ("text", "unless") if getattr(rule, attr) is not None]


@pytest.mark.parametrize(("rule", "attr"), PROBED)
def test_probe_finds_what_the_pattern_finds(rule: Rule, attr: str) -> None:
    pattern = re.compile(getattr(rule, attr))
    probe = getattr(rule, f"{attr}_probe")
    for text in TEXTS:
        expected = pattern.search(text) is not None
        assert probe.found(text) == expected, text
        assert probe.found(text, RULE_LITERALS(text)) == expected, text


def test_literal_scan_finds_exactly_the_literals_present() -> None:
    for text in TEXTS:
        assert RULE_LITERALS(text) == {lit for lit in RULE_LITERALS.literals if lit in text}


def test_fast_matcher_agrees_with_the_plain_loop() -> None:
    # Every text under a few field combinations, then every combination seen in the
    # examples (and a rough instance of each status pattern) under the examples' texts.
    for status, code, command in [("", "", ""), ("", "550", "RCPT"), ("5.1.1", "550", "DATA"),
                                  ("5.1.1", "550", "MAIL"), ("4.4.7", "", "")]:
        for text in TEXTS:
            assert (match_rule(text, status, code, command)
                    == match_rule_reference(text, status, code, command)), (text, status)
    fields = {(status or "", code or "", command or "")
              for _rule, _diag, status, code, command in EXAMPLES.values()}
    fields |= {(rule.status.replace("\\", "").replace("[45]", "5"), "", "")
               for rule in RULES if rule.status}
    fields |= {("", "554", ""), ("", "", "CONN"), ("", "501", "")}
    diagnostics = sorted({example[1].lower() for example in EXAMPLES.values()})
    for status, code, command in sorted(fields):
        for text in diagnostics:
            assert (match_rule(text, status, code, command)
                    == match_rule_reference(text, status, code, command)), (text, status)


@pytest.mark.parametrize(("pattern", "pieces"), [
    (r"(?:a|b)", ["a", "b"]),
    (r"a|(?:b|c)d", ["a", "(?:b|c)d"]),
    (r"(?:a|b)c|d", ["(?:a|b)c", "d"]),
    (r"(?:a|b)+", [r"(?:a|b)+"]),
    (r"[|]x|y", ["[|]x", "y"]),
    (r"[]|]x|y", ["[]|]x", "y"]),
    (r"\|x|y", [r"\|x", "y"]),
    (r"(a)|b", ["(a)|b"]),  # capturing groups: kept whole
    (r"(?i)a|b", ["(?i)a|b"]),  # global flags: kept whole
])
def test_alternatives_are_cut_only_at_top_level_bars(pattern: str, pieces: list[str]) -> None:
    assert [piece.pattern for piece in _alternatives(pattern)] == pieces


@pytest.mark.parametrize(("pattern", "literals"), [
    (r"mailbox (?:is )?full|quota", {"mailbox ", "quota"}),
    (r"(?i:abc)|def", {"", "def"}),  # no literal proves anything case-insensitively
    (r"(?i)abc", {""}),
    (r"a[bc]d|\bspam\b", {"a", "spam"}),
    (r"(?:low|poor) reputation", {" reputation"}),
    (r"x{2,}|y*z", {"x", "z"}),
])
def test_probe_files_alternatives_under_required_literals(
    pattern: str, literals: set[str] | None,
) -> None:
    probe = Probe(pattern)
    if literals is not None:
        assert probe.literals == literals
    for text in ["", "abc", "ABC", "DEF", "def", "xx", "x", "z", "the mailbox full",
                 "mailbox is full", "spam", "spammer", "low reputation", "abd", "acd"]:
        assert probe.found(text) == (re.search(pattern, text) is not None), text


@given(st.lists(st.text(alphabet="ab]^-\\[.x", min_size=1, max_size=4), max_size=8),
       st.text(alphabet="ab]^-\\[.x\n ", max_size=30))
def test_literal_scan_of_any_literals(literals: list[str], text: str) -> None:
    """Characters special in a class or a pattern are read as themselves."""
    assert LiteralScan(literals)(text) == {lit for lit in [*literals, ""] if lit in text}


def test_literal_scan_finds_overlapping_literals() -> None:
    """Literals that start inside one found and run past it (``bb`` in ``ababb``,
    after ``abab``) are found too: every text of up to 8 ``a``/``b`` under a few
    literal sets where such overlaps abound."""
    words = ["".join(chars) for n in range(1, 9) for chars in itertools.product("ab", repeat=n)]
    for literals in (["abab", "bb"], words[:14], ["aab", "ab", "bba", "abb", "baab"],
                     ["aaaa", "aab", "b"], words[2:6] + ["abba", "babab"]):
        scan = LiteralScan(literals)
        for text in ["", *words]:
            assert scan(text) == {lit for lit in [*literals, ""] if lit in text}, (literals, text)
