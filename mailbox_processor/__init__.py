"""mailbox-processor: turn a bounce mailbox into a trustworthy suppression list."""

from __future__ import annotations

from mailbox_processor.engine import parse_message
from mailbox_processor.models import (
    Classification,
    Finding,
    OriginalMessage,
    Report,
    Verdict,
)

__version__ = "0.1.0"

__all__ = [
    "Classification",
    "Finding",
    "OriginalMessage",
    "Report",
    "Verdict",
    "__version__",
    "parse_message",
]
