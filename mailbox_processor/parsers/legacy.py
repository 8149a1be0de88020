"""Text bounces without a delivery-status part: qmail, Exim, old Sendmail and Postfix,
Exchange/Office 365, Gmail, Yahoo, Domino, Courier, GroupWise and friends.

Two sources of addresses, merged: our own reading of the notice (addresses on
their own line, in ``<...>``, after "RCPT TO:", in "Original-Recipient:"-style
fields; with the returned message cut off first) and flufl.bounce's detectors,
so that we never find fewer failed addresses than flufl.bounce alone. The
diagnostic for each address is the text around it.
"""

from __future__ import annotations

import email.message
import functools
import importlib
import logging
import re
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Sequence
from email.iterators import body_line_iterator
from types import ModuleType
from typing import ClassVar, NamedTuple

from mailbox_processor import fastmime
from mailbox_processor.mime import Mail, header_text
from mailbox_processor.models import Finding, defer_context
from mailbox_processor.parsers.context import (
    _ERRORISH,
    _FOLDS_TO_ASCII,
    QuickPattern,
    cut_returned,
    diagnostic_near,
    error_paragraphs,
    find_addresses,
    find_gateway,
    looks_like_diagnostic,
    lowered_text,
)
from mailbox_processor.text import (
    ADDRESS,
    find_command,
    find_smtp_code,
    find_status,
    is_daemon_address,
    normalise_address,
)

log = logging.getLogger(__name__)

#: Subjects of non-delivery notices in the wild (English, French, German, Spanish,
#: Italian, Portuguese, Japanese), lowercased.
_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|failed|has failed|"
    r"notification|problem|report)|returned mail|return(?:ed)? to sender|failure notice|"
    r"mail delivery (?:failed|failure|system|subsystem)|could not (?:be )?deliver|"
    r"non[- ]?(?:remis|delivery|recapitabile)|nondeliverable|not (?:be )?delivered|"
    r"delivery error|mail (?:system )?error|warning: could not send|message status|"
    r"unzustellbar|nicht zustellbar|benachrichtung|fehlgeschlagen|"
    r"no se ha podido entregar|no entregado|"
    r"rejected|bounce|mail could not|problem delivering|message not delivered|"
    r"echec|échec|notification d'état|delivery notification|"
    r"permanent error|transient error|failed mail|returning message|"
    r"mail failure|sending failed|message delivery|mailer-daemon|postmaster|"
    r"エラー|不達|配信",
    re.I,
)
_SUBJECT_QUICK = QuickPattern(_SUBJECT)

_FROM_DAEMON = re.compile(
    r"mailer-daemon|post_?master|mail delivery|mail-daemon|maildaemon|mailer daemon|"
    r"mdaemon|daemon@|bounce|returned|notification|delivery|administrator|"
    r"microsoftexchange|no-?reply|abuse|mailadmin|smtp",
    re.I,
)
_FROM_DAEMON_QUICK = QuickPattern(_FROM_DAEMON)

_BODY_MARKER = re.compile(
    r"could not be delivered|couldn't be delivered|was not delivered|wasn't delivered|"
    r"undeliverable|delivery (?:to the following|has failed|failed)|permanent (?:error|fatal)|"
    r"failed permanently|following address(?:es)? (?:had|failed)|mail delivery failed|"
    r"not be delivered|unable to deliver|delivery to [^\n]{0,80} failed|"
    r"returned to (?:the )?sender|i'?m (?:afraid|sorry)|message (?:could not|was not) be|"
    r"this is the qmail-send program|giving up|gave up|non[- ]?delivery|"
    r"delivery status notification|unknown user|user unknown|mailbox (?:is )?full|"
    r"smtp error|host unknown|no such user|rejected|error|failed",
    re.I,
)
_BODY_MARKER_QUICK = QuickPattern(_BODY_MARKER)

#: Address forms that say "this is the failed recipient" (strongest first).
_RECIPIENT_CONTEXT = [
    # "Original-Recipient: rfc822;a@b", "Final-Recipient:", "X-Failed-Recipients:"
    re.compile(r"^\s*(?:Original|Final)-Recipient:\s*(?:rfc822;)?\s*<?([^\s<>;]+@[^\s<>;]+)",
               re.I | re.M),
    # qmail "<a@b>:" / Postfix "<a@b>: host ..." / Sendmail "<a@b>... User unknown",
    # also after a Sendmail transcript reply code ("554 <a@b>... 550 Host unknown")
    re.compile(r"^\s*(?:[45]\d\d[ -])?<([^\s<>]+@[^\s<>]+)>\s*(?::|\.\.\.|\(|$)", re.M),
    # Exim "  a@b" alone on a line, or "  a@b\n    SMTP error ..."; "a@b: reason"
    re.compile(r"^[ \t]*([^\s<>\"():;]+@[^\s<>\"():;]+?)[.,]?[ \t]*(?::|$)", re.M),
    # "RCPT TO:<a@b>", "Recipient address: a@b", "failed recipient: a@b", "To: a@b"
    re.compile(
        r"(?:RCPT TO:?|recipients?(?: address(?:es)?)?:|failed recipients?:|"
        r"delivery to(?: the following recipients?)?(?: failed)?:?|"
        r"(?:^|\n)\s*(?:To|Recipient|Destinataire|Empfänger|Adresse):|"
        r"could not be delivered to:?|address(?:es)?:)"
        r"\s*<?([^\s<>\"]+@[^\s<>\"]+?)>?[.,;:)]*(?=\s|$)",
        re.I,
    ),
]


