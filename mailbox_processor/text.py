"""Small text utilities shared by parsers: addresses, status codes, SMTP replies."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from typing import Any, AnyStr

#: The stdlib's regex parser (``re._parser``): the only exact reading of a pattern's
#: structure, which the rule table's literal prefilters (:mod:`mailbox_processor.rules`)
#: and :class:`~mailbox_processor.parsers.context.QuickPattern` are derived from at
#: import time. Private API, hence untyped.
sre_parse: Any = importlib.import_module("re._parser")

#: An addr-spec as it appears in bounce text (liberal on the local part, strict
#: enough on the domain to skip "user@host" placeholders without a dot).
ADDRESS = re.compile(
    r"(?<![\w.+-])([\w.!#$%&'*+=?^`{|}~-]{1,64}@(?:\[[0-9.:a-fA-F]+\]|"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+))",
)

#: RFC 3463 enhanced status code, e.g. 5.1.1 or 4.7.26, not inside a longer number:
#: ``(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)``, written with the
#: lookbehind after the class (it reads the class again) so that the pattern starts
#: with the class and ``re`` skips to its characters instead of trying every position
#: (tests/test_text.py compares the two).
STATUS = re.compile(r"([245])(?<![\d.][245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")

#: An SMTP reply code at the start of a reply ("550 ", "550-", "550 5.1.1").
SMTP_REPLY = re.compile(r"(?<![\d.])([245]\d\d)(?=[ -]|$)(?![ -]\d{1,3}\.\d)", re.M)
#: A reply code followed by a status or by words: ``(?<![\d.#])([245][0-5]\d)...``,
#: the lookbehind moved after the code as in :data:`STATUS`.
_SMTP_REPLY_STRICT = re.compile(
    r"([245][0-5]\d)(?<![\d.#]\d\d\d)"
    r"(?:[ -]+(?:#?[245]\.\d{1,3}\.\d{1,3})|:?[ -](?=[A-Za-z<(\[]))"
)

_MAILER_DAEMON = re.compile(
    r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon|mail\.daemon|maildaemon|"
    r"bounces?|no-?reply|daemon|mdaemon|root|nobody|mail)$",
    re.I,
)


_ANGLE_ADDRESS = re.compile(r"<([^<>]*@[^<>]*)>")


def normalise_address(addr: str | None) -> str | None:
    """Return ``addr`` as stored: surrounding noise removed, the whole address lowercased.

    Local parts are case-sensitive in theory (RFC 5321 section 2.4) but no large
    mail system treats them so, and the bounce of ``Bob@x`` must suppress ``bob@x``;
    so the address is lowercased as a whole. ``rfc822;``, angle brackets, quotes and
    a trailing dot are stripped.
    """
    if not addr:
        return None
    a = addr.strip()
    if ";" in a[:12] and a.split(";", 1)[0].strip().lower() in ("rfc822", "utf-8", "x-local"):
        a = a.split(";", 1)[1].strip()
    m = _ANGLE_ADDRESS.search(a) if "<" in a else None
    if m:
        a = m.group(1)
    a = a.strip().strip("<>'()[],;:").rstrip(".").strip()
    if '"' in a and (a.count('"') == 1 or (a.startswith('"') and a.endswith('"'))):
        a = a.replace('"', "")
    if a.startswith("@") and ":" in a:
        a = a.split(":", 1)[1]  # RFC 5321 source route "@relay:user@host"
    # (Only the first characters lowercased: no other lowercases to ASCII letters or
    # to several characters that could start "mailto:".)
    if a[:7].lower() == "mailto:":
        a = a[7:]
    local, at, domain = a.rpartition("@")
    if not at or not local or not domain or " " in domain:
        return None
    return a.lower()  # (that is local, "@" and domain)


def is_daemon_address(addr: str) -> bool:
    """True for addresses like ``MAILER-DAEMON@host`` that never are the failed recipient."""
    local = addr.split("@", 1)[0]
    return bool(_MAILER_DAEMON.match(local))


def find_status(text: str, *, failure: bool = False) -> str | None:
    """The first RFC 3463 status code in ``text`` (e.g. ``"5.1.1"``).

    With ``failure``, the first 4.x.x or 5.x.x one when there is one: a transcript
    quotes the successful steps (``250 2.1.5 Ok``) before the reply that failed.
    """
    # (A match is the code alone, its lookarounds being empty: group 0 is the code.)
    m = STATUS.search(text)  # (the usual answer: found without an iterator)
    if m is None or not failure or m.group(1) != "2":
        return None if m is None else m.group()
    for later in STATUS.finditer(text, m.end()):  # (lookbehinds still see the text before)
        if later.group(1) != "2":
            return later.group()
    return m.group()


def find_smtp_code(text: str, *, failure: bool = False) -> str | None:
    """The first SMTP reply code that reads like a reply (``550 5.1.1 ...``, ``550-...``).

    With ``failure``, the first 4xx or 5xx reply when there is one (see
    :func:`find_status`).
    """
    m = _SMTP_REPLY_STRICT.search(text)  # (as in find_status)
    if m is None or not failure or m.group(1)[0] != "2":
        return None if m is None else m.group(1)
    for later in _SMTP_REPLY_STRICT.finditer(text, m.end()):
        if later.group(1)[0] != "2":
            return later.group(1)
    return m.group(1)


def unfold(text: str) -> str:
    """Join a multi-line diagnostic into one line, whitespace collapsed."""
    return re.sub(r"\s+", " ", text).strip()


_COMMAND = re.compile(
    r"in reply to (?:the )?(rcpt to|end of data|data|mail from|helo|ehlo|connect)|"
    r"after (?:the )?(rcpt to|end of data|data|mail from|helo|ehlo|initial connection)|"
    r">>> ?(rcpt to|data|mail from|helo|ehlo)\b|"
    r"most progress was (rcpt to|data|mail from)|"
    r"smtp error from remote (?:mail server|mailer) after (?:pipelined )?"
    r"(rcpt to|end of data|data|mail from|helo|ehlo)|"
    r"\b(rcpt to|mail from):<[^>]*>\s*(?:\n\s*)?<<< ?[45]|"
    r"\((rcpt|data|mail|helo|ehlo)\)\s*$|"
    r"did not like our (rcpt to|data|mail from)|does not like (recipient)|\[(rcpt)_to\]|"
    r"(recipient) address rejected:|resolver\.adr\.(recipient)|"
    r"the (recipient) name is not recognized|returned unknown (recipient)|smtp:(rcpt) host|"
    r"refused to (talk) to me",
    re.M,  # searched in lowercased text: much faster than re.I
)


#: Every alternative of :data:`_COMMAND` begins with one of these literals, so a match
#: can only start where one of them occurs (tests/test_text.py checks both agree).
_COMMAND_STARTS = (
    "in reply to ", "after ", ">>>", "most progress was ", "smtp error from remote ",
    "rcpt to:<", "mail from:<", "(rcpt)", "(data)", "(mail)", "(helo)", "(ehlo)",
    "did not like our ", "does not like recipient", "[rcpt_to]",
    "recipient address rejected:", "resolver.adr.recipient",
    "the recipient name is not recognized", "returned unknown recipient", "smtp:rcpt host",
    "refused to talk to me",
)


def matches_at(
    pattern: re.Pattern[AnyStr], text: AnyStr, starts: Iterable[int]
) -> Iterator[re.Match[AnyStr]]:
    """``pattern.finditer(text)`` when every match can only start at one of ``starts``.

    Trying the pattern at those positions in order, skipping any inside the previous
    match, gives the same matches (leftmost first, non-overlapping) as a scan that
    tries every position, which a pattern without a literal prefix makes slow.
    """
    end = 0
    for pos in sorted(set(starts)):
        if pos < end:
            continue
        m = pattern.match(text, pos)
        if m:
            yield m
            end = max(m.end(), pos + 1)


#: Characters from the rarest to the most common in bounce notices (lowercased; counted
#: over the corpus). Others, digits among them, count as common (:func:`rarity`).
RARE_FIRST = "[]_q;*z,)(@>/<jvwykxb:fgh-ucpdl.mnsiratoe "
_RANK = {char: i for i, char in enumerate(RARE_FIRST)}


def rarity(char: str) -> int:
    """``char``'s place in :data:`RARE_FIRST` (0: the rarest); one not there comes last."""
    return _RANK.get(char, len(_RANK))


