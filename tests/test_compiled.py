"""The engine compiled by mypyc (see setup.py) makes the very reports of its Python
source: the same verdicts, fields, problems and contexts, byte for byte.

Where the two could differ is a value the compiled code checks against its type hint
and finds to be something else (a TypeError the parsers record as a problem): the
stdlib's typing says a header value is a str, while compat32 returns a Header for a
field with raw 8-bit bytes. Hence the inputs with 8-bit bytes in each header line.
"""

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


def _pure_copy(tmp_path: Path) -> Path:
    """A copy of the installed package without its extensions: pure Python."""
    installed = Path(mailbox_processor.__file__).resolve().parents[1]
    pure = tmp_path / "pure"
    shutil.copytree(installed / "mailbox_processor", pure / "mailbox_processor",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    return pure


def _reports(import_from: Path) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "same_output.py"), "--contexts",
         "--seed", "4321", "--mutations", "1500", "--eight-bit-headers", "60",
         "--import-from", str(import_from)],
        capture_output=True, text=True, check=True, timeout=600)
    return done.stdout, done.stderr


def test_compiled_and_pure_python_reports_are_identical(tmp_path: Path) -> None:
    if engine_build() != "compiled":
        pytest.skip("the engine is pure Python here: there is no compiled build to compare")
    installed = Path(mailbox_processor.__file__).resolve().parents[1]
    compiled_out, compiled_err = _reports(installed)
    pure_out, pure_err = _reports(_pure_copy(tmp_path))
    assert "engine: compiled" in compiled_err
    assert "engine: pure Python" in pure_err
    lines = compiled_out.splitlines()
    assert len(lines) > 1500 and any("context of" in line for line in lines)
    assert any(line.startswith("8bit") for line in lines)
    for a, b in zip(lines, pure_out.splitlines(), strict=True):
        assert a == b


def test_the_pure_python_tests_pass_on_a_pure_copy(tmp_path: Path) -> None:
    """The tests marked ``pure_python`` compare a shortcut with the plain code by
    patching the plain version into the module, which the compiled engine's own calls
    would not see: on the compiled engine they are skipped, and run here instead."""
    if engine_build() != "compiled":
        pytest.skip("the engine is pure Python here: the suite runs them itself")
    files = sorted(str(p) for p in (ROOT / "tests").rglob("test_*.py")
                   if "mark.pure_python" in p.read_text(encoding="utf-8"))
    assert len(files) >= 4
    pure = _pure_copy(tmp_path)
    # (Run from the copy: ``python -m`` puts the working directory first on sys.path.)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "pure_python",
         *files], cwd=pure, capture_output=True, text=True, timeout=900)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary, summary