_RECIPIENT_CONTEXT_QUICK = [QuickPattern(p) for p in _RECIPIENT_CONTEXT[:3]]
#: The last pattern with "\n" for its "(?:^|\n)": the same pattern anywhere but at
#: offset 0 (where "^" is the one more way to match), and one whose alternatives
#: all start with a literal, which lets ``re`` skip the offsets that start none.
_FIELD_AFTER_START = QuickPattern(re.compile(
    _RECIPIENT_CONTEXT[3].pattern.replace(r"(?:^|\n)", r"\n"), _RECIPIENT_CONTEXT[3].flags))
assert _RECIPIENT_CONTEXT[3].pattern.count("^|") == 1
assert "^|" not in _FIELD_AFTER_START.pattern.pattern

#: For each pattern of _RECIPIENT_CONTEXT, lowercase literals one of which every
#: match holds (read off the pattern: its alternatives' fixed words; "Empfänger"
#: cannot occur in ASCII text). Every match also holds "@".
_CONTEXT_LITERALS: list[tuple[str, ...]] = [
    ("-recipient:",),
    ("@",),
    ("@",),
    ("rcpt to", "recipient", "delivery to", "to:", "destinataire:", "adresse:",
     "delivered to", "address"),
]


def _context_matches(n: int, text: str, lowered: str) -> Iterator[re.Match[str]]:
    """``_RECIPIENT_CONTEXT[n].finditer(text)``, not run when it cannot match.

    ``lowered`` is ``text.lower()`` if the text is ASCII, else "": case-insensitive
    matching of ASCII text is plain matching of the lowered text, so a match's
    literal words occur in ``lowered``; for other text re.I also pairs e.g. "ſ"
    with "s", so only the "@" test is made there.
    """
    if "@" not in text:
        return iter(())
    if lowered and not any(word in lowered for word in _CONTEXT_LITERALS[n]):
        return iter(())
    if n < 3:
        return _RECIPIENT_CONTEXT_QUICK[n].finditer(text, lowered or None)
    return _field_matches(text, lowered or None)


def _field_matches(text: str, lowered: str | None) -> Iterator[re.Match[str]]:
    """``_RECIPIENT_CONTEXT[3].finditer(text)``: its match at offset 0, if any, then
    :data:`_FIELD_AFTER_START`'s after it. (At offset 0 the pattern tries all that
    the one without "^" tries, in the same order.)"""
    first = _RECIPIENT_CONTEXT[3].match(text)
    if first is not None:
        yield first
    yield from _FIELD_AFTER_START.finditer(text, lowered, first.end() if first else 0)


def _looks_like_bounce(mail: Mail) -> bool:
    from_daemon = _FROM_DAEMON_QUICK.found_in(mail.from_addr)
    subject = _SUBJECT_QUICK.found_in(mail.subject)
    if from_daemon and subject:
        return True
    if (from_daemon or subject) and _BODY_MARKER_QUICK.found_in(mail.notice_text[:5000]):
        return True
    return_path = mail.header("Return-Path") or ""
    if return_path in ("<>", "") and mail.header("X-Failed-Recipients"):
        return True
    return bool(mail.header("X-Failed-Recipients"))


def _flufl_failures(
    msg: email.message.Message, field_names: Collection[str] | None = None,
    ctype: str | None = None,
) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """What ``flufl.bounce.all_failures(msg)`` returns, computed faster.

    The same detectors run in the same order and the first that finds anything
    wins; but a detector is skipped when a cheap test (:data:`_GATES`) shows that it
    would return nothing without raising, and the pattern-table detectors
    (SimpleMatch, SimpleWarning), which scan every body line once per pattern in
    Python, only get the pattern sets whose start pattern occurs somewhere in the
    body: a single C-level search per pattern (multi-line mode, so a line-level
    match is never missed). Falls back to ``all_failures`` if flufl.bounce's
    internals change shape. ``field_names`` and ``ctype``, if given, are ``msg``'s
    header field names, lowercased, and its ``get_content_type()``.
    """
    try:
        plan = _detector_plan()
    except Exception:
        from flufl.bounce import all_failures

        return all_failures(msg)
    view = _FluflView(msg, field_names, ctype)
    for detector, gate, patterns, shortcut in plan:
        if gate is not None and not gate(view):
            continue
        if shortcut is not None:
            failed = shortcut(msg)
            if failed is not None:
                if failed:
                    return frozenset(), failed
                continue
        instance = detector()
        if patterns:
            body, lowered = view.body, view.lowered
            # A pattern set whose start pattern matches no line never leaves its start
            # state, so it adds nothing and ends nothing: run only the others, in order.
            kept = [entry for entry, hint, in_body in _prepared(patterns)
                    if (not lowered or hint in lowered) and in_body(body, lowered or None)]
            if not kept:
                continue
            instance.PATTERNS = kept
        temporary, permanent = instance.process(msg)
        if temporary or permanent:
            return frozenset(temporary), frozenset(permanent)
    return frozenset(), frozenset()