def anchored_literal(literal: str) -> tuple[str, int]:
    """A regex that matches the rarest character of ``literal`` (its *anchor*) where
    ``literal`` occurs around it, ``c(?<=before)(?=after)``, and the anchor's offset.

    ``re`` skips to the characters a pattern can start with; a pattern of such
    branches starts with a few rare characters instead of the literals' first ones,
    and so leaves it fewer positions to try. A match is the anchor alone.
    """
    k = min(range(len(literal)), key=lambda i: rarity(literal[i]))
    return (re.escape(literal[k]) + (f"(?<={re.escape(literal[:k + 1])})" if k else "")
            + (f"(?={re.escape(literal[k + 1:])})" if literal[k + 1:] else "")), k


class LiteralStarts:
    """Where one of many literals starts in a text, in one regex pass.

    A ``find`` per literal scans the text once per literal, and a regex trying the
    literals at every position is no faster. Instead each literal is found by its
    anchor (:func:`anchored_literal`): the regex starts with a class of a few rare
    characters, which ``re`` skips to quickly, and a match is only the anchor, so that
    the scan goes on from the next character and no occurrence hides another. The
    start of an occurrence is its anchor's position less the anchor's offset.

    When two literals with the same anchor character could occur with their anchors at
    one position (overlaid, they agree where they overlap), the regex reports only the
    first that matches: the starts given for either are then those of both, which may
    add a start where no literal is. So the answer holds every offset where a literal
    occurs, and maybe a few others: what :func:`matches_at` needs.
    """

    def __init__(self, literals: Iterable[str]) -> None:
        placed = []  # (literal, anchor offset) per group of the regex
        branches = []
        for literal in dict.fromkeys(literals):  # (unique, in order)
            if not literal:
                raise ValueError("an empty literal occurs everywhere")
            branch, k = anchored_literal(literal)
            placed.append((literal, k))
            # (An empty group names the literal: a group around all would keep re
            # from seeing that every alternative starts with a literal character.)
            branches.append(branch + "()")
        finder = re.compile("|".join(branches))
        self._search, self._finditer = finder.search, finder.finditer
        #: Per group number, the offsets from its anchor back to a start (none for
        #: group 0, the whole match).
        self._offsets: list[tuple[int, ...]] = [()] + [
            tuple(sorted({k2 for literal2, k2 in placed
                          if literal2[k2] == literal[k] and _overlaid(literal, k, literal2, k2)}))
            for literal, k in placed]

    def __call__(self, text: str) -> list[int]:
        """Every offset in ``text`` where one of the literals occurs (and maybe others)."""
        first = self._search(text)
        if first is None:  # (the usual answer: found sooner without an iterator)
            return []
        offsets = self._offsets
        return [start for m in self._finditer(text, first.start())
                for k in offsets[m.lastindex or 0] if (start := m.start() - k) >= 0]


