"""mailbox-processor: turn a bounce mailbox into a trustworthy suppression list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailbox_processor.models import (
    Classification,
    Finding,
    OriginalMessage,
    Report,
    Verdict,
)

if TYPE_CHECKING:
    from mailbox_processor.engine import parse_message

__version__ = "0.1.0"

__all__ = [
    "Classification",
    "Finding",
    "OriginalMessage",
    "Report",
    "Verdict",
    "__version__",
    "engine_build",
    "parse_message",
]


def engine_build() -> str:
    """How the parsing engine is installed: ``"compiled"`` (its modules are C extensions
    built by mypyc, see setup.py) or ``"pure Python"`` (the same results, slower)."""
    from importlib.util import find_spec

    spec = find_spec("mailbox_processor.fastmime")  # (found, not imported)
    origin = spec.origin if spec is not None else None
    return "compiled" if origin and not origin.endswith(".py") else "pure Python"


def __getattr__(name: str) -> Any:
    # The parsers and the rule table are imported on first use of parse_message: a
    # command that only reads the database (check, list, stats) starts without
    # compiling them (about 0.15 s of CPU).
    if name == "parse_message":
        from mailbox_processor.engine import parse_message

        return parse_message
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