#: The non-ASCII characters that re.I pairs with an ASCII letter ("ı" and "İ" with
#: "i", "ſ" with "s", the Kelvin sign with "k"); they are also the only ones whose
#: lowercase holds an ASCII letter (tests/parsers/test_legacy_fields.py checks both).
_ASCII_TWINS = "".join(map(chr, sorted(_FOLDS_TO_ASCII)))


class _FluflView:
    """What the detector gates look at, each computed once per message on first use
    (so that reading the body lines, say, happens no earlier than the first detector
    that reads them would)."""

    def __init__(self, msg: email.message.Message,
                 field_names: Collection[str] | None = None, ctype: str | None = None) -> None:
        self.msg = msg
        self.field_names = field_names
        # (Each lazy view below is computed on its first read and kept here: plain
        # attributes, so that the class also compiles as a native mypyc class.)
        self._body: str | None = None
        self._lowered: str | None = None
        #: The content type, known to the caller or computed on first read.
        self._ctype: str | None = ctype
        self._multipart: bool | None = None
        self._from: object = None  # (the field's value is never None: "" when absent)

    def has_field(self, name: str) -> bool:
        """``name in msg`` (``name`` lowercase), from the field names when known (the
        Message scans and lowercases every field name per question)."""
        return name in self.field_names if self.field_names is not None else name in self.msg

    @property
    def body(self) -> str:
        """The body lines as flufl.bounce's line-scanning detectors see them, joined:
        a match inside one line is a match inside this text."""
        if self._body is None:
            self._body = self._read_body()
        return self._body

    def _read_body(self) -> str:
        if not self.msg.is_multipart():
            # ``body_line_iterator`` walks this part alone and splits its payload at
            # "\n" (a StringIO translates no line ends): joined, that is the payload.
            payload = fastmime.get_payload(self.msg)
            return payload if isinstance(payload, str) else ""
        # Joined, each part's lines are its payload again: no need to split them.
        return "".join(payload for part in self.msg.walk()
                       if isinstance(payload := fastmime.get_payload(part), str))

    @property
    def lowered(self) -> str:
        """The body lowercased when case-insensitive matching of ASCII literals in it
        is plain matching of their lowercase in this text, else "".

        That holds for ASCII text, and for any text without the four characters
        (:data:`_ASCII_TWINS`) that re.I pairs with an ASCII letter or that lowercase
        to one: other characters lowercase to non-ASCII ones, each apart, so an ASCII
        run of the lowered text is the lowered ASCII run of the body, and back.
        (Mail in Cyrillic, Arabic or Japanese would otherwise run every pattern.)
        """
        if self._lowered is None:
            body = self.body
            if not body.isascii() and any(twin in body for twin in _ASCII_TWINS):
                self._lowered = ""
            else:
                self._lowered = body.lower()
        return self._lowered

    @property
    def ctype(self) -> str:
        if self._ctype is None:
            self._ctype = self.msg.get_content_type()
        return self._ctype

    @property
    def multipart(self) -> bool:
        if self._multipart is None:
            self._multipart = self.msg.is_multipart()
        return self._multipart

    @property
    def from_(self) -> object:
        """``msg.get('from', '')``: a str, or a Header when the field has raw 8-bit bytes."""
        if self._from is None:
            self._from = fastmime.get(self.msg, "from", "")
        return self._from

    def in_body(self, phrase: str, pattern: re.Pattern[str] | None = None) -> bool:
        """Whether ``phrase`` (or, case-insensitively, ``pattern``) occurs in the body."""
        if pattern is None:
            return phrase in self.body
        lowered = self.lowered
        if lowered:
            return phrase.lower() in lowered
        return pattern.search(self.body) is not None


