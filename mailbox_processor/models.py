"""Records that flow through the pipeline: findings, verdicts and reports.

Parsers produce :class:`Finding` objects (what a returned message *says* about one
recipient); :func:`mailbox_processor.classify.classify` turns each into a
:class:`Verdict` (what it *means*); :func:`mailbox_processor.engine.parse_message`
wraps them in one :class:`Report` per message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

_T = TypeVar("_T")


class Classification(str, Enum):
    """What one recipient line of a returned message means for that address."""

    HARD = "hard"
    SOFT = "soft"
    DELAYED = "delayed"
    AUTOREPLY = "autoreply"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"
    NOT_BOUNCE = "not_bounce"

    def __str__(self) -> str:
        return self.value


#: Reasons that mean the address itself is dead (hard bounce, with a 5xx code).
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})

#: Reasons that are about the *sending* side (our IP, domain, authentication), never
#: about the recipient's address (DESIGN.md invariant 4).
SENDER_SIDE_REASONS = frozenset({"authfailure", "badreputation", "requireptr", "blocked"})

#: Every reason word we emit (Sisimai's vocabulary).
REASONS = frozenset(
    {
        "authfailure", "badreputation", "blocked", "contenterror", "delivered",
        "exceedlimit", "expired", "feedback", "filtered", "hasmoved", "hostunknown",
        "mailboxfull", "mailererror", "mesgtoobig", "networkerror", "norelaying",
        "notaccept", "notcompliantrfc", "onhold", "policyviolation", "rejected",
        "requireptr", "securityerror", "spamdetected", "speeding", "suspend",
        "syntaxerror", "systemerror", "systemfull", "toomanyconn", "undefined",
        "userunknown", "vacation", "virusdetected",
    }
)


class _Factory:
    """The default of a field with a default factory (shown as dataclasses shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _direct_init(cls: type[_T]) -> type[_T]:
    """Give a frozen dataclass an ``__init__`` that fills the instance dict directly.

    The ``__init__`` that :func:`dataclasses.dataclass` writes for a frozen class sets
    each field through ``object.__setattr__`` (the class's own refuses), which makes a
    record of a dozen fields twice as slow to build; several are built per message.
    This one has the same parameters and defaults and stores the same values, in
    field order (tests/test_models.py compares the two).
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    frozen = cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    if not frozen or hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") \
            or any(not f.init or f.kw_only is True for f in fields):
        raise TypeError(f"{cls.__name__}: only plain frozen dataclasses are supported")
    params, lines = [], []
    names: dict[str, Any] = {"_FACTORY": _FACTORY}
    for f in fields:
        if f.default is not dataclasses.MISSING:
            names[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            names[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            lines.append(f"    if {f.name} is _FACTORY:\n        {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
    stored = ", ".join(f"{f.name}={f.name}" for f in fields)
    lines.append(f"    self.__dict__.update({stored})")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines), names)  # noqa: S102
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {**{f.name: f.type for f in fields}, "return": None}
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def replace(record: _T, /, **changes: Any) -> _T:
    """:func:`dataclasses.replace` for the records below, a quarter of its cost.

    ``dataclasses.replace`` collects every field into keyword arguments and calls
    ``__init__``; for these records (plain frozen dataclasses, their fields all in the
    instance dict, see :func:`_direct_init`) a copy of that dict with ``changes``
    applied is the same record. ``changes`` must name fields (unchecked: the callers
    are this package's own). tests/test_models.py compares it with the plain one.
    """
    new: _T = object.__new__(type(record))
    attributes = new.__dict__
    attributes.update(record.__dict__)
    attributes.update(changes)
    return new


@_direct_init
@dataclass(frozen=True)
class OriginalMessage:
    """Headers of the message that bounced, when the bounce carries them."""

    message_id: str | None = None
    subject: str | None = None
    from_addr: str | None = None
    to_addr: str | None = None
    date: str | None = None


@_direct_init
@dataclass(frozen=True)
class Finding:
    """What a returned message says about one recipient (RFC 3464 section 2.3).

    Every field is optional: legacy text bounces often carry only an address and a
    sentence. ``kind`` is set by parsers that know the message type outright
    (``"feedback"`` for ARF, ``"vacation"`` for auto-replies, ``"delivered"``),
    and ``reason`` when the format itself names the cause.
    """

    recipient: str | None
    action: str | None = None
    status: str | None = None
    smtp_code: str | None = None
    diagnostic: str | None = None
    diagnostic_type: str | None = None
    smtp_command: str | None = None
    remote_mta: str | None = None
    reporting_mta: str | None = None
    date: str | None = None
    kind: str | None = None
    reason: str | None = None
    #: Set when a store-and-forward gateway reported the failure after it had
    #: accepted the recipient (see ``parsers.dsn.GATEWAYS``): its "user unknown"
    #: cannot prove the address is gone.
    gateway: str | None = None
    #: More of the notice around the recipient: read by the classifier only when the
    #: diagnostic itself names no cause. Not stored.
    context: str | None = field(default=None, compare=False, repr=False)


class _Deferred:
    """A function and its arguments, called on the first read of the field holding it
    (module-level function, plain arguments: a record holding one still pickles)."""

    __slots__ = ("args", "func")

    def __init__(self, func: Callable[..., str | None], args: tuple[Any, ...]) -> None:
        self.func = func
        self.args = args


class _DeferredField:
    """The data descriptor of a field that may hold a :class:`_Deferred`: reading the
    field calls it once and keeps the result (see :func:`defer_context`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return None  # the field's default, as the class attribute was
        value = obj.__dict__[self.name]
        if value.__class__ is _Deferred:
            value = obj.__dict__[self.name] = value.func(*value.args)
        return value

    def __set__(self, obj: object, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {self.name!r}")

    def __delete__(self, obj: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {self.name!r}")


# Finding.context is worth working out only when the classifier reads it (about one
# finding in four): a parser can leave it to a function (defer_context).
Finding.context = _DeferredField("context")  # type: ignore[assignment]


def defer_context(finding: Finding, func: Callable[..., str | None], *args: Any) -> Finding:
    """Let ``finding.context`` be ``func(*args)``, called on the first read of it.

    The context is read by the classifier only when the diagnostic itself names no
    cause or names an unknown user, so a parser whose context is costly to find hands
    over the way to find it. ``func`` must be pure (the same answer whenever it is
    called) and, for pickling, a module-level function with plain arguments. Returns
    ``finding``.
    """
    finding.__dict__["context"] = _Deferred(func, args)
    return finding


@_direct_init
@dataclass(frozen=True)
class Verdict:
    """A :class:`Finding` plus its classification, reason word and the rule that decided."""

    finding: Finding
    classification: Classification
    reason: str | None
    rule_id: str

    @property
    def recipient(self) -> str | None:
        return self.finding.recipient

    @property
    def is_hard(self) -> bool:
        return self.classification is Classification.HARD


@_direct_init
@dataclass(frozen=True)
class Report:
    """The verdicts for one returned message, with where they came from.

    ``parser`` names the parser that understood the message (``None`` when none
    did); ``problems`` lists what was wrong with the input (broken MIME, bad
    charset, a size cap hit) without failing the whole message. ``error`` is set
    only when nothing could be made of the message at all: the caller must record and
    quarantine it. A message that is simply not a bounce has no verdicts and no error.
    """

    verdicts: tuple[Verdict, ...]
    parser: str | None
    message_id: str | None = None
    from_addr: str | None = None
    subject: str | None = None
    date: str | None = None
    original: OriginalMessage = field(default_factory=OriginalMessage)
    problems: tuple[str, ...] = ()
    error: str | None = None

    @property
    def is_bounce(self) -> bool:
        """True when any verdict is a hard or soft bounce."""
        return any(
            v.classification in (Classification.HARD, Classification.SOFT)
            for v in self.verdicts
        )

    def rows(self) -> list[dict[str, Any]]:
        """Flatten to one plain dict per verdict (for JSON, CSV and the database)."""
        out = []
        orig = dataclasses.asdict(self.original)
        for v in self.verdicts:
            # (The fields but the context, which is not output: it is not worked out.)
            row: dict[str, Any] = {name: getattr(v.finding, name) for name in _ROW_FIELDS}
            row.update(
                classification=v.classification.value,
                reason=v.reason,
                rule_id=v.rule_id,
                parser=self.parser,
                original_message_id=orig["message_id"],
                original_subject=orig["subject"],
                original_from=orig["from_addr"],
                original_to=orig["to_addr"],
            )
            out.append(row)
        return out


#: The fields of a :class:`Finding` that :meth:`Report.rows` outputs.
_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(Finding) if f.name != "context")
