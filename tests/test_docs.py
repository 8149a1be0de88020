"""The README documents every command (generated from --help by cog)."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from mailbox_processor.cli import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
    return out


def test_every_command_has_help_text_and_a_readme_entry() -> None:
    commands = _commands(cli)
    assert {"parse", "scan", "list", "show", "check", "poll", "watch"} <= {c[0] for c in commands}
    for path in commands:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        assert f"### `mailbox-processor {' '.join(path)}`" in README, path