#: An address list that ``email.utils.getaddresses`` reads as its plain tokens:
#: addr-specs of atom characters and dots with one "@" and a domain, no quotes,
#: comments, brackets, escapes or line breaks, separated by commas and blanks.
_PLAIN_TOKEN = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]*@[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"
_PLAIN_ADDRESS_LIST = re.compile(rf"[ \t]*{_PLAIN_TOKEN}[ \t]*(?:,[ \t]*{_PLAIN_TOKEN}[ \t]*)*")
_PLAIN_ADDRESS = re.compile(_PLAIN_TOKEN)


def _exim_failures(msg: email.message.Message) -> frozenset[bytes] | None:
    """What flufl.bounce's Exim detector reports failed (``getaddresses`` of the
    X-Failed-Recipients fields, each address as ASCII bytes), read without
    ``getaddresses`` when the fields are plain address lists (its parser walks the
    text a character at a time in Python); ``None`` for other fields: the detector
    then runs.

    ``getaddresses`` joins the fields with ", " and for each plain token (see
    :data:`_PLAIN_ADDRESS_LIST`) returns ``("", token)``: the phrase reader stops at
    the "@", the addr-spec reader keeps atoms and dots as they are.
    """
    # (A value is a str, or a Header when it has raw 8-bit bytes: ``object``.)
    fields: Sequence[object] = msg.get_all("x-failed-recipients", [])
    values = [value for value in fields if isinstance(value, str)]
    if len(values) != len(fields):
        return None
    joined = ", ".join(values)
    if not values or not _PLAIN_ADDRESS_LIST.fullmatch(joined):
        return None
    return frozenset(token.encode("ascii") for token in _PLAIN_ADDRESS.findall(joined))


def _addr_may_hold(value: object, needle: str) -> bool:
    """False only if the address ``email.utils.parseaddr``/``getaddresses`` reads from
    the header ``value`` cannot contain ``needle`` (lowercase ASCII letters, "-", "@",
    ".") once lowercased.

    Their parser (``email._parseaddr``) builds the address from the field's
    characters in order: it drops comments (which start with "("), the backslash of
    a quoted pair, and white space (space, tab, CR, LF) between tokens, and inserts
    only quotes, backslashes, dots, "@" and brackets, never letters. So in a field
    without "(" or "\\" the needle must occur in the lowercased field once white
    space is removed. A Header object (a field with 8-bit bytes) is not judged: the
    detector runs, and may raise, as it would.
    """
    if not isinstance(value, str) or "(" in value or "\\" in value:
        return True
    return needle in value.lower().translate(_NO_WHITESPACE)


_NO_WHITESPACE = str.maketrans("", "", " \t\r\n")


@functools.cache
def _detector_module(name: str) -> ModuleType:
    """``flufl.bounce._detectors.<name>`` (imported once: an import statement in a gate
    costs a microsecond per call)."""
    return importlib.import_module(f"flufl.bounce._detectors.{name}")


def _gate_qmail(view: _FluflView) -> bool:
    # QSBMF: nothing is collected before a line starting with an intro tag.
    return any(tag in view.body for tag in _detector_module("qmail").introtags)


def _gate_yahoo(view: _FluflView) -> bool:
    # parseaddr(from.lower())[1] must start with "mailer-daemon@yahoo"; a Header
    # From makes the detector raise, so it runs then.
    return _addr_may_hold(view.from_, "mailer-daemon@yahoo")


def _gate_yale(view: _FluflView) -> bool:
    # Multipart: "no failures" at once. Otherwise an empty From makes
    # getaddresses()[0] raise IndexError, so it runs; and the domain must end "yale.edu".
    if view.multipart:
        return False
    return str(view.from_) == "" or _addr_may_hold(view.from_, "yale")


def _gate_sina(view: _FluflView) -> bool:
    # ``from.lower() != "mailer-daemon@sina.com"``: no failures (a Header raises).
    from_ = view.from_
    return not isinstance(from_, str) or from_.lower() == "mailer-daemon@sina.com"


def _gate_exim(view: _FluflView) -> bool:
    # No X-Failed-Recipients field: getaddresses([]) is [], no failures.
    return view.has_field("x-failed-recipients")


def _gate_smtp32(view: _FluflView) -> bool:
    # ``msg.get("x-mailer", "")`` must start with "<SMTP32 v": "" does not.
    return view.has_field("x-mailer")


def _gate_dsn(view: _FluflView) -> bool:
    # Only multipart message/delivery-status parts are read: none in a single part,
    # and walk() meets one only as the root or inside a part with parts of its own
    # (a leaf is its only part; a payload item that is no Message makes walk() raise).
    if not view.multipart:
        return False
    return view.ctype == "message/delivery-status" or any(
        not isinstance(part, email.message.Message) or part.is_multipart()
        for part in view.msg.get_payload())


def _gate_postfix(view: _FluflView) -> bool:
    return view.ctype in _detector_module("postfix").REPORT_TYPES


def _gate_mixed(view: _FluflView) -> bool:
    # GroupWise and Microsoft give up at once unless the message is multipart/mixed.
    return view.ctype == "multipart/mixed"


def _gate_caiwireless(view: _FluflView) -> bool:
    # Only multipart/mixed, and no address is read before the tag line.
    return view.ctype == "multipart/mixed" and view.in_body(
        "the following recipients did not receive this message:",
        _detector_module("caiwireless").tcre)


def _gate_exchange(view: _FluflView) -> bool:
    # "No failures" unless some line holds the (case-sensitive) start phrase.
    return view.in_body("did not reach the following recipient")


def _gate_netscape(view: _FluflView) -> bool:
    return view.multipart


def _gate_aol(view: _FluflView) -> bool:
    # text/plain only; then parseaddr(from)[1].lower() must end "@aol.com".
    return view.ctype == "text/plain" and _addr_may_hold(view.from_, "@aol.com")


def _gate_llnl(view: _FluflView) -> bool:
    # Its one pattern must match inside some line, hence inside the body.
    body = view.body
    return "@" in body and "," in body and \
        _detector_module("llnl").acre.search(body) is not None


#: For each detector (by module and class name), a test that is False only when
#: the detector would return no failures without raising: then it is not run. Each
#: is read off the detector's code (flufl.bounce 6.0); tests/parsers/
#: test_flufl_shortcut.py compares the result with ``all_failures`` on real and
#: mutated messages. Detectors not listed always run.
_GATES: dict[str, Callable[[_FluflView], bool]] = {
    "flufl.bounce._detectors.dsn.DSN": _gate_dsn,
    "flufl.bounce._detectors.exim.Exim": _gate_exim,
    "flufl.bounce._detectors.sina.Sina": _gate_sina,
    "flufl.bounce._detectors.yahoo.Yahoo": _gate_yahoo,
    "flufl.bounce._detectors.yale.Yale": _gate_yale,
    "flufl.bounce._detectors.smtp32.SMTP32": _gate_smtp32,
    "flufl.bounce._detectors.postfix.Postfix": _gate_postfix,
    "flufl.bounce._detectors.qmail.Qmail": _gate_qmail,
    "flufl.bounce._detectors.groupwise.GroupWise": _gate_mixed,
    "flufl.bounce._detectors.microsoft.Microsoft": _gate_mixed,
    "flufl.bounce._detectors.caiwireless.Caiwireless": _gate_caiwireless,
    "flufl.bounce._detectors.exchange.Exchange": _gate_exchange,
    "flufl.bounce._detectors.netscape.Netscape": _gate_netscape,
    "flufl.bounce._detectors.aol.AOL": _gate_aol,
    "flufl.bounce._detectors.llnl.LLNL": _gate_llnl,
}

#: For each detector (by module and class name) whose answer can be read more
#: cheaply: the permanent failures it would report, or ``None`` where the detector
#: itself must run. Read from flufl.bounce 6.0.0, like the gates.
_SHORTCUTS: dict[str, Callable[[email.message.Message], frozenset[bytes] | None]] = {
    "flufl.bounce._detectors.exim.Exim": _exim_failures,
}


class _Step(NamedTuple):
    """One detector of the plan, with what lets it be skipped or answered cheaply."""

    detector: type
    gate: Callable[[_FluflView], bool] | None
    patterns: list[tuple[re.Pattern[str], ...]] | None
    shortcut: Callable[[email.message.Message], frozenset[bytes] | None] | None


_Plan = list[_Step]
_PLAN: list[_Plan] = []


def _detector_plan() -> _Plan:
    """flufl.bounce's detectors in order, each with its gate, shortcut and pattern
    table, worked out once (gates and shortcuts only if flufl.bounce is the version
    they were read from)."""
    if not _PLAN:
        from importlib.metadata import version

        from flufl.bounce import _scan

        known = version("flufl.bounce") == _GATED_VERSION
        steps = []
        for detector in _scan._DETECTORS:  # noqa: SLF001
            name = f"{detector.__module__}.{detector.__qualname__}"
            steps.append(_Step(detector, _GATES.get(name) if known else None,
                               getattr(detector, "PATTERNS", None) or None,
                               _SHORTCUTS.get(name) if known else None))
        _PLAN.append(steps)
    return _PLAN[0]


#: The flufl.bounce release whose detector code the gates were read from.
_GATED_VERSION = "6.0.0"


#: Whether a pattern matches in a body (given it and, for ASCII text, its lowercase).
_BodyTest = Callable[[str, str | None], bool]
_MULTILINE: dict[int, _BodyTest] = {}
_PREPARED: dict[int, list[tuple[tuple[re.Pattern[str], ...], str, _BodyTest]]] = {}


def _prepared(
    patterns: list[tuple[re.Pattern[str], ...]],
) -> list[tuple[tuple[re.Pattern[str], ...], str, _BodyTest]]:
    """Each pattern set with its start pattern's literal hint and multi-line test."""
    prepared = _PREPARED.get(id(patterns))
    if prepared is None:
        prepared = _PREPARED[id(patterns)] = [
            (entry, _literal_hint(entry[0]), _multiline(entry[0])) for entry in patterns]
    return prepared
_HINTS: dict[int, str] = {}


def _literal_hint(pattern: re.Pattern[str]) -> str:
    """The longest run of literal characters every match of ``pattern`` contains,
    lowercased ("" when it has none, or when it is not a case-insensitive pattern of
    ASCII literals: then the test above is always true)."""
    hint = _HINTS.get(id(pattern))
    if hint is None:
        hint = ""
        if pattern.flags & re.IGNORECASE:
            import re._parser as sre_parse  # type: ignore[import-not-found]

            run = ""
            try:
                items = list(sre_parse.parse(pattern.pattern, pattern.flags))
            except Exception:
                items = []
            for op, arg in [*items, (None, None)]:
                if op is sre_parse.LITERAL and isinstance(arg, int) and arg < 128:
                    run += chr(arg)
                    continue
                if len(run) > len(hint):
                    hint = run
                run = ""
            hint = hint.lower()
        _HINTS[id(pattern)] = hint
    return hint


def _multiline(pattern: re.Pattern[str]) -> _BodyTest:
    """Whether ``pattern`` in multi-line mode matches in a body: a QuickPattern test
    (lowercase twin, line starts) where it can rewrite the pattern."""
    found_in = _MULTILINE.get(id(pattern))
    if found_in is None:
        compiled = re.compile(pattern.pattern, pattern.flags | re.M)
        try:
            found_in = QuickPattern(compiled).found_in
        except ValueError:
            def found_in(body: str, _lowered: str | None) -> bool:
                return compiled.search(body) is not None
        _MULTILINE[id(pattern)] = found_in
    return found_in


def _flufl_addresses(
    msg: email.message.Message, field_names: Collection[str] | None = None,
    ctype: str | None = None,
) -> list[str]:
    """flufl.bounce's temporary and permanent failures, as normalised strings
    (``field_names``, ``ctype``: see :func:`_flufl_failures`)."""
    try:
        temporary, permanent = _flufl_failures(msg, field_names, ctype)
    except Exception as exc:  # a detector choking on odd input must not kill the parse
        log.debug("flufl.bounce failed: %s", exc)
        return []
    out: list[str] = []
    # (flufl.bounce types the addresses as bytes; a detector that returns str is read
    # too, so they are ``object`` here and no bytes check is compiled in.)
    groups: tuple[Iterable[object], ...] = (permanent, temporary)
    for group in groups:
        found = []
        for raw in group:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            addr = normalise_address(text)
            if addr and addr not in out and addr not in found:
                found.append(addr)
        if len(found) > 1:
            # flufl.bounce returns sets, whose order changes with PYTHONHASHSEED: put
            # the addresses in the order the notice names them, so that a message
            # always gives the same report.
            body = "".join(body_line_iterator(msg)).lower()
            found.sort(key=lambda a: (i if (i := body.find(a)) >= 0 else len(body), a))
        out.extend(found)
    return out


def _notice_only(mail: Mail, cut: str) -> email.message.Message:
    """The bounce without the returned message, for flufl.bounce.

    Its heuristics scan every body line; the returned message is most of the lines
    and the source of most of their false hits (the original sender, Message-IDs).
    """
    msg = mail.msg
    if msg.is_multipart():
        payload = msg.get_payload()
        assert isinstance(payload, list)
        kept: list[email.message.Message | str] = [
            p for p in payload if isinstance(p, email.message.Message) and not (
            mail.ctype(p).startswith("message/") or mail.ctype(p).endswith("rfc822-headers"))]
        if len(kept) == len(payload):
            return msg
        clone = email.message.Message()
        # The header fields as stored (what ``clone[k] = v`` over ``items()`` gives
        # the getters too, without a policy call per field).
        clone._headers = list(msg._headers)  # type: ignore[attr-defined]  # noqa: SLF001
        clone.set_payload(kept)
        return clone
    if len(cut) >= len(mail.notice_text):
        return msg
    clone = email.message.Message()
    clone._headers = [  # type: ignore[attr-defined]  # noqa: SLF001
        (k, v) for k, v in msg._headers  # type: ignore[attr-defined]  # noqa: SLF001
        if k.lower() != "content-transfer-encoding"]
    clone.set_payload(cut)
    return clone


_INLINE_TO = QuickPattern(re.compile(r"^to:[ \t]*(.+(?:\n[ \t]+.+)*)", re.I | re.M))


_SENDER_INTRO = QuickPattern(
    re.compile(r"(?:sent by|message from|envelope sender|sender)[:\s]*$", re.I))
_INLINE_SENDER = QuickPattern(re.compile(r"^(?:return-path|from|sender):[ \t]*(.+)", re.I | re.M))


def _returned_senders(mail: Mail, rest: str) -> set[str]:
    """The returned message's envelope and header senders: never the failed recipient."""
    values: list[str] = []
    if mail.returned is not None:
        for name in ("Return-Path", "From", "Sender"):
            values.append(mail.returned_header(name) or "")
    else:
        values.extend(m.group(1) for m in _INLINE_SENDER.finditer(_two_paragraphs(rest[:20000])))
    out: set[str] = set()
    for value in values:
        for m in find_addresses(value):
            addr = normalise_address(m.group(1))
            if addr:
                out.add(addr)
    return out


def _two_paragraphs(text: str) -> str:
    """``"\n\n".join(text.split("\n\n", 2)[:2])``: ``text`` up to its second blank
    line, without splitting the rest."""
    first = text.find("\n\n")
    if first < 0:
        return text
    second = text.find("\n\n", first + 2)
    return text if second < 0 else text[:second]


def _returned_recipients(mail: Mail, rest: str) -> list[str]:
    """Addresses in the To: of the returned message (attached or inlined after the notice)."""
    value: str | None = None
    if mail.returned is not None:
        value = mail.returned_header("To")
    else:
        m = _INLINE_TO.search(rest[:20000])
        value = m.group(1) if m else None
    out: list[str] = []
    for m in find_addresses(value or ""):
        addr = normalise_address(m.group(1))
        if addr and addr not in out:
            out.append(addr)
    return out


class Legacy:
    """Plain-text bounces of MTAs and providers that send no RFC 3464 report."""

    name: ClassVar[str] = "legacy"

    def parse(self, mail: Mail) -> list[Finding]:
        """See :class:`mailbox_processor.parsers.Parser`."""
        if not _looks_like_bounce(mail):
            return []
        notice = mail.notice_text
        text = cut_returned(notice)
        found: list[str] = []
        ids = _MessageIds(mail)
        excluded = _Either(_OwnAddresses(mail, notice[len(text):]), ids)
        lowered = lowered_text(text) if text.isascii() else ""
        for n, pattern in enumerate(_RECIPIENT_CONTEXT):
            for m in _context_matches(n, text, lowered):
                # The three strongest forms are trusted even for an address that is
                # also the bounce's own To (a message sent to oneself).
                if n < 3 and _SENDER_INTRO.found_in(text[max(0, m.start() - 80): m.start()]):
                    continue  # Exim: "A message sent by <sender> could not be delivered"
                self._add(found, m.group(1), ids if n < 3 else excluded)
            if found and pattern is not _RECIPIENT_CONTEXT[-1]:
                # A strong form matched: weaker forms would only add noise.
                break
        if not found:
            for m in find_addresses(text):
                self._add(found, m.group(1), excluded)
        # Exim's X-Failed-Recipients header names them too.
        # (A value is a str, or a Header when it has raw 8-bit bytes: ``object``.)
        xfr: Sequence[object] | None = mail.msg.get_all("X-Failed-Recipients") \
            if "x-failed-recipients" in mail.field_names else None  # (get_all reads every field)
        for value in xfr or []:
            for m in find_addresses(header_text(value) or ""):
                self._add(found, m.group(1), excluded)
        # (The notice-only message has the same header fields as far as the gates ask,
        # and the same content type: the clone of a root message has its default type.)
        for addr in _flufl_addresses(_notice_only(mail, text), mail.field_names,
                                     mail.content_type):
            if addr not in found and addr not in excluded:
                found.append(addr)
        if not found:
            # The notice names nobody ("Cannot send message for 4 days"): the returned
            # message's sole recipient is the one that failed.
            to = _returned_recipients(mail, notice[len(text):])
            if len(to) == 1 and to[0] not in excluded:
                found.append(to[0])
        findings = []
        # The notice's command, for diagnostics that name none (read once, if ever).
        text_command: str | None = None
        text_command_read = False
        gateway = find_gateway(mail) if found else None
        for addr in found:
            # Context from the notice itself; the returned message's headers would
            # only mislead (the address is in its To: line).
            diag = diagnostic_near(text, addr, others=frozenset(found) - {addr}) \
                or _unfold(text[:1500])
            # The address often stands apart from the reason (Gmail, Domino, Exchange):
            # the error paragraphs that name no other failed address are context. A weak
            # diagnostic takes them in; else they are read only if the classifier asks.
            others = [a for a in found if a != addr]
            weak = not diag or not looks_like_diagnostic(diag)
            context = error_paragraphs(text, exclude=others) if weak else None
            if weak and context and (not diag or context.lower() not in diag.lower()):
                diag = f"{diag} {context}".strip() if diag else context
            command = find_command(diag or "")
            if command is None:
                if not text_command_read:
                    text_command = find_command(text, lowered=lowered or None)
                    text_command_read = True
                command = text_command
            finding = Finding(
                recipient=addr,
                action="failed",
                status=find_status(diag or "", failure=True),
                smtp_code=find_smtp_code(diag or "", failure=True),
                smtp_command=command,
                diagnostic=diag,
                context=context,
                gateway=gateway,
            )
            findings.append(finding if weak else defer_context(finding, error_paragraphs,
                                                               text, others))
        if not findings and _FROM_DAEMON_QUICK.found_in(mail.from_addr) \
                and _SUBJECT_QUICK.found_in(mail.subject):
            # A bounce that names nobody (or only the sender): record it, addressless.
            diag = _first_error_paragraph(text)
            findings.append(Finding(recipient=None, action="failed", diagnostic=diag,
                                    status=find_status(diag or "", failure=True),
                                    smtp_code=find_smtp_code(diag or "", failure=True)))
        return findings

    @staticmethod
    def _add(found: list[str], candidate: str, excluded: Container[str]) -> None:
        addr = normalise_address(candidate)
        # (``found`` first: asking ``excluded`` may cost a look through the message.)
        if not addr or addr in found or addr in excluded:
            return
        if is_daemon_address(addr) and not addr.startswith("postmaster@"):
            return
        if not ADDRESS.fullmatch(addr):
            return
        found.append(addr)


def _own_addresses(mail: Mail) -> set[str]:
    """Addresses that are never the failed recipient: the bounce's own From, To,
    Reply-To and Sender (the returned message's senders: :func:`_returned_senders`)."""
    out: set[str] = set()
    for name in ("From", "To", "Reply-To", "Sender"):
        # (``from_addr`` is the From header, decoded once per message.)
        text = mail.from_addr if name == "From" else mail.header(name) or ""
        for m in find_addresses(text):
            a = normalise_address(m.group(1))
            if a:
                out.add(a)
    return out


class _OwnAddresses:
    """``addr in (_own_addresses(mail) | _returned_senders(mail, rest))``, the set made
    on the first question: most notices ask none (their addresses come from the
    strong forms, which only exclude Message-IDs, and flufl.bounce's are among them)."""

    __slots__ = ("_mail", "_rest", "_set")

    def __init__(self, mail: Mail, rest: str) -> None:
        self._mail, self._rest = mail, rest
        self._set: set[str] | None = None

    def __contains__(self, addr: object) -> bool:
        if self._set is None:
            self._set = _own_addresses(self._mail) | _returned_senders(self._mail, self._rest)
        return addr in self._set


_MSGID = re.compile(
    rb"^(?:>[ \t]*)*(?:message-id|in-reply-to|references|x-message-id|content-id|resent-message-id)"
    rb"[ \t]*:[ \t]*(?:<([^<>\s]+@[^<>\s]+)>)?", re.I | re.M)
_QUEUE_ID = re.compile(rb"<([^<>\s@]{10,}@[^<>\s]+)>")


_MSGID_QUICK = QuickPattern(_MSGID)


def _msgid_fields(raw: bytes, lowered: bytes | None = None) -> Iterator[re.Match[bytes]]:
    """``_MSGID.finditer(raw)``, tried at line starts only, in the lowered bytes
    (``lowered``: ``raw.lower()`` if already made)."""
    return _MSGID_QUICK.finditer(raw, lowered)


def _message_ids(raw: bytes, lowered: bytes | None = None) -> set[str]:
    """Message-IDs anywhere in the message: id@host tokens that are not recipients
    (``lowered``: ``raw.lower()`` if already made)."""
    out: set[str] = set()
    for m in _msgid_fields(raw[:1_000_000], None if lowered is None else lowered[:1_000_000]):
        # The field's own line and its folded continuation lines.
        end = m.end()
        while True:
            nl = raw.find(b"\n", end)
            if nl < 0 or nl + 1 >= len(raw) or raw[nl + 1: nl + 2] not in (b" ", b"\t"):
                end = nl if nl >= 0 else len(raw)
                break
            end = nl + 1
        for im in _QUEUE_ID.finditer(raw[m.start(): end]):
            out.add(im.group(1).decode("latin-1").lower())
    return out


#: Every Message-ID :func:`_message_ids` collects has its first "@" at this offset or
#: later: :data:`_QUEUE_ID` wants that many characters other than "@" before it, and
#: decoding as latin-1 and lowercasing keep each character one character.
_ID_AT_MIN = 10
assert _QUEUE_ID.pattern == rb"<([^<>\s@]{10,}@[^<>\s]+)>"


class _MessageIds:
    """``addr in _message_ids(mail.raw, mail.raw_lower)``, answered for the addresses
    asked about (one or two per notice) instead of collecting every Message-ID (a
    scan of every line of the message for the fields).

    A Message-ID is a ``<id@host>`` token (:data:`_QUEUE_ID`) on a Message-ID-like
    field's line (:data:`_MSGID`) or on one of the folded lines after it. So an ASCII
    ``addr`` is one when ``<addr>`` occurs in the lowered bytes, on a line that, once
    the folded lines above it are walked back over, opens such a field: a token
    cannot contain "<", ">" or white space, so every such occurrence is a token that
    the field's scan finds, and lowercasing ASCII bytes is lowercasing their text.
    Other addresses are looked up in the full set.
    """

    __slots__ = ("_all", "_answers", "_mail")

    def __init__(self, mail: Mail) -> None:
        self._mail = mail
        self._answers: dict[str, bool] = {}
        self._all: set[str] | None = None

    def __contains__(self, addr: object) -> bool:
        if not isinstance(addr, str) or addr.find("@") < _ID_AT_MIN:
            return False
        known = self._answers.get(addr)
        if known is None:
            known = self._answers[addr] = self._look_up(addr)
        return known

    def _look_up(self, addr: str) -> bool:
        if not addr.isascii():
            if self._all is None:
                self._all = _message_ids(self._mail.raw, self._mail.raw_lower)
            return addr in self._all
        token = f"<{addr}>".encode("ascii")
        if not _QUEUE_ID.fullmatch(token):
            return False
        raw, lowered = self._mail.raw, self._mail.raw_lower
        pos = lowered.find(token)
        while pos >= 0:
            start = raw.rfind(b"\n", 0, pos) + 1
            while start > 0 and raw[start: start + 1] in (b" ", b"\t"):
                start = raw.rfind(b"\n", 0, start - 1) + 1  # a folded line: go up
            # (The fields are looked for in the first megabyte, as _message_ids does.)
            if _MSGID.match(raw, start, 1_000_000) is not None:
                return True
            pos = lowered.find(token, pos + 1)
        return False


class _Either:
    """The union of two containers, for ``in`` tests only."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: Container[str], second: Container[str]) -> None:
        self._first, self._second = first, second

    def __contains__(self, addr: object) -> bool:
        return addr in self._first or addr in self._second


def _unfold(text: str) -> str | None:
    return re.sub(r"\s+", " ", text).strip() or None


def _first_error_paragraph(text: str) -> str | None:
    for para in re.split(r"\n\s*\n", text):
        if _ERRORISH.search(para):
            return re.sub(r"\s+", " ", para).strip()[:1000]
    return None
