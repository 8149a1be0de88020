"""Suppression policy: turn bounce events into suppression state.

The policy is data, stored in the database (tables ``policy`` and
``policy_settings``) so that SQL users can read and change it, and ``reclassify``
applies a change to history. Defaults:

========================================  ===============  ==============================
reason words                              action           meaning
========================================  ===============  ==============================
userunknown hostunknown hasmoved           ``suppress``     suppress at once, no expiry
notaccept feedback (complaints)
authfailure badreputation requireptr       ``sender_side``  about *us*: never counts
blocked spamdetected rejected                               against the recipient
vacation delivered                         ``never``        never suppress
every other reason (mailboxfull, ...)      ``count``        soft: suppress after 3 within
                                                            14 days, for 30 days
========================================  ===============  ==============================

Verdicts classified ``delayed``, ``autoreply``, ``delivered`` or ``not_bounce`` never
count, whatever their reason. A ``hard`` or ``complaint`` verdict whose reason is set
to ``count`` still suppresses at once (a hard bounce always does, unless its reason is
``sender_side`` or ``never``).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from operator import itemgetter
from typing import Any

import sqlite_utils

from mailbox_processor import store
from mailbox_processor.errors import StoreError
from mailbox_processor.models import HARD_REASONS, REASONS, SENDER_SIDE_REASONS, Classification


class Action(str, Enum):
    """What one event of a given reason does to its recipient's suppression state."""

    SUPPRESS = "suppress"
    COUNT = "count"
    NEVER = "never"
    SENDER_SIDE = "sender_side"

    def __str__(self) -> str:
        return self.value


def _default_actions() -> dict[str, Action]:
    actions = {r: Action.COUNT for r in REASONS}
    actions.update({r: Action.SUPPRESS for r in HARD_REASONS})
    actions["feedback"] = Action.SUPPRESS
    actions.update({r: Action.SENDER_SIDE for r in SENDER_SIDE_REASONS})
    # Our content judged spam, and our envelope sender refused (Sisimai's "rejected":
    # MAIL FROM rejected): both about us, never evidence against the recipient.
    actions["spamdetected"] = Action.SENDER_SIDE
    actions["rejected"] = Action.SENDER_SIDE
    actions["vacation"] = Action.NEVER
    actions["delivered"] = Action.NEVER
    return dict(sorted(actions.items()))


#: The default policy table: reason word -> action.
DEFAULT_ACTIONS: dict[str, Action] = _default_actions()

#: The default numeric settings: name -> (value, note).
DEFAULT_SETTINGS: dict[str, tuple[int, str]] = {
    "soft_threshold": (3, "soft bounces within soft_window_days that suppress"),
    "soft_window_days": (14, "window for counting soft bounces"),
    "soft_expiry_days": (30, "a soft-bounce suppression expires after this many days"),
    "raw_retention_days": (90, "raw messages kept (compressed) for reclassify"),
}

ACTIVE = store.ACTIVE

_CLASSES = {c.value: c for c in Classification}
_NEVER_CLASSES = frozenset(
    {Classification.DELAYED, Classification.AUTOREPLY, Classification.DELIVERED,
     Classification.NOT_BOUNCE}
)


