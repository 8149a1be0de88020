"""Turn a :class:`Finding` into a :class:`Verdict` with the rule table in :mod:`rules`.

Pure functions, no I/O: easy to test and to re-run over stored mail when the rules
improve.
"""

from __future__ import annotations

import functools
import re
from itertools import repeat
from typing import NamedTuple

from mailbox_processor.models import (
    HARD_REASONS,
    REASONS,
    Classification,
    Finding,
    Verdict,
    replace,
)
from mailbox_processor.rules import RULE_LITERALS, RULES, Probe, Rule
from mailbox_processor.text import find_command, find_smtp_code, find_status

_DELIVERED_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
_GENERIC_STATUS = re.compile(r"[245]\.0\.0")
_SUSPEND_RULE = next(r for r in RULES if r.id == "suspend-text")
_FULL_RULE = next(r for r in RULES if r.id == "mailboxfull-text")
_SUSPENDED = Probe(r"(?:account|mailbox) (?:is|has been) (?:disabled|suspended|deactivated)")
#: Reply codes repeated on each line of a multi-line SMTP reply ("550-5.7.1 ...").
#: Read: whitespace after a non-space, then the code. Written to start with ``\s``
#: (a lookbehind of two characters checks the non-space) because a pattern starting
#: with a character class lets ``re`` skip the other positions quickly; the matches
#: are those of ``(?<=\S)\s+[245]...``.
_CONTINUATION = re.compile(
    r"\s(?<=\S\s)\s*[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3} )?(?=\S)")
#: What every match of :data:`_CONTINUATION` holds: a reply code right after a
#: whitespace character. Searched from the rarer digits, it rules the substitution
#: out of most diagnostics for less than the substitution's own scan costs.
_CONTINUATION_HINT = re.compile(r"[245](?<=\s[245])\d\d[ -]")


def is_hard(reason: str | None, status: str | None, smtp_code: str | None) -> bool:
    """Hard bounce: the address or its domain is gone (a 5xx ``notaccept`` counts too)."""
    if reason in ("userunknown", "hostunknown", "hasmoved"):
        return True
    if reason == "notaccept":
        first = (status or smtp_code or "5")[:1]
        return first == "5"
    return False


class _Plan(NamedTuple):
    """The rules left for one (status, code, command), in table order, indexed."""

    #: (rule, its text probe, its unless probe) for each rule whose status, code and
    #: command conditions hold, up to the first that has no other condition.
    steps: tuple[tuple[Rule, Probe | None, Probe | None], ...]
    #: Positions in ``steps`` of the rules without a text condition.
    textless: frozenset[int]
    #: Per literal, the positions of the rules whose text pattern is filed under it.
    by_literal: dict[str, tuple[int, ...]]
    #: Whether the answer depends on the text (else it is the first step's rule,
    #: or ``None`` when there is no step).
    reads_text: bool


@functools.lru_cache(maxsize=1024)
def _plan(status: str, code: str, command: str) -> _Plan:
    """The :class:`_Plan` for these fields.

    They take few distinct values, so plans are cached (bounded: the fields come
    from the message) and :func:`match_rule` only reads the text.
    """
    steps: list[tuple[Rule, Probe | None, Probe | None]] = []
    for rule in RULES:
        if ((rule.command_re is None or rule.command_re.fullmatch(command))
                and (rule.status_re is None or rule.status_re.fullmatch(status))
                and (rule.code_re is None or rule.code_re.fullmatch(code))):
            steps.append((rule, rule.text_probe, rule.unless_probe))
            if rule.text_probe is None and rule.unless_probe is None:
                break  # it always matches: nothing after it can be reached
    by_literal: dict[str, list[int]] = {}
    for position, (_rule, text_probe, _unless) in enumerate(steps):
        for literal in text_probe.literals if text_probe is not None else ():
            by_literal.setdefault(literal, []).append(position)
    return _Plan(tuple(steps),
                 frozenset(i for i, (_r, text_probe, _u) in enumerate(steps) if text_probe is None),
                 {literal: tuple(positions) for literal, positions in by_literal.items()},
                 bool(steps) and (steps[0][1] is not None or steps[0][2] is not None))


def match_rule(text: str, status: str, code: str, command: str = "") -> Rule | None:
    """The first rule of :data:`RULES` that matches, or ``None``.

    Same answer as :func:`match_rule_reference`, faster: conditions on the status,
    code and command are settled once per distinct triple (:func:`_plan`); the
    literals of all text prefilters are found in one pass
    (:data:`~mailbox_processor.rules.RULE_LITERALS`), only the rules filed under a
    literal present are tried, and a pattern's searches run only under literals
    that are present (:class:`~mailbox_processor.rules.Probe`).
    """
    plan = _plan(status, code, command)
    return _match(plan, text, RULE_LITERALS(text) if plan.reads_text else frozenset())


def _match(plan: _Plan, text: str, present: frozenset[str]) -> Rule | None:
    """:func:`match_rule` with the plan, and the literals present in ``text`` when
    :attr:`_Plan.reads_text` (``RULE_LITERALS(text)``, or a superset of it)."""
    steps, textless, by_literal, reads_text = plan
    if not reads_text:
        return steps[0][0] if steps else None  # no need to read the text
    # Every rule that can match: those without a text condition, and those with a
    # literal of their text pattern in the text.
    positions = textless.union(*map(by_literal.get, present, repeat(())))
    for position in sorted(positions):
        rule, text_probe, unless_probe = steps[position]
        if text_probe is not None and not text_probe.found(text, present):
            continue
        if unless_probe is None or unless_probe.literals.isdisjoint(present) or not (
                unless_probe.found(text, present)):
            return rule
    return None