def _overlaid(a: str, ka: int, b: str, kb: int) -> bool:
    """Whether ``a`` and ``b`` agree where they overlap with ``a[ka]`` on ``b[kb]``."""
    shift = ka - kb  # where b starts, in a's offsets
    return all(a[i] == b[i - shift] for i in range(max(0, shift), min(len(a), shift + len(b))))


_command_starts = LiteralStarts(_COMMAND_STARTS)


def find_command(text: str, *, lowered: str | None = None) -> str | None:
    """The SMTP command a reply answered (``RCPT``, ``DATA``, ``MAIL``, ``HELO``, ``CONN``).

    Read from Postfix's "(in reply to RCPT TO command)", Exim's "SMTP error from remote
    mail server after RCPT TO:", qmail's "most progress was RCPT TO response" and
    Sendmail transcripts (">>> DATA").

    :param lowered: ``text.lower()``, when the caller has it already.
    """
    low = text.lower() if lowered is None else lowered
    # A match starts where one of its opening literals does (a scan of every position
    # costs ~40 us per notice, this a fraction).
    starts = _command_starts(low)
    if not starts:  # (the usual answer, found without a generator)
        return None
    commands = []
    for m in matches_at(_COMMAND, low, starts):
        word = next(g for g in m.groups() if g).lower()
        if word.startswith("rcpt") or word == "recipient":
            commands.append("RCPT")
        elif "data" in word:
            commands.append("DATA")
        elif word.startswith("mail"):
            commands.append("MAIL")
        elif word in ("helo", "ehlo"):
            commands.append(word.upper())
        else:
            commands.append("CONN")
    if not commands:
        return None
    # The last command of a transcript is the one that failed.
    return commands[-1]
