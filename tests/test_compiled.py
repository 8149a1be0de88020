"""The engine compiled by mypyc (see setup.py) makes the very reports of its Python
source: the same verdicts, fields, problems and contexts, byte for byte."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mailbox_processor
from mailbox_processor import engine_build

ROOT = Path(__file__).resolve().parents[1]
PURE_WANTED = os.environ.get("MAILBOX_PROCESSOR_PURE_PYTHON", "") not in ("", "0")


def test_the_engine_is_compiled() -> None:
    if PURE_WANTED:
        pytest.skip("MAILBOX_PROCESSOR_PURE_PYTHON is set: the pure Python build is tested")
    assert engine_build() == "compiled", (
        "the engine's C extensions are missing: reinstall with `pip install -e .` (it "
        "needs a C compiler and the Python headers; its output says what failed), or "
        "set MAILBOX_PROCESSOR_PURE_PYTHON=1 to test the pure Python build")


def test_no_extension_is_older_than_its_source() -> None:
    """An edited module in a checkout runs only once it is compiled again."""
    package = Path(mailbox_processor.__file__).resolve().parent
    for ext in [*package.rglob("*.so"), *package.rglob("*.pyd")]:
        source = ext.with_name(ext.name.split(".")[0] + ".py")
        assert source.stat().st_mtime <= ext.stat().st_mtime, (
            f"{source} changed after it was compiled: run `pip install -e .` again")


def _reports(import_from: Path) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "same_output.py"), "--contexts",
         "--seed", "4321", "--mutations", "1500", "--import-from", str(import_from)],
        capture_output=True, text=True, check=True, timeout=600)
    return done.stdout, done.stderr


def test_compiled_and_pure_python_reports_are_identical(tmp_path: Path) -> None:
    if engine_build() != "compiled":
        pytest.skip("the engine is pure Python here: there is no compiled build to compare")
    installed = Path(mailbox_processor.__file__).resolve().parents[1]
    pure = tmp_path / "pure"
    shutil.copytree(installed / "mailbox_processor", pure / "mailbox_processor",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    compiled_out, compiled_err = _reports(installed)
    pure_out, pure_err = _reports(pure)
    assert "engine: compiled" in compiled_err
    assert "engine: pure Python" in pure_err
    lines = compiled_out.splitlines()
    assert len(lines) > 1500 and any("context of" in line for line in lines)
    for a, b in zip(lines, pure_out.splitlines(), strict=True):
        assert a == b