def match_rule_reference(text: str, status: str, code: str, command: str = "") -> Rule | None:
    """:func:`match_rule` the plain way (each rule's :meth:`Rule.matches` in turn).

    Kept as the oracle that tests compare the fast matcher with.
    """
    for rule in RULES:
        if rule.matches(text, status, code, command):
            return rule
    return None


def complete(finding: Finding) -> Finding:
    """Fill status and SMTP code from the diagnostic when the fields lack them.

    A generic status (``5.0.0``) gives way to a specific one quoted in the
    diagnostic (``550 5.1.1 ...``), as RFC 3463 intends the detail to be read.
    """
    return _complete(finding, None)


def _complete(finding: Finding, lowered: str | None) -> Finding:
    """:func:`complete`, given the lowercased diagnostic when the caller has it."""
    diag = finding.diagnostic or ""
    status = finding.status
    code = finding.smtp_code
    command = finding.smtp_command
    if diag:
        if command is None:
            command = find_command(diag, lowered=lowered)
        failure = finding.action not in _DELIVERED_ACTIONS
        if status is None or _GENERIC_STATUS.fullmatch(status):  # else nothing to fill
            quoted = find_status(diag, failure=failure)
            if quoted and (status is None or quoted[0] == status[0]):
                status = quoted
        if code is None:
            code = find_smtp_code(diag, failure=failure)
    if (status, code, command) == (finding.status, finding.smtp_code, finding.smtp_command):
        return finding
    return replace(finding, status=status, smtp_code=code, smtp_command=command)


def classify(finding: Finding) -> Verdict:
    """Return the verdict for one finding (RFC 3464 action + RFC 3463 status + text)."""
    if finding.kind == "feedback":
        return Verdict(finding, Classification.COMPLAINT, "feedback", "format-arf")
    if finding.kind == "vacation":
        return Verdict(finding, Classification.AUTOREPLY, "vacation", "format-autoreply")
    # Lowercased once: the command search and the rule table read the same text.
    lowered = (finding.diagnostic or "").lower()
    finding = _complete(finding, lowered)
    status = finding.status or ""
    if (finding.action in _DELIVERED_ACTIONS or finding.kind == "delivered"
            or status.startswith("2.")):
        return Verdict(finding, Classification.DELIVERED, "delivered", "action-delivered")
    if finding.reason in REASONS and finding.action != "delayed":
        # The reporting MTA classified it itself (PowerMTA's bounce category).
        reason = finding.reason
        assert reason is not None
        kind = (Classification.HARD if is_hard(reason, finding.status, finding.smtp_code)
                else Classification.SOFT)
        return Verdict(finding, kind, reason, "format-category")
    text = _CONTINUATION.sub(" ", lowered) if _CONTINUATION_HINT.search(lowered) else lowered
    plan = _plan(status, finding.smtp_code or "", finding.smtp_command or "")
    present = RULE_LITERALS(text) if plan.reads_text else frozenset()
    rule = _match(plan, text, present)
    context = ""  # the lowercased context, read only when the diagnostic is not enough
    if rule is not None and rule.reason == "userunknown" and finding.context:
        # "User unknown" while the notice says the mailbox is disabled or full: the
        # address exists (the safe, soft reading wins).
        context = finding.context.lower()
        if _SUSPENDED.found(context):
            rule = _SUSPEND_RULE
        elif _FULL_RULE.text_probe is not None and _FULL_RULE.text_probe.found(context):
            rule = _FULL_RULE
    if (rule is None or rule.fallback) and finding.context:
        # The diagnostic names no cause (only a status or code matched): read more.
        context = context or finding.context.lower()
        wide = f"{text} {context}"
        if plan.reads_text:
            # The literals of ``text`` are known: scan only what can hold others, from
            # the last characters of ``text`` where a literal crossing the gap starts.
            present = present.union(
                RULE_LITERALS(wide[max(0, len(text) + 1 - RULE_LITERALS.longest):]))
        wider = _match(plan, wide, present)
        if wider is not None and not wider.fallback:
            rule = wider
    if rule is not None:
        reason, rule_id = rule.reason, rule.id
    elif finding.action == "delayed":
        reason, rule_id = "expired", "action-delayed"
    elif text.strip():
        reason, rule_id = "onhold", "fallback-onhold"
    else:
        reason, rule_id = "undefined", "fallback-undefined"
    if reason == "userunknown" and finding.gateway and (
            rule_id != "userunknown-status" or finding.gateway == "amazon-ses-inbound"):
        # The gateway accepted the recipient, then relayed a refusal (like "user
        # unknown" after DATA) or answered with a receipt rule's template: the
        # address is not proven gone. An explicit 5.1.1 relayed by a plain gateway
        # still counts.
        reason, rule_id = "filtered", f"gateway-{finding.gateway}"
    if finding.action == "delayed":
        return Verdict(finding, Classification.DELAYED, reason, rule_id)
    if is_hard(reason, finding.status, finding.smtp_code):
        return Verdict(finding, Classification.HARD, reason, rule_id)
    return Verdict(finding, Classification.SOFT, reason, rule_id)


__all__ = ["HARD_REASONS", "classify", "complete", "is_hard", "match_rule"]