@dataclass(frozen=True)
class Policy:
    """The suppression policy in force (see the module docstring for the defaults)."""

    actions: Mapping[str, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    soft_threshold: int = 3
    soft_window_days: int = 14
    soft_expiry_days: int = 30
    raw_retention_days: int = 90
    #: :meth:`action_for` of every classification and every known reason word (and
    #: ``None``), worked out once from ``actions`` when the policy is made: the
    #: policy asks it for every stored event of every address an ingest touches
    #: (about nine times per message), and a dict lookup costs a fraction of the rules.
    _table: dict[tuple[str, str | None], Action] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        reasons = {None, "", *REASONS, *self.actions}
        object.__setattr__(self, "_table", {
            (c, r): self._action_for(c, r) for c in _CLASSES for r in reasons})

    def action_for(self, classification: str, reason: str | None) -> Action:
        """Return the action for one verdict.

        >>> Policy().action_for("hard", "userunknown")
        <Action.SUPPRESS: 'suppress'>
        >>> Policy().action_for("soft", "authfailure")
        <Action.SENDER_SIDE: 'sender_side'>
        """
        action = self._table.get((classification, reason))
        return self._action_for(classification, reason) if action is None else action

    def _action_for(self, classification: str, reason: str | None) -> Action:
        """:meth:`action_for` worked out from the rules (what fills ``_table``)."""
        cls = _CLASSES.get(classification) or Classification(classification)
        if cls in _NEVER_CLASSES:
            return Action.NEVER
        action = self.actions.get(reason or "")
        if action is None:
            action = Action.COUNT if cls is Classification.SOFT else Action.SUPPRESS
        if action is Action.COUNT and cls in (Classification.HARD, Classification.COMPLAINT):
            return Action.SUPPRESS
        if action is Action.SUPPRESS and cls is Classification.SOFT and reason in HARD_REASONS:
            # A temporary failure of a "hard" reason (a 4xx notaccept) only counts; a
            # soft reason the operator set to "suppress" is suppressed as asked.
            return Action.COUNT
        return action


def load_policy(db: sqlite_utils.Database) -> Policy:
    """Return the policy stored in ``db`` (defaults for anything missing)."""
    actions: dict[str, Action] = dict(DEFAULT_ACTIONS)
    for reason, value in store.policy_actions(db).items():
        try:
            actions[reason] = Action(value)
        except ValueError:
            raise StoreError(
                f"policy table: reason {reason!r} has unknown action {value!r}; use one of "
                + ", ".join(a.value for a in Action)
            ) from None
    settings = {name: value for name, (value, _) in DEFAULT_SETTINGS.items()}
    settings.update(store.policy_settings(db))
    return Policy(
        actions=actions,
        soft_threshold=max(1, settings["soft_threshold"]),
        soft_window_days=settings["soft_window_days"],
        soft_expiry_days=settings["soft_expiry_days"],
        raw_retention_days=settings["raw_retention_days"],
    )


def set_action(db: sqlite_utils.Database, reason: str, action: str, note: str = "") -> None:
    """Change the action of one reason word (run ``reclassify`` to apply it to history)."""
    try:
        Action(action)
    except ValueError:
        raise StoreError(
            f"unknown policy action {action!r}: use one of "
            + ", ".join(a.value for a in Action)
        ) from None
    store.set_policy_action(db, reason, action, note or f"set by {who()}")


def set_setting(db: sqlite_utils.Database, name: str, value: int) -> None:
    """Change one numeric setting (``soft_threshold``, ``soft_window_days``, ...)."""
    if name not in DEFAULT_SETTINGS:
        raise StoreError(
            f"unknown policy setting {name!r}: use one of " + ", ".join(DEFAULT_SETTINGS)
        )
    if value < 0:
        raise StoreError(f"policy setting {name} must be >= 0, not {value}")
    store.set_policy_setting(db, name, value, DEFAULT_SETTINGS[name][1])


def who() -> str:
    """Return who is acting (for the history): the login name, else ``unknown``."""
    try:
        return os.environ.get("MAILBOX_PROCESSOR_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


# -- deciding --------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """The bounce-derived suppression of one address."""

    state: str  # "active" or "expired"
    classification: str
    reason: str | None
    diagnostic: str | None
    suppressed_at: str
    expires_at: str | None


_occurred_at = itemgetter("occurred_at")


def _days_between(a: str, b: str) -> float:
    fmt = store.TIME_FORMAT
    delta = datetime.strptime(b[:19], fmt) - datetime.strptime(a[:19], fmt)
    return delta.total_seconds() / 86400


def decide(
    events: Sequence[Mapping[str, Any]],
    policy: Policy,
    *,
    now: str,
    after: str | None = None,
) -> Decision | None:
    """Return the suppression that ``events`` of one address call for, or ``None``.

    ``events`` are ``bounces`` rows (``classification``, ``reason``, ``diagnostic``,
    ``occurred_at``, ``processed_at``). Only events processed after ``after`` (the
    time of a manual unsuppress) count. A ``suppress`` event wins (the latest one
    gives the why, no expiry); otherwise ``soft_threshold`` ``count`` events within
    ``soft_window_days`` suppress until the last of them plus ``soft_expiry_days``.
    """
    # One pass, one action per event: this runs for every address an ingest touches,
    # over all of its events.
    action_for = policy.action_for
    hard: list[Mapping[str, Any]] = []
    soft: list[Mapping[str, Any]] = []
    for e in events:
        if after is not None and not (e.get("processed_at") or "") > after:
            continue
        action = action_for(e["classification"], e.get("reason"))
        if action is Action.SUPPRESS:
            hard.append(e)
        elif action is Action.COUNT:
            soft.append(e)
    return _decision(hard, soft, policy, now)


def _decision(hard: Sequence[Mapping[str, Any]], soft: list[Mapping[str, Any]],
              policy: Policy, now: str) -> Decision | None:
    """What an address's live ``suppress`` events (``hard``) and ``count`` events
    (``soft``, sorted here in place) call for (see :func:`decide`)."""
    if hard:
        last = max(hard, key=_occurred_at)
        return Decision(ACTIVE, last["classification"], last.get("reason"),
                        last.get("diagnostic"), last["occurred_at"], None)
    soft.sort(key=_occurred_at)
    n = policy.soft_threshold
    for j in range(len(soft) - 1, n - 2, -1):
        first, last = soft[j - n + 1], soft[j]
        if _days_between(first["occurred_at"], last["occurred_at"]) <= policy.soft_window_days:
            expires = store.shift(last["occurred_at"], policy.soft_expiry_days)
            state = ACTIVE if expires > now else store.EXPIRED
            return Decision(state, last["classification"], last.get("reason"),
                            last.get("diagnostic"), last["occurred_at"], expires)
    return None



@dataclass(frozen=True)
class AddressChange:
    """What recomputing one address does to the database (see :func:`plan_address`).

    ``row`` is the ``suppressions`` row to save (``None``: nothing to save),
    ``delete`` says the row goes, ``history`` holds the ``suppression_history`` rows
    to append, in order, and ``newly`` is True when the address became actively
    suppressed.
    """

    row: dict[str, Any] | None = None
    delete: bool = False
    history: tuple[dict[str, Any], ...] = ()
    newly: bool = False


def plan_address(
    address: str,
    existing: Mapping[str, Any] | None,
    events: Sequence[Mapping[str, Any]],
    policy: Policy,
    *,
    now: str,
    actor: str = "mailbox-processor",
    why: str = "bounce",
) -> AddressChange:
    """Decide, without touching the database, what :func:`apply_to_address` writes.

    ``existing`` is the address's ``suppressions`` row (or ``None``) and ``events``
    its :func:`store.address_events` rows, oldest first.
    """
    # Lists and their C-level count/min/max: cheaper than a Counter and generators.
    classes = [e["classification"] for e in events]
    times = [e["occurred_at"] for e in events]
    base: dict[str, Any] = {
        "address": address,
        "domain": store.address_domain(address),
        "hard_count": classes.count("hard"),
        "soft_count": classes.count("soft"),
        "complaint_count": classes.count("complaint"),
        "first_seen": min(times, default=None),
        "last_seen": max(times, default=None),
        "updated_at": now,
    }
    was_active = _is_active(existing, now)
    after = existing.get("removed_at") if existing and existing["state"] == store.REMOVED else None
    decision = decide(events, policy, now=now, after=after)

    if existing is not None and existing["source"] != "bounce" and existing["state"] == ACTIVE:
        return AddressChange(row={**existing, **base})
    if decision is None:
        if existing is None:
            return AddressChange()
        if existing["state"] == store.REMOVED:
            return AddressChange(row={**existing, **base})
        return AddressChange(
            delete=True,
            history=(_history_row(address, now, "released", None, "policy", None, None, actor,
                                  f"{why}: the events no longer call for a suppression"),),
        )
    row = {
        **(existing or {}),
        **base,
        "state": decision.state,
        "classification": decision.classification,
        "reason": decision.reason,
        "diagnostic": decision.diagnostic,
        "suppressed_at": decision.suppressed_at,
        "expires_at": decision.expires_at,
        "source": "bounce",
        "removed_at": None,
    }
    if existing is None:
        row["note"] = None
    changed = (
        existing is None
        or existing["state"] != decision.state
        or existing.get("reason") != decision.reason
        or existing.get("classification") != decision.classification
    )
    history: tuple[dict[str, Any], ...] = ()
    if changed:
        history = (
            _history_row(address, now, "suppressed" if decision.state == ACTIVE else "expired",
                         decision.state, "bounce", decision.classification, decision.reason,
                         actor, f"{why}: {decision.diagnostic or ''}".strip(": ")),
        )
    return AddressChange(row=row, history=history,
                         newly=decision.state == ACTIVE and not was_active)


def apply_to_address(
    db: sqlite_utils.Database,
    address: str,
    policy: Policy,
    *,
    now: str | None = None,
    actor: str = "mailbox-processor",
    why: str = "bounce",
) -> bool:
    """Recompute the suppression of one address from all its events.

    Manual and imported suppressions stay as they are (only their counts change); a
    manual unsuppress holds until a new suppress-worthy event arrives after it.
    Returns True when the address became actively suppressed by this call.
    """
    now = now or store.now_utc()
    change = plan_address(address, store.get_suppression(db, address),
                          store.address_events(db, address), policy,
                          now=now, actor=actor, why=why)
    if change.delete:
        store.delete_suppression(db, address)
    if change.row is not None:
        store.save_suppression(db, change.row)
    store.add_history_rows(db, change.history)
    return change.newly


#: The ``bounces`` columns :func:`plan_address` and :func:`decide` read (with
#: ``processed_at``), and ``message_sha256`` for :func:`apply_to_messages`.
EVENT_COLUMNS = ("message_sha256", "recipient", "classification", "reason", "diagnostic",
                 "occurred_at")


def apply_to_messages(
    db: sqlite_utils.Database,
    messages: Sequence[tuple[str, Sequence[str]]],
    policy: Policy,
    *,
    now: str,
    actor: str = "mailbox-processor",
    why: str = "bounce",
) -> list[tuple[str, ...]]:
    """Recompute the suppressions a batch of new messages touches, in a few queries.

    ``messages`` are ``(sha256, addresses)`` in ingest order, their ``bounces`` rows
    already inserted. The result is the same as calling :func:`apply_to_address` for
    each address of each message in turn, when a message's turn sees only the
    events of earlier messages: the addresses' rows and events are read once
    (chunked ``IN (...)`` queries), decided in memory, and written back with one
    ``executemany`` per table. Returns the newly suppressed addresses of each message,
    e.g. ``[("bob@example.com",), ()]``.
    """
    addresses = list(dict.fromkeys(a for _, addrs in messages for a in addrs))
    if not addresses:
        return [() for _ in messages]
    turn = {sha: i for i, (sha, _) in enumerate(messages)}
    current: dict[str, dict[str, Any]] = store.get_suppressions(db, addresses)
    # decide() reads processed_at only for an address whose suppression was removed by
    # hand (its ``after``): only those are read with it (a join to ``messages`` per
    # event). In this batch a removed row can only become active or expired, never the
    # other way, so the rows read now name every address that can need it.
    events = store.events_of(db, addresses, EVENT_COLUMNS, processed_at=False)
    removed = [a for a in addresses if (current.get(a) or {}).get("state") == store.REMOVED]
    if removed:
        events.update(store.events_of(db, removed, EVENT_COLUMNS))
    # Writes keep their order: a run of saves (the last row of each address, at its
    # first place in the run) and a run of deletes alternate, one executemany each.
    deleted: list[str] = []
    saved: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    newly_per_message: list[tuple[str, ...]] = []
    for i, (_, addrs) in enumerate(messages):
        newly: list[str] = []
        for address in addrs:
            seen = [e for e in events.get(address, ())
                    if turn.get(e["message_sha256"], -1) <= i]
            change = plan_address(address, current.get(address), seen, policy,
                                  now=now, actor=actor, why=why)
            if change.delete:
                current.pop(address, None)
                if saved:
                    store.save_suppressions(db, list(saved.values()))
                    saved.clear()
                deleted.append(address)
            if change.row is not None:
                current[address] = change.row
                if deleted:
                    store.delete_suppressions(db, deleted)
                    deleted.clear()
                saved[address] = change.row
            history.extend(change.history)
            if change.newly:
                newly.append(address)
        newly_per_message.append(tuple(newly))
    store.delete_suppressions(db, deleted)
    store.save_suppressions(db, list(saved.values()))
    store.add_history_rows(db, history)
    return newly_per_message


def apply_to_addresses(
    db: sqlite_utils.Database,
    addresses: Sequence[str],
    policy: Policy,
    *,
    now: str | None = None,
    actor: str = "mailbox-processor",
    why: str = "bounce",
) -> list[str]:
    """Run :func:`apply_to_address` over many addresses, 500 per read; return the newly suppressed.

    Addresses are independent of each other, so this is :func:`apply_to_messages`
    with all of a chunk's events visible at once.
    """
    now = now or store.now_utc()
    newly: list[str] = []
    for start in range(0, len(addresses), store.IN_CHUNK):
        chunk = addresses[start : start + store.IN_CHUNK]
        for found in apply_to_messages(db, [("", chunk)], policy, now=now, actor=actor,
                                       why=why):
            newly.extend(found)
    return newly


def _is_active(row: Mapping[str, Any] | None, now: str) -> bool:
    if row is None or row["state"] != ACTIVE:
        return False
    return row.get("expires_at") is None or row["expires_at"] > now


def _history_row(
    address: str, at: str, event: str, state: str | None, source: str,
    classification: str | None, reason: str | None, actor: str, note: str | None,
) -> dict[str, Any]:
    return {"address": address, "at": at, "event": event, "state": state, "source": source,
            "classification": classification, "reason": reason, "actor": actor, "note": note}


def _history(
    db: sqlite_utils.Database, address: str, at: str, event: str, state: str | None,
    source: str, classification: str | None, reason: str | None, actor: str, note: str | None,
) -> None:
    store.add_history(
        db, _history_row(address, at, event, state, source, classification, reason, actor, note)
    )


# -- manual changes ----------------------------------------------------------------------


def suppress_address(
    db: sqlite_utils.Database,
    address: str,
    *,
    note: str | None = None,
    actor: str | None = None,
    source: str = "manual",
    classification: str | None = None,
    reason: str | None = None,
    diagnostic: str | None = None,
    now: str | None = None,
) -> bool:
    """Suppress an address by hand (or from an import); return False if already active.

    The change and who made it go to ``suppression_history``.
    """
    norm = store.normalise_address(address)
    if norm is None:
        raise StoreError(f"{address!r} is not an email address: expected local@domain")
    now = now or store.now_utc()
    actor = actor or who()
    existing = store.get_suppression(db, norm)
    if _is_active(existing, now):
        return False
    row: dict[str, Any] = {
        **(existing or {"hard_count": 0, "soft_count": 0, "complaint_count": 0}),
        "address": norm,
        "domain": store.address_domain(norm),
        "state": ACTIVE,
        "classification": classification or (existing or {}).get("classification") or "hard",
        "reason": reason or (existing or {}).get("reason"),
        "diagnostic": diagnostic or (existing or {}).get("diagnostic"),
        "suppressed_at": now,
        "expires_at": None,
        "removed_at": None,
        "source": source,
        "note": note,
        "updated_at": now,
    }
    store.save_suppression(db, row)
    _history(db, norm, now, "suppressed", ACTIVE, source, row["classification"],
             row["reason"], actor, note)
    return True


def unsuppress_address(
    db: sqlite_utils.Database,
    address: str,
    *,
    note: str | None = None,
    actor: str | None = None,
    now: str | None = None,
) -> bool:
    """Remove a suppression by hand; return False when the address was not suppressed.

    A later suppress-worthy bounce (processed after this moment) suppresses again.
    """
    norm = store.normalise_address(address)
    if norm is None:
        raise StoreError(f"{address!r} is not an email address: expected local@domain")
    now = now or store.now_utc()
    existing = store.get_suppression(db, norm)
    if existing is None or existing["state"] == store.REMOVED:
        return False
    store.save_suppression(
        db, {**existing, "state": store.REMOVED, "removed_at": now, "source": "manual",
             "note": note, "updated_at": now},
    )
    _history(db, norm, now, "unsuppressed", store.REMOVED, "manual",
             existing.get("classification"), existing.get("reason"), actor or who(), note)
    return True


# -- explaining ----------------------------------------------------------------------------

ADVICE = {
    "hard": "verify or remove the address before mailing again",
    "complaint": "the recipient complained: do not mail again without fresh consent",
    "soft": "resend manually if the cause is resolved (or wait for the expiry)",
    "sender_side": "fix the sending side (SPF/DKIM/PTR, reputation, delisting): the "
                   "address itself is not at fault",
    "ok": "nothing to do: the address may be mailed",
}


def describe_address(db: sqlite_utils.Database, address: str) -> dict[str, Any]:
    """Return the state, the why, the recommended action and the history of an address.

    Shape: ``{"address", "state", "type", "reason", "diagnostic", "source", "note",
    "expires_at", "hard_count", "soft_count", "complaint_count", "first_seen",
    "last_seen", "action", "events": [...], "history": [...]}``.
    """
    norm = store.normalise_address(address)
    if norm is None:
        raise StoreError(f"{address!r} is not an email address: expected local@domain")
    now = store.now_utc()
    sup = store.get_suppression(db, norm) or {}
    events = list(store.list_bounces(db, address=norm))
    state = sup.get("state") or "not suppressed"
    if state == ACTIVE and sup.get("expires_at") and sup["expires_at"] <= now:
        state = store.EXPIRED
    if state == ACTIVE:
        advice = ADVICE.get(sup.get("classification") or "hard", ADVICE["hard"])
        if sup.get("classification") == "soft" and sup.get("expires_at"):
            advice += f"; expires {sup['expires_at']}"
    elif events and all(e["policy_action"] == Action.SENDER_SIDE.value for e in events
                         if e["type"] in ("hard", "soft")):
        advice = ADVICE["sender_side"]
    elif any(e["policy_action"] == Action.COUNT.value for e in events):
        advice = ADVICE["soft"] + " (soft bounces are counted; not suppressed)"
    else:
        advice = ADVICE["ok"]
    return {
        "address": norm,
        "state": state,
        "type": sup.get("classification"),
        "reason": sup.get("reason"),
        "diagnostic": sup.get("diagnostic"),
        "source": sup.get("source"),
        "note": sup.get("note"),
        "expires_at": sup.get("expires_at"),
        "hard_count": sup.get("hard_count", sum(e["type"] == "hard" for e in events)),
        "soft_count": sup.get("soft_count", sum(e["type"] == "soft" for e in events)),
        "complaint_count": sup.get("complaint_count",
                                   sum(e["type"] == "complaint" for e in events)),
        "first_seen": sup.get("first_seen") or (events[-1]["occurred_at"] if events else None),
        "last_seen": sup.get("last_seen") or (events[0]["occurred_at"] if events else None),
        "action": advice,
        "events": events,
        "history": store.address_history(db, norm),
    }
