"""text.py: the SMTP-command finder's shortcut agrees with the plain regex scan."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import enough

from mailbox_processor.mime import Mail
from mailbox_processor.text import (
    _COMMAND,
    _COMMAND_STARTS,
    _SMTP_REPLY_STRICT,
    STATUS,
    LiteralStarts,
    _command_starts,
    find_command,
    find_smtp_code,
    find_status,
    matches_at,
    normalise_address,
)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"


def positions(text: str, literals: Iterable[str]) -> Iterator[int]:
    """Every offset in ``text`` where one of ``literals`` occurs: what
    :class:`LiteralStarts` must find (the plain oracle)."""
    for literal in literals:
        i = text.find(literal)
        while i >= 0:
            yield i
            i = text.find(literal, i + 1)


def spans(low: str) -> list[tuple[int, int]]:
    """find_command's matches: ``_COMMAND`` tried only where its opening literals are."""
    return [m.span() for m in matches_at(_COMMAND, low, _command_starts(low))]


def reference(low: str) -> list[tuple[int, int]]:
    return [m.span() for m in _COMMAND.finditer(low)]


def notices() -> list[str]:
    paths = sorted((ROOT / "fixtures").rglob("*.eml"))
    maildir = ROOT / "fixtures" / "maildir"
    paths += sorted(p for sub in ("cur", "new") for p in (maildir / sub).iterdir())
    if CORPUS.is_dir():
        paths += sorted(CORPUS.iterdir())
    return [Mail.from_bytes(p.read_bytes()).notice_text.lower() for p in paths]


def leading_literals(items: list[tuple[object, object]]) -> set[str]:
    """Every literal text a parsed regex sequence can open with (up to its first
    non-literal element), groups and alternations of literals expanded."""
    import re._parser as sre_parse  # the stdlib's own parse of the pattern

    out = {""}
    for op, arg in items:
        if op is sre_parse.LITERAL:
            out = {o + chr(arg) for o in out}  # type: ignore[call-overload]
        elif op is sre_parse.AT:
            continue
        elif op is sre_parse.SUBPATTERN:
            inner = leading_literals(list(arg[-1]))  # type: ignore[index]
            out = {o + i for o in out for i in inner}
            if not all(_complete(list(arg[-1]))):  # type: ignore[index]
                return out
        elif op is sre_parse.BRANCH:
            alts = arg[1]  # type: ignore[index]
            inner = set().union(*(leading_literals(list(a)) for a in alts))
            out = {o + i for o in out for i in inner}
            if not all(all(_complete(list(a))) for a in alts):
                return out
        else:
            return out
    return out


def _complete(items: list[tuple[object, object]]) -> list[bool]:
    """Whether each element of a sequence is purely literal (fully expanded above)."""
    import re._parser as sre_parse

    flags = []
    for op, arg in items:
        if op in (sre_parse.LITERAL, sre_parse.AT):
            flags.append(True)
        elif op is sre_parse.SUBPATTERN:
            flags.append(all(_complete(list(arg[-1]))))  # type: ignore[index]
        elif op is sre_parse.BRANCH:
            flags.append(all(all(_complete(list(a))) for a in arg[1]))  # type: ignore[index]
        else:
            flags.append(False)
    return flags


def test_every_alternative_starts_with_a_listed_literal() -> None:
    """Whatever an alternative of the pattern opens with starts with a listed literal."""
    import re._parser as sre_parse

    parsed = sre_parse.parse(_COMMAND.pattern, _COMMAND.flags)
    (op, arg), = list(parsed)
    assert op is sre_parse.BRANCH
    branches = arg[1]  # type: ignore[index]
    assert len(branches) == 16
    for branch in branches:
        for literal in leading_literals(list(branch)):
            assert any(literal.startswith(s) for s in _COMMAND_STARTS), literal


def test_same_matches_on_real_notices() -> None:
    texts = notices()
    assert sum(bool(reference(t)) for t in texts) >= 5
    for text in texts:
        assert spans(text) == reference(text)


