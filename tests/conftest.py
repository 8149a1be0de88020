"""Shared pytest fixtures: ``db``, ``tmp_db_path``, ``runner``, ``load_eml``; and the
hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

from mailbox_processor import store

# The suite's property tests are derandomized, so that a run is reproducible and CI can
# never go red on a draw the previous run did not make. New inputs are explored on
# purpose, with `HYPOTHESIS_PROFILE=explore pytest tests/test_robustness.py`; whatever
# that finds becomes a plain regression test (see test_robustness.py).
settings.register_profile(
    "default", max_examples=200, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "explore", max_examples=5000, derandomize=False, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``pure_python`` tests on the compiled engine: their patches of a module's
    globals would not reach the compiled code, and they would compare it with itself.
    ``tests/test_compiled.py`` runs them on a pure copy of the package instead."""
    from mailbox_processor import engine_build

    if engine_build() != "compiled":
        return
    skip = pytest.mark.skip(reason="patches an engine module: run on a pure copy by "
                                   "tests/test_compiled.py")
    for item in items:
        if item.get_closest_marker("pure_python"):
            item.add_marker(skip)


@pytest.fixture
def db() -> Iterator[sqlite_utils.Database]:
    """A fresh, migrated in-memory database."""
    database = store.open_db(":memory:")
    yield database
    database.close()


@pytest.fixture
def tmp_db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A path for a database file that does not exist yet (and no env override)."""
    monkeypatch.delenv(store.DB_ENV, raising=False)
    return tmp_path / "bounces.db"


@pytest.fixture
def runner() -> CliRunner:
    """A click test runner."""
    return CliRunner()


@pytest.fixture
def load_eml() -> Callable[[str], bytes]:
    """Return a loader of raw bytes: a path under fixtures/, or a corpus file name."""

    def load(name: str) -> bytes:
        for base in (FIXTURES, CORPUS):
            path = base / name
            if path.is_file():
                return path.read_bytes()
        raise FileNotFoundError(name)

    return load
