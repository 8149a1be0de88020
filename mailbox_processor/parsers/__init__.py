"""One parser per format, tried in an explicit order; the first that finds anything wins.

Each parser is a class with a ``name`` and a ``parse(mail) -> list[Finding]`` method
that guards cheaply first and returns ``[]`` when the message is not its kind (the
flufl.bounce detector shape, without directory scanning: order matters, so it is
written down here).
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from mailbox_processor.mime import Mail
from mailbox_processor.models import Finding
from mailbox_processor.parsers.arf import ARF
from mailbox_processor.parsers.autoreply import AutoReply
from mailbox_processor.parsers.dsn import DSN
from mailbox_processor.parsers.legacy import Legacy
from mailbox_processor.parsers.notification import JSONNotification


class Parser(Protocol):
    """What every parser module provides."""

    name: ClassVar[str]

    def parse(self, mail: Mail) -> list[Finding]:
        """Return one finding per recipient, or ``[]`` when the message is not this format."""
        ...


#: Run order. ARF before DSN: both are multipart/report. JSON notifications (Amazon
#: SES via SNS) before the text parsers. AutoReply last: many bounces carry
#: ``Auto-Submitted: auto-replied`` too, so it only runs once no bounce format matched.
PARSERS: tuple[Parser, ...] = (ARF(), DSN(), JSONNotification(), Legacy(), AutoReply())

__all__ = ["PARSERS", "Parser"]