SAMPLES = [
    "550 5.1.1 <a@b>: recipient address rejected: user unknown (in reply to rcpt to command)",
    "smtp error from remote mail server after rcpt to:<a@b>:\n550 no such user",
    ">>> data\n<<< 554 rejected", "most progress was rcpt to response",
    "mail from:<x@y>\n<<< 550 no", "xrcpt to:<a@b> <<< 550", "host said (rcpt)\n",
    "after after the data after end of data", "[rcpt_to] refused to talk to me",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_matches_on_samples(text: str) -> None:
    assert spans(text) == reference(text)
    assert find_command(text) is None or reference(text)


WORDS = [*_COMMAND_STARTS, "rcpt to", "data", "end of data", "command", "the ", "mail from",
         "helo", "ehlo", "connect", "initial connection", "pipelined ", "mail server ",
         "<<< 5", "<a@b>", "\n", " ", ")", "(", "x"]


@given(st.lists(st.sampled_from(WORDS), max_size=30))
def test_same_matches_on_generated_text(words: list[str]) -> None:
    text = "".join(words)
    assert spans(text) == reference(text)


def test_command_starts_are_the_literal_positions_on_real_notices() -> None:
    texts = notices()
    assert sum(bool(_command_starts(t)) for t in texts) >= 5
    for text in texts:
        assert sorted(set(_command_starts(text))) == sorted(set(positions(text, _COMMAND_STARTS)))


@given(st.lists(st.sampled_from(WORDS), max_size=30))
def test_command_starts_are_the_literal_positions(words: list[str]) -> None:
    text = "".join(words)
    assert sorted(set(_command_starts(text))) == sorted(set(positions(text, _COMMAND_STARTS)))


#: Literals that overlap on their anchor ("ab_cd" holds "ab_" and "_cd", both found by
#: "_"), share it at one offset, or are found by a common character.
OVERLAPPING = ["ab_", "_cd", "b_c", "_", "xa_", "abc", "bca", "cab", "a"]


@given(st.lists(st.sampled_from(OVERLAPPING), min_size=1, max_size=6, unique=True),
       st.text(alphabet="abcdx_ ", max_size=40))
def test_literal_starts_hold_every_start(literals: list[str], text: str) -> None:
    """Every start of a literal is given; one that is not a start only where two
    literals overlap on their anchor."""
    found = set(LiteralStarts(literals)(text))
    expected = set(positions(text, literals))
    assert expected <= found
    assert all(0 <= i < len(text) for i in found)


def test_literal_starts_overlaid_anchors() -> None:
    starts = LiteralStarts(["ab_", "_cd"])
    # Where "_" is found, either literal may start: 8 is no start, but is given.
    assert sorted(set(starts("ab_cd ab_ _cd"))) == [0, 2, 6, 8, 10]
    assert sorted(set(starts("xx_cd"))) == [0, 2]
    assert LiteralStarts(["abc"])("xyz") == []
    with pytest.raises(ValueError, match="empty"):
        LiteralStarts(["a", ""])


# --- status and reply-code patterns, their lookbehind moved after the first class ---

#: The patterns as first written (lookbehind first): the oracle.
PLAIN_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
PLAIN_SMTP_REPLY_STRICT = re.compile(
    r"(?<![\d.#])([245][0-5]\d)(?:[ -]+(?:#?[245]\.\d{1,3}\.\d{1,3})|:?[ -](?=[A-Za-z<(\[]))")


def code_matches(text: str) -> list[object]:
    return [(m.span(), m.groups()) for pattern in (STATUS, _SMTP_REPLY_STRICT)
            for m in pattern.finditer(text)]


def plain_code_matches(text: str) -> list[object]:
    return [(m.span(), m.groups()) for pattern in (PLAIN_STATUS, PLAIN_SMTP_REPLY_STRICT)
            for m in pattern.finditer(text)]


def test_code_patterns_on_real_notices() -> None:
    texts = notices()
    assert sum(len(code_matches(t)) for t in texts) > 50
    for text in texts:
        assert code_matches(text) == plain_code_matches(text)


CODE_WORDS = ["5", "4", "2", "550", "5.1.1", "4.7.26", ".", "#", "-", " ", "x", "\n", "1",
              "0", "25", "٥", "<", "(", "user", ":", "2.0.0", "554 5.7.1 "]


@given(st.lists(st.sampled_from(CODE_WORDS), max_size=20))
def test_code_patterns_on_generated_text(words: list[str]) -> None:
    text = "".join(words)
    assert code_matches(text) == plain_code_matches(text)


# --- normalise_address ------------------------------------------------------------

def plain_normalise_address(addr: str | None) -> str | None:
    """normalise_address as first written: the oracle."""
    if not addr:
        return None
    a = addr.strip()
    if ";" in a[:12] and a.split(";", 1)[0].strip().lower() in ("rfc822", "utf-8", "x-local"):
        a = a.split(";", 1)[1].strip()
    m = re.search(r"<([^<>]*@[^<>]*)>", a) if "<" in a else None
    if m:
        a = m.group(1)
    a = a.strip().strip("<>'()[],;:").rstrip(".").strip()
    if a.count('"') == 1 or (a.startswith('"') and a.endswith('"')):
        a = a.replace('"', "")
    if a.startswith("@") and ":" in a:
        a = a.split(":", 1)[1]
    if a.lower().startswith("mailto:"):
        a = a[7:]
    if "@" not in a:
        return None
    local, _, domain = a.rpartition("@")
    if not local or not domain or " " in domain:
        return None
    return f"{local}@{domain}".lower()


ADDRESS_WORDS = ["rfc822;", "RFC822; ", "utf-8;", "a", "B", "@", "@r:", "x.org", " ", "<", ">",
                 '"', "'", "(", ")", "[", "]", ",", ";", ":", ".", "mailto:", "MAILTO:",
                 "maİlto:", "\u0130", "\u212a", "\u03a3", "Σ", "\t", "\n", "x-local;"]


@given(st.lists(st.sampled_from(ADDRESS_WORDS), max_size=12))
def test_normalise_address_as_plain(words: list[str]) -> None:
    text = "".join(words)
    assert normalise_address(text) == plain_normalise_address(text)


def test_normalise_address_on_real_notices() -> None:
    candidates = [m.group(0) for text in notices()
                  for m in re.finditer(r"[^\s]{0,20}@[^\s]{0,30}", text)]
    assert len(candidates) > enough(100, 40)
    for text in candidates + ["Mailto:A@B.C", "rfc822;<x@y.z>", "", None]:
        assert normalise_address(text) == plain_normalise_address(text)


# -- find_status / find_smtp_code: one search first, the loop only past a 2xx -------------


def _first_code(pattern: re.Pattern[str], text: str, failure: bool) -> str | None:
    """The plain reading: the first match's code, or with ``failure`` the first
    non-2xx one, else the first (the codes being the joined groups, or group 1)."""
    first = None
    for m in pattern.finditer(text):
        code = ".".join(m.groups()) if pattern is STATUS else m.group(1)
        if not failure or code[0] != "2":
            return code
        first = first or code
    return first


_CODES = st.text(alphabet="245013.9 -#:x<a\n", max_size=40)


@given(_CODES, st.booleans())
def test_status_and_code_finders_are_the_plain_loop(text: str, failure: bool) -> None:
    assert find_status(text, failure=failure) == _first_code(STATUS, text, failure)
    assert find_smtp_code(text, failure=failure) == _first_code(_SMTP_REPLY_STRICT, text,
                                                                failure)


@pytest.mark.parametrize("text", [
    "250 2.1.5 ok 550 5.1.1 no", "250 2.0.0 ok", "x 2.1.5 y 5.1.1", "5.1.1.2 4.2.2",
    "1.2.5.1.1 4.4.7", "250-2.1.5 a 250 2.0.0 b", "", "no code", "550 x 250 2.0.0 y",
    "2.0.0 then 2.0.0", "#250 2.0.0 x 451 4.7.1 y",
])
@pytest.mark.parametrize("failure", [False, True])
def test_status_and_code_finders_on_transcripts(text: str, failure: bool) -> None:
    assert find_status(text, failure=failure) == _first_code(STATUS, text, failure)
    assert find_smtp_code(text, failure=failure) == _first_code(_SMTP_REPLY_STRICT, text,
                                                                failure)
