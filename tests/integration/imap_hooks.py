"""A real IMAPClient with hooks: to kick or SIGKILL at a precise point of a run.

Only the *trigger* is artificial; the fault itself (a ``doveadm kick``, a SIGKILL, a
missing MOVE capability) is what a real server or a real crash does. Imported by the
tests and by the child processes of the SIGKILL tests (``PYTHONPATH`` = this folder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailbox_processor.sources.imap import default_client_factory


class Hooked:
    """Pass everything through to ``client``; methods named in ``hooks`` first call
    ``hook(n)`` with n = 1, 2, ... on each call."""

    def __init__(self, client: Any, hooks: dict[str, Callable[[int], None]]) -> None:
        self._client, self._hooks = client, hooks
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        hook = self._hooks.get(name)
        if hook is None:
            return attr

        def wrapped(*a: Any, **kw: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            hook(self.calls[name])
            return attr(*a, **kw)

        return wrapped


def factory(hooks: dict[str, Callable[[int], None]], hide: tuple[bytes, ...] = ()) -> Any:
    """A ``client_factory`` for ImapSource: a real connection, hooked; ``hide`` drops
    capabilities from what the client believes the server offers."""

    def make(cfg: Any, ctx: Any) -> Any:
        client = default_client_factory(cfg, ctx)
        if hide:
            real = client.capabilities
            client.capabilities = lambda: tuple(c for c in real() if c not in hide)
        return Hooked(client, hooks)

    return make
