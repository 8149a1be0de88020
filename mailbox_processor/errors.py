"""Typed exceptions: each message names the object and says how to fix the problem."""

from __future__ import annotations


class MailboxProcessorError(Exception):
    """Base class of every error the library raises on purpose."""


class SourceError(MailboxProcessorError):
    """A mailbox, file or IMAP server could not be read."""


class ParseError(MailboxProcessorError):
    """A message could not be parsed at all (it is quarantined, not dropped)."""


class StoreError(MailboxProcessorError):
    """The suppression database could not be opened, migrated or written."""


class ConfigError(MailboxProcessorError):
    """The configuration (file, environment or flags) is invalid."""
