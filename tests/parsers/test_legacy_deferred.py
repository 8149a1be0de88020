"""The legacy parser's context, left to be worked out when the classifier reads it,
is the one it would have stored at once."""

from __future__ import annotations

import pytest
from strategies import eager_context, enough, sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers import legacy

#: The plain versions are patched into the module: see tests/test_compiled.py.
pytestmark = pytest.mark.pure_python


def test_deferred_context_is_the_one_worked_out_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    raws = [p.read_bytes() for p in sample_paths()]
    lazy = [legacy.Legacy().parse(Mail.from_bytes(raw)) for raw in raws]
    with monkeypatch.context() as patch:
        patch.setattr(legacy, "defer_context", eager_context)
        eager = [legacy.Legacy().parse(Mail.from_bytes(raw)) for raw in raws]
    assert lazy == eager
    # Read later, in another order: the same texts.
    read = [[f.context for f in reversed(findings)] for findings in lazy]
    assert read == [[f.context for f in reversed(findings)] for findings in eager]
    deferred = sum(1 for findings in eager for f in findings if f.context)
    assert deferred >= enough(50, 3)
