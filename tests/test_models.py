"""models.py: the records' direct ``__init__`` is the one dataclasses would write."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbox_processor import parse_message
from mailbox_processor.models import (
    Classification,
    Finding,
    OriginalMessage,
    Report,
    Verdict,
    _direct_init,
    defer_context,
    replace,
)

ROOT = Path(__file__).resolve().parents[1]
RECORDS = (OriginalMessage, Finding, Verdict, Report)


def reference(cls: type) -> type:
    """``cls`` as :func:`dataclasses.dataclass` alone makes it (its own ``__init__``)."""
    return dataclasses.make_dataclass(
        cls.__name__,
        [(f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory,
                                            repr=f.repr, compare=f.compare))
         for f in dataclasses.fields(cls)],
        frozen=True)


def built(cls: type, *args: Any, **kwargs: Any) -> list[tuple[str, Any]]:
    """The instance's stored fields, in order (the dict a frozen dataclass fills)."""
    return list(vars(cls(*args, **kwargs)).items())


@pytest.mark.parametrize("cls", RECORDS)
def test_same_signature(cls: type) -> None:
    assert str(inspect.signature(cls)) == str(inspect.signature(reference(cls)))
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


def test_same_records_from_real_mail() -> None:
    reports = [parse_message(p.read_bytes()) for p in sorted((ROOT / "fixtures").rglob("*.eml"))]
    assert sum(len(r.verdicts) for r in reports) >= 5
    for report in reports:
        records: list[Any] = [report, report.original, *report.verdicts,
                              *(v.finding for v in report.verdicts)]
        for record in records:
            values = [getattr(record, f.name) for f in dataclasses.fields(record)]
            cls = type(record)
            assert built(cls, *values) == built(reference(cls), *values)
            keywords = dict(zip([f.name for f in dataclasses.fields(record)], values, strict=True))
            assert built(cls, **keywords) == built(reference(cls), **keywords)


_VALUES = st.one_of(st.none(), st.text(max_size=3), st.integers())


@given(st.sampled_from(RECORDS), st.data())
def test_same_records_from_any_arguments(cls: type, data: st.DataObject) -> None:
    """Any subset of the fields, by position or keyword: same record or same error."""
    names = [f.name for f in dataclasses.fields(cls)]
    npos = data.draw(st.integers(0, len(names)))
    args = data.draw(st.lists(_VALUES, min_size=npos, max_size=npos))
    kwargs = {n: data.draw(_VALUES) for n in data.draw(st.lists(st.sampled_from(names),
                                                                unique=True))}
    outcomes = []
    for maker in (cls, reference(cls)):
        try:
            outcomes.append(built(maker, *args, **kwargs))
        except TypeError as exc:
            outcomes.append(str(exc).split("()", 1)[-1])  # the message, less the name
    assert outcomes[0] == outcomes[1]


def test_still_frozen_and_defaults_fresh() -> None:
    report = Report(verdicts=(), parser=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.parser = "dsn"  # type: ignore[misc]
    assert report.original == OriginalMessage()
    assert report.original is not Report(verdicts=(), parser=None).original
    assert repr(Finding("a@b")) == repr(reference(Finding)("a@b"))


def test_only_plain_frozen_dataclasses() -> None:
    @dataclasses.dataclass
    class Thawed:
        x: int

    with pytest.raises(TypeError, match="only plain frozen"):
        _direct_init(Thawed)


@pytest.mark.parametrize("cls", RECORDS)
@given(data=st.data())
def test_replace_is_dataclasses_replace(cls: type, data: st.DataObject) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    record = cls(**{name: data.draw(_VALUES) for name in required})
    changes = {n: data.draw(_VALUES) for n in data.draw(st.lists(st.sampled_from(names),
                                                                 unique=True))}
    fast, plain = replace(record, **changes), dataclasses.replace(record, **changes)
    assert type(fast) is cls
    assert list(vars(fast).items()) == list(vars(plain).items())
    assert vars(record) == vars(cls(**{name: getattr(record, name) for name in names}))


# -- a context left to be worked out on first read (defer_context) ---------------------

_CALLS: list[tuple[str, ...]] = []


def _joined(*parts: str) -> str:
    """A module-level function (so that a finding holding it pickles)."""
    _CALLS.append(parts)
    return " ".join(parts)


def test_deferred_context_is_worked_out_once_on_first_read() -> None:
    _CALLS.clear()
    finding = defer_context(Finding("a@example.com", diagnostic="550"), _joined, "mailbox",
                            "disabled")
    assert _CALLS == []
    assert finding.context == "mailbox disabled"
    assert finding.context == "mailbox disabled"
    assert _CALLS == [("mailbox", "disabled")]


def test_deferred_context_record_behaves_as_a_plain_one() -> None:
    plain = Finding("a@example.com", diagnostic="550", context="mailbox disabled")
    later = defer_context(Finding("a@example.com", diagnostic="550"), _joined, "mailbox",
                          "disabled")
    # Equality, hash and repr leave the context out, as for a plain context.
    assert later == plain and hash(later) == hash(plain) and repr(later) == repr(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        later.context = "x"  # type: ignore[misc]
    copy = replace(later, status="5.1.1")
    assert (copy.status, copy.context) == ("5.1.1", "mailbox disabled")
    assert pickle.loads(pickle.dumps(later)).context == "mailbox disabled"
    assert dataclasses.asdict(later) == dataclasses.asdict(plain)
    assert Finding.context is None  # the class attribute is still the default


def test_rows_leave_the_deferred_context_unread() -> None:
    _CALLS.clear()
    diagnostic = "550 5.1.1 unknown"
    later = defer_context(Finding("a@example.com", diagnostic=diagnostic), _joined, "x")
    plain = Finding("a@example.com", diagnostic=diagnostic, context="x")

    def rows(finding: Finding) -> list[dict[str, Any]]:
        verdict = Verdict(finding, Classification.HARD, "userunknown", "rule")
        return Report(verdicts=(verdict,), parser="dsn").rows()

    assert rows(later) == rows(plain)
    assert _CALLS == []
    assert "context" not in rows(plain)[0]
