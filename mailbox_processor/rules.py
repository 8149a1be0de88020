"""The classification rule table: what a diagnostic, status or reply code means.

Each :class:`Rule` maps a pattern to one reason word (Sisimai's vocabulary, so that
people who know Sisimai read our output without a mapping). Rules are tried in
table order and the first match wins, so the order *is* the policy:

1. per-cause rules in priority order, a cause's status-code rule beside its phrase
   rules (a full mailbox wins over "user unknown" wording; a 5.1.1 status wins over
   a vague "rejected");
2. the remaining causes, whose phrases are weaker evidence;
3. fallbacks on the status class and on the SMTP reply code.

Patterns run over the lowercased diagnostic (the server's words, unfolded). Each
rule has a stable ``id`` (stored with every bounce, so ``reclassify`` can tell what
changed) and a ``note`` saying where the phrase is seen. Hard or soft follows from
the reason alone (see :func:`mailbox_processor.classify.is_hard`), never from a
second table.

Phrase facts were gathered from the bounces of the MTAs and providers named in the
notes, RFC 3463 / RFC 5248 (status codes), provider postmaster pages, and the public
phrase knowledge collected by the Sisimai and flufl.bounce projects; the patterns
and their grouping are our own.

At import, each pattern is also cut into literal-keyed searches (:class:`Probe`) and
all their literals into one scanner (:data:`RULE_LITERALS`), which let
:func:`mailbox_processor.classify.match_rule` skip the alternatives that cannot
match. This is derived from the rows, never written by hand, and never changes
which rule matches (tests compare it with :meth:`Rule.matches`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from mailbox_processor.text import rarity, sre_parse

#: A bound ``re.Pattern.search``.
Search = Callable[[str], "re.Match[str] | None"]


def _class_end(pattern: str, start: int) -> int:
    """Index just past the character class opening at ``pattern[start] == "["``."""
    i = start + 1
    if pattern[i:i + 1] == "^":
        i += 1
    if pattern[i:i + 1] == "]":  # a "]" first in the class is a literal
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _top_level_bars(pattern: str) -> tuple[list[int], int | None]:
    """Positions of the ``|`` outside any group, and where the group opened at 0 ends."""
    bars: list[int] = []
    depth, i, first_close = 0, 0, None
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and first_close is None:
                first_close = i
        elif char == "|" and depth == 0:
            bars.append(i)
        i += 1
    return bars, first_close


def _alternatives(pattern: str) -> list[re.Pattern[str]]:
    """The top-level alternatives of ``pattern`` (``a|b`` or ``(?:a|b)``), compiled.

    ``search(a|b)`` finds a match exactly when ``search(a)`` or ``search(b)`` does,
    provided the pieces are self-contained: no capturing groups (no back-references
    across pieces), no global flags, each piece a valid pattern on its own (a cut
    inside a construct that the scan misreads leaves a piece that does not compile).
    Anything else is returned whole, as one alternative.
    """
    compiled = re.compile(pattern)
    if compiled.groups or compiled.flags != re.UNICODE:
        return [compiled]
    bars, first_close = _top_level_bars(pattern)
    body = pattern
    if not bars and pattern.startswith("(?:") and first_close == len(pattern) - 1:
        body = pattern[3:-1]  # the whole pattern is one non-capturing group
        bars, _close = _top_level_bars(body)
    if not bars:
        return [compiled]
    try:
        pieces = [re.compile(body[start + 1:end])
                  for start, end in zip([-1, *bars], [*bars, len(body)], strict=True)]
    except re.error:
        return [compiled]
    if any(piece.flags != compiled.flags for piece in pieces):
        return [compiled]
    return pieces


def _requirements(items: Any) -> list[frozenset[str]]:
    """Literal sets that every match of the parsed sequence ``items`` draws on.

    Every match contains at least one literal of each set. The sets come from what
    the sequence cannot match without: a run of consecutive literal characters, a
    group or a repeat at least once of a sub-sequence (its own sets), a branch all
    of whose alternatives have a set (the union of their best ones, see
    :func:`_best`). Anything else (character classes, ``.``, lookarounds, anchors,
    optional parts, flag changes such as ``(?i:...)``) adds nothing and ends a
    literal run, which keeps the answer conservative.
    """
    found: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in [*items, (None, None)]:  # the sentinel flushes the last run
        name = getattr(op, "name", "")  # the opcode's name: the same on every version
        if name == "LITERAL":
            run.append(chr(arg))
            continue
        if run:
            found.append(frozenset({"".join(run)}))
            run = []
        if name == "SUBPATTERN":
            _group, add_flags, del_flags, sub = arg
            if not add_flags and not del_flags:
                found.extend(_requirements(sub))
        elif name == "ATOMIC_GROUP":
            found.extend(_requirements(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and arg[0] >= 1:
            found.extend(_requirements(arg[2]))
        elif name == "BRANCH":
            best = [_best(_requirements(branch)) for branch in arg[1]]
            if all(best):
                found.append(frozenset().union(*best))
    return found


def _best(requirements: list[frozenset[str]]) -> frozenset[str]:
    """The set to file an alternative under, the one least often in a text.

    Longer literals are rarer; a set of several is hit more often than one literal,
    so doubling the set counts as one character less (``\bspf\b.{0,40}(?:fail|
    check|...)`` goes under ``spf``, not under four words). Empty when there is none.
    """
    return max(requirements, default=frozenset(),
               key=lambda literals: (min(map(len, literals)) - math.log2(len(literals)),
                                     -len(literals)))


class Probe:
    """``re.search(pattern, text) is not None``, skipping what literals rule out.

    A large alternation makes ``re`` try every alternative at every position of the
    text. Instead, each top-level alternative (:func:`_alternatives`) is filed under
    the literal(s) of its best requirement (:func:`_requirements`), and the
    alternatives filed under a literal are searched only when the text holds it: an
    alternative whose required literal is absent cannot match, so the answer is the
    one of the whole pattern. Alternatives with no required literal are filed under
    ``""``, present in every text.

    :ivar pattern: the pattern.
    :ivar steps: per literal, the search of the alternatives filed under it.
    :ivar literals: the literals of :attr:`steps`: the pattern cannot match a text
        that holds none of them.
    """

    __slots__ = ("literals", "pattern", "steps")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        filed: dict[str, list[re.Pattern[str]]] = {}
        for piece in _alternatives(pattern):
            best = frozenset({""})
            if not piece.flags & re.IGNORECASE:  # else its literals prove nothing
                best = _best(_requirements(sre_parse.parse(piece.pattern))) or best
            for literal in sorted(best):  # sorted: the same order on every run
                filed.setdefault(literal, []).append(piece)
        self.steps: dict[str, Search] = {
            literal: (pieces[0] if len(pieces) == 1 else re.compile(
                "(?:" + "|".join(piece.pattern for piece in pieces) + ")")).search
            for literal, pieces in filed.items()}
        self.literals = frozenset(self.steps)

    def found(self, text: str, present: AbstractSet[str] | None = None) -> bool:
        """Whether the pattern is found in ``text``.

        :param present: the literals of :attr:`literals` that are in ``text`` (and
            maybe others), when already known (from a :class:`LiteralScan`).
        """
        if present is None:
            for literal, search in self.steps.items():
                if literal in text and search(text) is not None:
                    return True
            return False
        for literal in self.literals.intersection(present):
            if self.steps[literal](text) is not None:
                return True
        return False


def _common_first(item: tuple[str, Any]) -> tuple[int, str]:
    """Sort key of a trie branch: its character, the commonest in bounce text first."""
    return -rarity(item[0]), item[0]


class LiteralScan:
    """Which of many literals occur in a text, found in one pass.

    Hundreds of ``literal in text`` tests cost more than one regex pass over the
    text with the literals arranged as a trie, which yields the longest literal
    starting at a position. The pass is an ordinary non-overlapping scan (a scan
    that tries every position for overlapping occurrences, with lookarounds, costs
    over a third more): after a literal found at ``i..j``, it goes on from ``j``.
    The literals starting at ``i`` or inside the one found and ending by ``j`` are
    those occurring in it (known in advance, per literal). Only a literal starting
    inside it and running past ``j`` (a *straddler*) could be missed: it starts with
    a suffix of the literal found and goes on with the character at ``j``, so the
    trie is matched again from that suffix only when such a literal exists (also
    known in advance). ``""`` is always present, as in every text.
    """

    def __init__(self, literals: Iterable[str]) -> None:
        self.literals = frozenset(literals) | {""}
        #: The length of the longest literal.
        self.longest = max(map(len, self.literals))
        trie: dict[str, Any] = {}
        for literal in self.literals - {""}:  # "" would make the regex match everywhere
            node = trie
            for char in literal:
                node = node.setdefault(char, {})
            node[""] = {}  # a literal ends here
        # The characters that go on from each proper prefix of a literal.
        onward: dict[str, set[str]] = {}
        for literal in self.literals:
            for end in range(1, len(literal)):
                onward.setdefault(literal[:end], set()).add(literal[end])
        finder = re.compile(self._regex(trie) if trie else "(?!)")  # (?!): never matches
        self._finditer, self._match = finder.finditer, finder.match
        #: Per literal, the literals that occur in it ("" among them).
        self._inside = {literal: self._occurring(literal, onward) for literal in self.literals}
        #: Per literal, its offsets where a straddler may start, each with the
        #: characters that can follow the literal there.
        self._straddles = {literal: tuple((start, frozenset(onward[literal[start:]]))
                                          for start in range(1, len(literal))
                                          if literal[start:] in onward)
                           for literal in self.literals}
        self._none = frozenset({""})

    def _occurring(self, text: str, onward: dict[str, set[str]]) -> frozenset[str]:
        """The literals in ``text`` (short: a literal's own), given the proper
        prefixes of the literals (the keys of ``onward``), which end each walk early."""
        found = {""}
        for start in range(len(text)):
            for end in range(start + 1, len(text) + 1):
                piece = text[start:end]
                if piece in self.literals:
                    found.add(piece)
                if piece not in onward:  # no literal goes on from here
                    break
        return frozenset(found)

    @classmethod
    def _regex(cls, node: dict[str, Any]) -> str:
        """The trie below ``node`` as a regex that prefers longer literals.

        The branches start with distinct characters, so their order changes no match;
        ``re`` tries them in turn, so the most common characters come first. Where a
        literal ends, an empty last branch (``(?:...|)``, which ``re`` runs faster than
        the same ``(?:...)?``) lets the longest literal win.
        """
        branches = [re.escape(char) + cls._regex(child)
                    for char, child in sorted(node.items(), key=_common_first) if char]
        if not branches:
            return ""
        if "" in node:
            return f"(?:{'|'.join(branches)}|)"
        return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"

    def __call__(self, text: str) -> frozenset[str]:
        """The literals that occur in ``text``."""
        inside, straddles = self._inside, self._straddles
        found: list[frozenset[str]] = []
        for occurrence in self._finditer(text):
            literal = occurrence[0]
            found.append(inside[literal])
            end = occurrence.end()
            if straddles[literal] and end < len(text):
                after, start = text[end], occurrence.start()
                for offset, onward in straddles[literal]:
                    if after in onward:
                        straddler = self._match(text, start + offset)
                        if straddler is not None:  # (its prefixes are inside it)
                            found.append(inside[straddler[0]])
        return frozenset().union(*found) if found else self._none


@dataclass(frozen=True)
class Rule:
    """One classification rule; every given condition must match.

    :ivar id: stable identifier, stored with each verdict.
    :ivar reason: the reason word this rule yields.
    :ivar text: regex searched in the lowercased diagnostic.
    :ivar status: regex matched against the whole RFC 3463 status (``5.1.1``).
    :ivar code: regex matched against the whole SMTP reply code (``550``).
    :ivar command: regex matched against the SMTP command that failed (``RCPT``,
        ``DATA``, ...; the empty string when the bounce does not say).
    :ivar unless: regex that must *not* be found in the diagnostic (a status code
        that the server's words contradict).
    :ivar fallback: a last-resort rule (status class, bare reply code): the
        classifier may look at wider context before settling for it.
    :ivar note: where the pattern comes from (MTA, provider, RFC).
    """

    id: str
    reason: str
    text: str | None = None
    status: str | None = None
    code: str | None = None
    command: str | None = None
    unless: str | None = None
    fallback: bool = False
    note: str = ""
    text_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    status_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    code_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    command_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    unless_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    #: ``text`` and ``unless`` as :class:`Probe`, for the fast matcher
    #: (:func:`mailbox_processor.classify.match_rule`).
    text_probe: Probe | None = field(default=None, compare=False, repr=False)
    unless_probe: Probe | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Compile once, at import time (frozen dataclass: set through object).
        if self.text is not None:
            object.__setattr__(self, "text_re", re.compile(self.text))
            object.__setattr__(self, "text_probe", Probe(self.text))
        if self.status is not None:
            object.__setattr__(self, "status_re", re.compile(self.status))
        if self.code is not None:
            object.__setattr__(self, "code_re", re.compile(self.code))
        if self.command is not None:
            object.__setattr__(self, "command_re", re.compile(self.command))
        if self.unless is not None:
            object.__setattr__(self, "unless_re", re.compile(self.unless))
            object.__setattr__(self, "unless_probe", Probe(self.unless))

    def matches(self, text: str, status: str, code: str, command: str = "") -> bool:
        """True when every condition of the rule holds (text is lowercased).

        The plain reading of the rule, kept as the reference that the fast matcher
        (:func:`mailbox_processor.classify.match_rule`) is tested against.
        """
        if self.command_re is not None and not self.command_re.fullmatch(command):
            return False
        if self.status_re is not None and not self.status_re.fullmatch(status):
            return False
        if self.code_re is not None and not self.code_re.fullmatch(code):
            return False
        if self.text_re is not None and not self.text_re.search(text):
            return False
        return not (self.unless_re is not None and self.unless_re.search(text))


def _any(*phrases: str) -> str:
    """Join alternatives into one non-capturing group."""
    return "(?:" + "|".join(phrases) + ")"


#: "This address does not exist" in the words of many servers.
USER_UNKNOWN = _any(
        r"user(?:name)? (?:is )?unknown", r"unknown (?:user|recipient|local[- ]part|mailbox|"
        r"address|e-?mail address|account)", r"no such (?:user|mailbox|recipient|account|"
        r"address|person|local user)", r"(?:user|mailbox|recipient|address|account|addressee)"
        r" (?:\S+ )?(?:does not|doesn't|did not) exist",
        r"(?:<[^<>\s]+@[^<>\s]+>|[^<>\s]+@[^<>\s]+) does not exist",
        r"(?:user|mailbox|recipient|address|account) (?:\S+ )?(?:was )?not found",
        r"invalid (?:recipient|mailbox|user|address|account|e-?mail)",
        r"(?:recipient|address|mailbox|user)(?: address)? (?:is )?invalid",
        r"not a valid (?:mailbox|recipient|user|address)", r"bad destination (?:mailbox )?address",
        r"mailbox (?:is )?(?:unavailable|not available|not present|inactive)",
        r"requested action not taken: mailbox unavailable", r"mailbox unavailable",
        r"recipient (?:address )?rejected: (?:user unknown|unknown user|invalid user|"
        r"access denied|undeliverable address|user .* does not exist)",
        r"user unknown in (?:\S+ )?(?:relay|virtual|local)? ?(?:mailbox|alias|recipient)",
        r"not (?:a )?(?:known|valid) (?:user|recipient)", r"bad (?:recipient|address)\b",
        r"address (?:unknown|not present in directory|does not exist|not found)",
        r"no mailbox (?:here|found|by that name)", r"no account by that name",
        r"recipient not (?:found|exist|ok)", r"recipient unknown", r"(?:badrcptto|validrcptto)",
        r"sorry, no mailbox here", r"user(?: \S+)? not (?:found|exist|known|active)",
        r"there is no one at this address", r"this address no longer accepts mail",
        r"email account that you tried to reach does not exist", r"account .{0,60}does not exist",
        r"resolver\.adr\.recipient ?notfound", r"recipientnotfound", r"unknown or illegal alias",
        r"nessun utente", r"utilisateur inconnu", r"destinataire inconnu", r"no existe",
        r"unbekannt", r"existiert nicht", r"unrouteable address .{0,20}user",
        r"non[- ]?existent (?:user|address|mailbox)", r"no valid recipients",
        r"not our customer", r"address lookup failed", r"mailbox not found",
        r"this user doesn't have a .* account", r"archived recipient",
        r"is not an active address", r"user doesn't exist", r"no such address",
        r"recipient address rejected: .*not listed", r"unknown address",
    )

RULES: tuple[Rule, ...] = (
    # -- 1. strong causes, in priority order ------------------------------------------
    Rule("mailboxfull-status", "mailboxfull", status=r"[45]\.2\.2",
         note="RFC 3463 X.2.2 mailbox full"),
    Rule("mailboxfull-text", "mailboxfull", text=_any(
        r"mailbox (?:is )?full", r"mail ?box (?:size limit )?exceeded", r"full mailbox",
        r"over (?:the )?(?:allowed )?quota", r"quota (?:exceeded|violation|full)",
        r"exceed(?:s|ed|ing)? (?:the |their |its )?(?:mailbox |storage |disk )?quota",
        r"(?:disk|mail|mailbox|storage) quota", r"is over (?:disk )?quota", r"overquota",
        r"user over quota", r"not enough (?:storage |disk )?space", r"mailbox exceeds allowed size",
        r"does not have enough space", r"exceeded storage allocation",
        r"mailbox has exceeded", r"mailfolder is full", r"maildir over quota",
        r"too much mail data", r"too many messages (?:on the server|in (?:the|this) mailbox)",
        r"user's space has been used up", r"boite du destinataire pleine",
        r"mailbox would exceed", r"mail file size exceeds", r"inbox is full",
        r"recipient reached disk quota", r"exceeding receiving limits",
        r"postfach (?:ist )?voll", r"buzón lleno", r"casella piena",
    ), unless=r"throttling|sending (?:rate|quota)|daily (?:message|sending) quota",
        note="Postfix/Dovecot/Exim/qmail/Exchange/Yahoo/Gmail over-quota wording "
             "(not a sender's own sending quota: Amazon SES 'Throttling failure')"),
    Rule("mesgtoobig-recipient", "mesgtoobig", text=r"recipsizelimit|too large for this recipient",
         note="Exchange 5.2.3 RESOLVER.RST.RecipSizeLimit"),
    Rule("exceedlimit-status", "exceedlimit", status=r"[45]\.2\.3",
         note="RFC 3463 X.2.3 message length exceeds administrative limit"),
    Rule("mesgtoobig-status", "mesgtoobig", status=r"[45]\.3\.4|5\.7\.16|4\.7\.16",
         note="RFC 3463 X.3.4 message too big for system"),
    Rule("mesgtoobig-text", "mesgtoobig", text=_any(
        r"message (?:file )?too big", r"message size exceeds", r"max(?:imum)? message size",
        r"exceeded maximum inbound message size", r"message too large for",
        r"message length exceeds", r"size limit", r"taille limite du message",
        r"message is too large", r"line limit exceeded", r"size exceeds (?:the )?maximum",
        r"exceeds? (?:the )?(?:maximum|fixed) (?:allowed )?(?:message )?size",
    ), note="Sendmail/Postfix/Exchange size limits (552 5.3.4)"),
    Rule("exceedlimit-text", "exceedlimit", text=_any(
        r"message header size exceeds limit", r"message too large",
    ), note="qmail/Exim per-recipient size limits"),
    Rule("suspend-status", "suspend", status=r"[45]\.7\.13|4\.2\.1",
         note="RFC 3463 X.7.13 user account disabled"),
    Rule("suspend-text", "suspend", text=_any(
        r"(?:account|mailbox|user) (?:is |has been |currently )?(?:suspended|disabled|"
        r"deactivated|frozen|inactive|locked|blocked by the administrator|closed)",
        r"is a deactivated mailbox", r"temporar(?:il)?y (?:locked|inactive|disabled)",
        r"invalid/inactive user", r"recipient suspend", r"boite du destinataire archivee",
        r"email account that you tried to reach is disabled", r"this mailbox is disabled",
        r"account (?:has been )?disabled or discontinued", r"account is locked",
        r"mailbox unavailable or access denied", r"user suspended",
        r"recipient rejected: temporarily inactive", r"is currently suspended",
        r"account expired", r"inactive (?:account|mailbox|user)",
        r"recipient account is blocked", r"compte du destinataire est bloque",
        r"has been suspended",
    ), note="Gmail/QQ/163/Yahoo/Exim disabled or suspended accounts"),
    Rule("hasmoved-status", "hasmoved", status=r"[45]\.1\.6|5\.7\.17|5\.7\.18",
         note="RFC 3463 X.1.6 mailbox has moved; RFC 7293 X.7.17/18"),
    Rule("hasmoved-text", "hasmoved", text=_any(
        r"has been replaced by", r"address (?:has )?(?:moved|changed)", r"user has moved",
        r"mailbox has moved", r"no longer (?:with|at) (?:the )?(?:company|organi[sz]ation)",
    ), note="Sendmail 'User has moved; please try <new>' / 551 replies"),
    Rule("norelaying-text", "norelaying", text=_any(
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited|not allowed)",
        r"not (?:permitted|allowed) to relay", r"unable to relay", r"as a relay",
        r"insecure mail relay", r"not an open relay", r"this system is not configured to relay",
        r"relaying mail to ", r"we don't handle mail for",
        r"not a gateway", r"not local host", r"that domain isn't in my list of allowed rcpthost",
        r"requires authentication when attempting to send to a non-local",
        r"relay not permitted", r"no relaying", r"cannot relay",
    ), note="Sendmail 'Relaying denied', Postfix 'Relay access denied', qmail rcpthosts"),
    Rule("speeding-status", "speeding", status=r"4\.7\.28",
         note="Gmail 421 4.7.28: rate of mail from the sending IP/domain too high"),
    Rule("speeding-recipient", "speeding", text=r"receiving mail at a rate that prevents",
         note="Gmail 5.2.1/4.2.1: the recipient gets mail faster than it accepts it"),
    Rule("speeding-client", "speeding", text=_any(
        r"too much mail from", r"too many messages from (?:your|this) (?:ip|host|client)",
    ), note="Postfix anvil/postscreen client rate limits: we send too fast"),
    Rule("authfailure-text", "authfailure", text=_any(
        r"\bspf\b.{0,40}(?:fail|check|validation|not pass)", r"(?:fail|failed) spf",
        r"\bdkim\b.{0,40}(?:fail|invalid|no (?:valid )?signature|not (?:pass|valid))",
        r"\bdmarc\b.{0,60}(?:fail|reject|policy)", r"authentication checks? failed",
        r"is not allowed to send (?:mail )?from", r"sender (?:address )?authentication",
        r"not authorized to send on behalf", r"does not designate .* as permitted sender",
        r"does not have authentication information", r"fails to pass authentication",
        r"unauthenticated email from", r"email authentication requirements",
        r"message failed (?:dkim|spf|dmarc)", r"per it's spf record",
    ), note="Gmail 5.7.26/5.7.27, Microsoft 5.7.23/5.7.509, Yahoo DMARC, SPF/DKIM/DMARC"),
    Rule("authfailure-status", "authfailure", status=r"5\.7\.(?:2[0-36]|509|515)",
         note="RFC 7372 X.7.20-23 DKIM/SPF failures, X.7.26 multiple auth failures"),
    Rule("mailererror-local", "mailererror", text=_any(
        r"procmail:", r"maildrop:", r"command died with status", r"pipe to \|", r"x-unix;",
        r"\(reason: \d+\)",
    ), note="local delivery agents failing (procmail, maildrop, pipes): Postfix/Sendmail"),
    Rule("requireptr-text", "requireptr", text=_any(
        r"\bptr\b", r"reverse (?:dns|lookup|name)", r"rdns", r"cannot find your hostname",
        r"cannot resolve your address", r"(?:client|ip) (?:host )?name lookup failed",
        r"no dns (?:a|ptr)", r"hostname (?:does not|doesn't) (?:resolve|match)",
        r"does not have a (?:valid )?(?:reverse|hostname)", r"unresolvable (?:client|address)",
        r"fix reverse dns", r"custom reverse dns", r"dns ptr resource record",
        r"ip name lookup failed", r"reverse (?:path|hostname)",
        r"forward.confirmed", r"fcrdns", r"mismatches client ip", r"invalid rdns",
        r"unverifi?y?able sending ips?",
        r"ip name lookup failed",
    ), note="Postfix reject_unknown_client_hostname, Gmail/Yahoo/AOL PTR requirements"),
    Rule("requireptr-status", "requireptr", status=r"[45]\.7\.25",
         note="RFC 7372 X.7.25 reverse DNS validation failed"),
    Rule("blocked-connect", "blocked", command="CONN|HELO|EHLO",
         note="refused at connection or greeting time: about our host, not the recipient"),
    Rule("securityerror-auth", "securityerror", text=_any(
        r"unauthenticated senders not allowed", r"authentication (?:is )?required",
        r"you don'?t authenticate", r"must (?:be )?authenticat",
    ), note="SMTP AUTH demanded by the receiver (a sender-side setup problem)"),
    Rule("policyviolation-early", "policyviolation", text=_any(
        r"for policy reasons", r"denied by policy", r"local policy", r"policy violation",
        r"organi[sz]ation(?:al)? (?:policy|settings)",
    ), note="receiver policy stated outright (Exchange transport rules, Postfix checks)"),
    Rule("blocked-client", "blocked", text=_any(
        r"client host (?:\S+ )?(?:blocked|rejected)", r"adresse ip source bloquee",
        r"my name was rejected", r"helo command rejected", r"too many invalid recipients",
        r"invalid ip for sending mail",
        r"(?:your|sending|source) ip (?:\S+ )?(?:is |has been )?"
        r"(?:blocked|blacklisted|listed|banned)", r"please use the smtp server of your isp",
        r"(?:is )?on our block ?list", r"blocked using ", r"listed (?:in|at|on) (?:the )?\S*"
        r"(?:spamhaus|spamcop|sorbs|barracuda|dnsbl|rbl)",
    ), note="the sending host refused: Orange/Wanadoo, qmail 'my name was rejected', Exim"),
    Rule("notcompliantrfc-text", "notcompliantrfc", text=_any(
        r"(?:violat\w*|not compliant with|non-?compliant with|does not comply with) "
        r"(?:the )?(?:rfc ?(?:5322|2822|822)|internet standards)",
        r"rfc ?(?:5322|2822) (?:compliant|compliance|violation|section)",
        r"not (?:rfc ?\d*|standards?)[- ]compliant",
        r"multiple (?:from|to|subject|date|message-id) headers?",
        r"messages with multiple addresses", r"multiple addresses in from",
        r"duplicate (?:from|to|subject|date|message-id) header", r"headers? (?:are|is) not rfc",
        r"missing (?:from|date|message-id) header", r"bare (?:lf|newline)",
        r"not compliant with (?:rfc|internet standards)",
    ), note="Gmail 5.7.1/5.6.x RFC 5322 non-compliance, Exchange header checks"),
    Rule("badreputation-text", "badreputation", text=_any(
        r"(?:low|poor|bad) (?:ip |domain |sender |email )?reputation",
        r"reputation (?:of|for|score|problem|is)", r"ip/domain reputation", r"\bip reputation\b",
        r"unusual rate of unsolicited mail", r"likely unsolicited mail",
        r"suspicious due to the very low reputation",
        r"our system has detected that this message is likely unsolicited", r"\[tss0[14]\]",
        r"temporarily deferred due to (?:unexpected volume|user complaints)",
    ), note="Gmail 4.7.0/5.7.1 reputation, Microsoft/Yahoo reputation blocks"),
    Rule("systemfull-disk", "systemfull", text=_any(
        r"insufficient disk space", r"insufficient system storage", r"mail system full",
    ), note="Sendmail 452 4.4.5 / Exchange 452 4.3.1: the receiving system is out of space"),
    Rule("rejected-sender", "rejected", text=_any(
        r"sender (?:email )?address rejected", r"sender (?:verify|verification) failed",
        r"domain of sender address", r"sender domain (?:is empty|must exist|not found|"
        r"does not exist|is not valid)",
    ), note="Postfix reject_unknown_sender_domain / Exim sender verify: our envelope sender"),
    Rule("hostunknown-domain", "hostunknown", text=_any(
        r"domain \S+ does not exist", r"dns domain .{1,80} does not exist",
    ), note="Exchange 5.4.310 'DNS domain ... does not exist', Exim"),
    Rule("rejected-mailfrom", "rejected", command="MAIL", unless=_any(
        r"too much mail", r"rate", r"insufficient", r"resources", r"starttls", r"\btls\b",
    ),
         note="refused at MAIL FROM: the sender, not the recipient (Exim/Postfix transcripts)"),
    Rule("networkerror-dns", "networkerror", text=_any(
        r"name service error.{0,80}(?:try again|malformed|unexpected|timed out)",
        r"host not found, try again", r"host name lookup failure",
        r"malformed or unexpected name server reply", r"dns (?:lookup )?(?:timeout|temporary)",
    ), note="temporary DNS failures: Postfix 'Name service error', Sendmail 'lookup failure'"),
    Rule("notaccept-nullmx", "notaccept", text=_any(
        r"null ?mx", r"(?<!server )does not accept mail(?! from)",
        r"no mx (?:record )?found for domain",
        r"indicated no smtp service", r"couldn't find a mail exchanger or ip address",
    ),
         note="RFC 7505 null MX stated in words (X.1.10 is also Microsoft's 'not found')"),
    Rule("userunknown-status", "userunknown", status=r"[45]\.1\.(?:[0135]|1\d|\d{3})",
         command="(?!MAIL$).*",
         unless=_any(r"blacklist", r"block ?list", r"listed (?:in|at|on)", r"spamhaus",
                     r"too many", r"recipient preferences", r"rate limit", r"relay"),
         note="RFC 3463 X.1.1 bad destination mailbox (X.1.0/X.1.3 alike)"),
    Rule("userunknown-directory", "userunknown", text=_any(
        r"not listed in (?:the )?(?:domino |public )?(?:directory|address book)",
        r"invalid final delivery userid", r"recipient name is not recognized",
        r"no valid recipients for this mm", r"^unknown user:",
        r"address couldn't be found\.",
        r"ディレクトリには見つかりません", r"mail\.local: unknown user",
    ), note="the gateway's own directory says the address does not exist (Domino, IMail, "
            "Exchange 2003, Verizon MMS, Office 365 'couldn't be found', Sendmail mail.local)"),
    Rule("userunknown-text", "userunknown", text=USER_UNKNOWN, command="RCPT",
         note="Postfix/Sendmail/Exim/qmail/Exchange/Gmail/Yahoo/Domino unknown-user wording"),
    # "User unknown" answered to DATA: the recipient was accepted at RCPT time, so it
    # exists and a filter refused the message (a soft, per-recipient refusal).
    Rule("filtered-after-data", "filtered", text=USER_UNKNOWN, command="(?!RCPT$|MAIL$).*",
         note="Postfix '(in reply to end of DATA command)', Sendmail '>>> DATA' transcripts"),
    Rule("filtered-text", "filtered", text=_any(
        r"user reject", r"recipient(?:'s)? (?:only accepting|refuses?|preferences)",
        r"refused due to recipient preferences", r"has restricted sms e-mail",
        r"is not accepting any mail", r"message rejected due to user rules",
        r"resolver\.rst\.notauthorized", r"this account is protected by",
        r"you have been blocked by the recipient", r"bounced address",
        r"due to extended inactivity", r"not found recipient account",
        r"refuse to receive mail", r"rejected by (?:the )?recipient(?! domain)",
        r"sender (?:is )?(?:not )?(?:on|in) (?:the )?recipient'?s? (?:block|white|safe)",
        r"restricted to (?:members|internal)",
    ), note="per-recipient filters: AOL, Facebook, AT&T, Exchange NotAuthorized, Willcom"),
    Rule("filtered-status", "filtered", status=r"5\.2\.[014]|5\.1\.4|4\.2\.4",
         note="RFC 3463 X.2.1 mailbox disabled / X.2.0 other mailbox status"),
    Rule("rejected-text", "rejected", text=_any(
        r"sender (?:address )?(?:rejected|blacklisted|not (?:pre-?approved|allowed|valid|"
        r"permitted))", r"invalid sender", r"sender (?:verify|verification) failed",
        r"domain of sender address", r"sender domain (?:is empty|must exist|not found|"
        r"does not exist|is not valid)", r"bogus mail from", r"null sender",
        r"empty envelope sender", r"returned mail not accepted here", r"no third-party dsns",
        r"access denied \(in reply to mail from command\)", r"in reply to mail from command",
        r"after mail from", r"mail from:? .{0,40}(?:rejected|refused|denied)",
        r"unroutable sender", r"sender address has been blacklisted", r"sender is spammer",
        r"sender is in my black list", r"administrative prohibition",
        r"batv (?:failed|validation|defense)", r"unsigned dsn",
        r"this server does not accept mail from", r"not allowed to post to this",
        r"mail from not owned by user", r"email address is not verified",
        r"fully qualified email address required", r"envelope blocked",
        r"your access to submit messages to this e-mail system has been rejected",
        r"you are sending to/from an address that has been blacklisted",
        r"delivery not authorized, message refused", r"emetteur invalide",
        r"rule imposed mailbox access for", r"sender rejected",
        r"denied by secumail valid-address-filter", r"is not a registered gateway user",
        r"\[bouncedeny\]", r"backscatter", r"sender was rejected",
        r"recipient addresses rejected ?: access denied",
        r"permission to post", r"groups\.google\.com/support",
        r"グループにメッセージを投稿する権限", r"customfromdenied",
    ), note="MAIL FROM-stage rejections: Exim sender verify, Postfix/MailMarshal/McAfee"),
    Rule("hostunknown-status", "hostunknown", status=r"5\.1\.2|5\.4\.4",
         note="RFC 3463 X.1.2 bad destination system address / X.4.4 unable to route"),
    Rule("hostunknown-text", "hostunknown", text=_any(
        r"host (?:or domain name )?(?:not found|unknown)", r"unknown host", r"host unreachable",
        r"domain (?:does not exist|is not reachable|must exist|not found|unknown|name not found)",
        r"no such domain", r"name or service not known", r"unrout(?:e)?able (?:address|domain)",
        r"mail domain mentioned in email address is unknown", r"unknown domain",
        r"recipient domain must exist", r"the account or domain may not exist",
        r"553 \S+ does not exist", r"nxdomain", r"domain \S+ does not accept",
        r"no mx (?:or a )?records? (?:for|found)", r"dns (?:lookup|error).{0,30}(?:domain|host)",
        r"host name lookup failure", r"couldn't find any host named",
    ), note="Sendmail 'Host unknown', Postfix 'Host or domain name not found', Exim"),
    Rule("spamdetected-text", "spamdetected", text=_any(
        r"\bspam\b(?! ?(?:house|haus))", r"unsolicited", r"bulk (?:e-?mail|mail)",
        r"spamassassin", r"content filter rejection", r"considered as spam",
        r"looks like spam", r"message (?:content )?(?:filtered|rejected as spam)",
        r"blacklisted url", r"uribl", r"surbl", r"mail content denied", r"junk mail",
        r"probable spam", r"high probability of", r"mass mailer",
        r"rejecting (?:banned|mail) content", r"\bube\b", r"spam classification",
        r"\bofr_506\b",
        r"rejected for policy reasons", r"because of unacceptable content",
        r"recurrent pattern detection", r"classified as bulk",
    ), note="SpamAssassin/Exim/Postfix content filters, Gmail/Yahoo/Mail.ru spam rejections"),
    Rule("contenterror-media", "contenterror", status=r"[45]\.6\.\d+",
         note="RFC 3463 X.6.x media errors named by the status itself"),
    Rule("spamdetected-content", "spamdetected", text=r"message content rejected",
         note="content filters (Sendmail milters, Amavis): a 5.7.1 'message content rejected'"),
    Rule("speeding-text", "speeding", text=_any(
        r"(?<!connection )rate limit(?:ed|ing)?", r"sending rate",
        r"too many (?:messages|emails|mails)",
        r"too many recipients this hour",
        r"(?:exceed(?:ed|s)?|over) (?:the )?(?:hourly|daily|per-?hour|max(?:imum)?) "
        r"(?:sending )?(?:limit|rate|emails)", r"max emails per hour",
        r"throttl", r"receiving mail at a rate that prevents",
        r"temporarily deferred due to (?:unexpected )?volume", r"slow down",
        r"4\.7\.28", r"try again later.{0,40}rate", r"received too many", r"burst",
    ), note="Gmail 4.7.28, Yahoo TSS04, Microsoft 4.7.650, SendGrid throttling"),
    Rule("toomanyconn-text", "toomanyconn", text=_any(
        r"too many (?:connections|concurrent|smtp sessions|errors from your ip|recipients)",
        r"connection frequency limited", r"too many open connections",
        r"throttling failure", r"max emails per hour",
        r"connection (?:rate )?limit", r"maximum connection limit",
        r"exceeds per-domain connection limit", r"trop de connexions",
        r"we have already made numerous attempts",
    ), note="Sendmail daemon.c, Microsoft, Free.fr, docomo connection limits"),
    Rule("toomanyconn-status", "toomanyconn", status=r"[45]\.5\.3",
         note="RFC 3463 X.5.3 too many recipients"),
    Rule("networkerror-connect", "networkerror", text=_any(
        r"(?:wasn't|was not|unable to|could not) (?:able to )?establish an? smtp connection",
        r"forwarding loop", r"routing loop", r"hop count exceeded",
        r"unrout(?:e)?able mail domain",
        r"dns query failed",
    ), note="qmail '(#4.4.1) wasn't able to establish an SMTP connection', Exchange 5.4.312"),
    Rule("expired-message", "expired", text=_any(
        r"message expired", r"delivery time expired", r"unable to deliver in \d+ minutes",
    ), note="Exchange 5.4.316 'Message expired', Amazon WorkMail"),
    Rule("expired-greylisted", "expired", text=r"grey ?list|gray ?list",
         note="greylisting that never let the message through: Postgrey, Exim, Gmail"),
    Rule("blocked-status", "blocked", status=r"4\.7\.1|4\.7\.2",
         note="RFC 3463 X.7.1 delivery not authorized (temporary: an IP block)"),
    Rule("blocked-text", "blocked", text=_any(
        r"blacklist", r"black list", r"blocklist", r"block list", r"\bdnsbl\b", r"\brbl\b",
        r"spamhaus", r"spamcop", r"barracuda", r"sorbs",
        r"listed (?:in|at|on|by) (?:the )?\S*(?:bl\b|black|block|rbl|dnsbl|spam)",
        r"blocked (?:using|by|for|due|because|-)", r"(?:ip(?: address)?|host|server|network|"
        r"connection)s? (?:\S+ )?(?:is |has been |was )?(?:blocked|banned|"
        r"rejected|denied|not allowed)", r"access denied", r"connection refused by",
        r"client host (?:\S+ )?(?:rejected|blocked)", r"helo command rejected",
        r"not currently accepting mail from your ip", r"dynamic ip", r"dial-?up",
        r"residential", r"go away", r"hosts with dynamic ip", r"banned sending ip",
        r"your ip", r"your (?:mail )?server", r"sending (?:ip|host|mta)",
        r"mail from \d+\.\d+\.\d+\.\d+ refused", r"poor email reputation",
        r"esmtp not accepting connections", r"connection (?:dropped|reset by peer)",
        r"ip \d+\.\d+\.\d+\.\d+", r"please use the smtp server of your isp",
        r"temporarily deferred due to user complaints", r"\bblocked\b",
        r"message from \S+ rejected based on blacklist",
    ), note="IP/host blocks: DNSBLs, Microsoft S3150, Yahoo TS0x, Earthlink, AT&T"),
    # -- 2. weaker causes ------------------------------------------------------------
    Rule("virusdetected-text", "virusdetected", text=_any(
        r"virus", r"malware", r"infected", r"potentially executable attachment",
        r"prohibited virus", r"malicious",
    ), note="ClamAV/Exim/Amavis virus rejections"),
    Rule("policyviolation-text", "policyviolation", text=_any(
        r"polic(?:y|ies)", r"illegal attachment", r"members-only list", r"closed mailing list",
        r"organizational settings", r"organization policy", r"header error",
        r"protocol violation", r"not subscribed to this group", r"captcha",
        r"containing images or other attachments",
        r"prohibited (?:attachment|file)", r"attachments? (?:are |is )?not (?:allowed|permitted)",
        r"blocked (?:file|attachment) type", r"low priority",
    ), note="local policy rejections: Exchange transport rules, Google Groups, AOL"),
    Rule("securityerror-text", "securityerror", text=_any(
        r"authentication (?:required|failure|failed|credentials invalid|turned on)",
        r"unauthenticated senders", r"not authorized to (?:send|perform)",
        r"tls required", r"encryption (?:needed|required)", r"starttls",
        r"executable files are not allowed", r"account not subscribed to ses",
        r"verification failure", r"authentification requise", r"is a dead domain",
        r"you don'?t authenticate", r"must (?:be )?authenticat",
        r"certificate", r"security (?:policy|reasons|check)",
    ), note="SMTP AUTH/TLS requirements: Postfix, SendGrid, Amazon SES"),
    Rule("expired-queue", "expired", text=_any(
        r"in the queue too long", r"still undelivered after", r"will be retried for",
        r"will keep trying", r"message expired", r"delivery time expired",
        r"unable to deliver in \d+ minutes", r"delivery failed \d+ attempts",
        r"connection timed out", r"did not accept our requests to connect",
        r"host not reachable", r"retry timeout exceeded", r"could not be delivered for",
        r"timed out while", r"no answer from host",
    ), note="queue lifetime ran out: Postfix/Exim/Sendmail warnings, Gmail, Exchange 5.4.316"),
    Rule("systemerror-text", "systemerror", text=_any(
        r"(?:mail|forwarding|routing|aliasing/forwarding) loop", r"loops? back to myself",
        r"loop (?:was )?(?:found|detected)",
        r"internal (?:server )?error", r"local (?:configuration )?error",
        r"configuration error", r"system config error", r"misconfigured",
        r"temporary local problem", r"queue file write error", r"interrupted system call",
        r"can't create user output file", r"could not load drd", r"transaction failed",
        r"service (?:currently )?(?:not available|unavailable)", r"timeout waiting for input",
        r"error while being processed", r"local error in processing", r"system error",
        r"server error", r"try again later",
    ), note="mail loops and remote/local system faults: Sendmail, Exim, Exchange"),
    Rule("networkerror-text", "networkerror", text=_any(
        r"no route to host", r"network (?:is )?unreachable", r"too many hops",
        r"hop count exceeded", r"host (?:is )?unreachable",
        r"unable to resolve route", r"malformed (?:or unexpected )?name server reply",
        r"dns records for the destination computer could not be found",
        r"could not connect", r"connection refused", r"name server", r"dns (?:error|failure|"
        r"lookup)", r"host not found, try again", r"lost connection", r"connection (?:closed|"
        r"lost)", r"unroutable mail domain", r"message (?:probably in a routing "
        r")?loop", r"message looping", r"maximum forwarding loop count", r"tls (?:handshake|"
        r"negotiation) failed",
    ), note="connect/DNS failures: Sendmail, Postfix, Exchange 4.4.x"),
    Rule("expired-text", "expired", text=_any(
        r"expired", r"timed? ?out", r"giving up", r"gave up", r"too long", r"delivery time",
        r"has not been collected", r"delivery attempts will continue",
        r"have been failing for a long time", r"has been delayed", r"could not be delivered "
        r"(?:for|within)", r"retry time not reached", r"multiple retries",
        r"not reachable within the allowed queue period", r"could not find a gateway",
        r"server did not respond", r"failed to deliver to domain", r"queue (?:period|lifetime)",
        r"in the queue", r"retry timeout exceeded", r"delayed",
    ), note="queue lifetime expiry: Postfix maximal_queue_lifetime, Exim retry, Sendmail"),
    Rule("contenterror-text", "contenterror", text=_any(
        r"header size exceeds", r"8-bit data in message header", r"mime", r"base64",
        r"invalid (?:message )?(?:content|header)", r"binary content", r"too many received",
        r"message header size, or recipient list",
    ), note="malformed content: Exchange/Gmail header and MIME checks"),
    Rule("systemfull-status", "systemfull", status=r"[45]\.3\.1|4\.4\.5",
         note="RFC 3463 X.3.1 mail system full"),
    Rule("systemfull-text", "systemfull", text=_any(
        r"mail system full", r"exceeded storage allocation", r"system (?:is )?full",
        r"insufficient disk space",
        r"insufficient system storage", r"out of (?:disk|storage)",
    ), note="Exchange 452 4.3.1 insufficient system resources"),
    Rule("notaccept-status", "notaccept", status=r"[45]\.3\.2|5\.1\.10|5\.7\.27",
         note="RFC 7505 null MX (X.1.10, X.7.27), X.3.2 system not accepting"),
    Rule("notaccept-text", "notaccept", text=_any(
        r"does not accept mail", r"null ?mx", r"no mx record found", r"accepts? no mail",
        r"(?:system|host|domain|server|e?smtp) (?:is )?not accepting (?:network )?"
        r"(?:messages|mail)",
        r"no route for current request",
        r"name server: \.: host not found",
    ), note="RFC 7505 null MX, Sendmail 'host does not accept mail', iCloud"),
    Rule("mailererror-text", "mailererror", text=_any(
        r"procmail", r"maildrop", r"command (?:failed|died|output)", r"exit(?:ed)? (?:with )?"
        r"(?:status |code )?\d+", r"mailer error", r"pipe to \|", r"x-unix",
        r"local delivery failed", r"unix mailer", r"deliver(?:y|ing) to (?:a )?(?:file|pipe)",
    ), note="local delivery agents (procmail, maildrop, pipes): Sendmail/Exim/Postfix"),
    Rule("syntaxerror-text", "syntaxerror", text=_any(
        r"syntax error", r"command unrecognized", r"unrecognized command",
        r"command not (?:recognized|implemented)", r"(?:bad|improper) sequence of commands",
        r"malformed address", r"may not follow",
    ), note="RFC 5321 500/501/502/503 replies"),
    Rule("onhold-text", "onhold", text=_any(r"on hold", r"held for review", r"quarantined"),
         note="messages parked by the receiver"),
    # -- 3. fallbacks on the status alone ----------------------------------------------
    Rule("expired-status", "expired", status=r"[45]\.4\.7|4\.4\.1",
         fallback=True, note="RFC 3463 X.4.7 delivery time expired"),
    Rule("networkerror-status", "networkerror", status=r"[45]\.4\.[0-6]",
         fallback=True, note="RFC 3463 X.4.x network and routing status"),
    Rule("systemerror-status", "systemerror", status=r"[45]\.3\.[0-9]|[45]\.5\.[0-9]|"
         r"[45]\.1\.[789]", fallback=True,
         note="RFC 3463 X.3.x mail system, X.5.x protocol status"),
    Rule("securityerror-status", "securityerror", status=r"[45]\.7\.\d+",
         fallback=True, note="RFC 3463 X.7.x security or policy status"),
    Rule("blocked-code", "blocked", code=r"554", text=r"(?:^|\s)554[ -]|connection|helo|ehlo",
         fallback=True, note="554 at connection time: the client is refused"),
    Rule("syntaxerror-code", "syntaxerror", code=r"50[0-4]",
         fallback=True, note="RFC 5321 500-504 syntax and sequence errors"),
    Rule("userunknown-code", "userunknown", code=r"55[03]", text=r"recipient|rcpt|user|mailbox",
         fallback=True, note="550/553 naming the recipient with no clearer cause"),
)

#: Every prefilter literal of :data:`RULES`, for :func:`mailbox_processor.classify.match_rule`.
RULE_LITERALS = LiteralScan([literal for rule in RULES
                             for probe in (rule.text_probe, rule.unless_probe) if probe
                             for literal in probe.literals])

#: Reasons kept as-is from the format itself (ARF, auto-replies, delivery reports).
EXPLICIT_REASONS = frozenset({"feedback", "vacation", "delivered"})
