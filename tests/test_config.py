"""Config file, environment and flags for IMAP mailboxes (no server needed)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbox_processor import cli, poller
from mailbox_processor.config import (
    MailboxConfig,
    PostAction,
    build_mailbox,
    find_config_file,
    load_mailboxes,
    resolve_password,
)
from mailbox_processor.errors import ConfigError

BASE = {"host": "imap.example.org", "user": "bounces@example.org", "password_env": "MP_PW"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("MAILBOX_PROCESSOR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_defaults_from_flags_only() -> None:
    (cfg,) = load_mailboxes(None, overrides=BASE)
    assert cfg == MailboxConfig(name="default", **BASE)
    assert (cfg.tls, cfg.effective_port, cfg.folder, str(cfg.post_action)) == (
        "implicit", 993, "INBOX", "move:Processed")
    assert cfg.identity == "bounces@example.org@imap.example.org:993"
    assert cfg.url == "imap://bounces@example.org@imap.example.org:993/INBOX"
    assert build_mailbox("x", {**BASE, "tls": "starttls"}).effective_port == 143


def test_precedence_file_then_env_then_flags(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write(tmp_path / "mp.toml", """
batch_size = 10
folder = "Top"
after = "keep"
[mailboxes.a]
host = "imap.example.org"
user = "a@example.org"
password_env = "A_PW"
folder = "FromFile"
port = 1993
""")
    (cfg,) = load_mailboxes(conf)
    assert (cfg.name, cfg.batch_size, cfg.folder, cfg.after, cfg.port) == (
        "a", 10, "FromFile", "keep", 1993)
    monkeypatch.setenv("MAILBOX_PROCESSOR_FOLDER", "FromEnv")
    monkeypatch.setenv("MAILBOX_PROCESSOR_BATCH_SIZE", "20")
    monkeypatch.setenv("MAILBOX_PROCESSOR_INSECURE", "yes")
    (cfg,) = load_mailboxes(conf)
    assert (cfg.folder, cfg.batch_size, cfg.insecure) == ("FromEnv", 20, True)
    (cfg,) = load_mailboxes(conf, overrides={"folder": "FromFlag", "batch_size": None})
    assert (cfg.folder, cfg.batch_size) == ("FromFlag", 20)


def test_several_mailboxes_and_selection(tmp_path: Path) -> None:
    conf = write(tmp_path / "mp.toml", """
user = "shared@example.org"
password_command = "echo x"
[mailboxes.one]
host = "one.example.org"
[mailboxes.two]
host = "two.example.org"
after = "seen"
""")
    assert [c.name for c in load_mailboxes(conf)] == ["one", "two"]
    (two,) = load_mailboxes(conf, names=("two",))
    assert (two.host, two.post_action) == ("two.example.org", PostAction("seen"))
    with pytest.raises(ConfigError, match="no mailbox named 'three'.*one, two"):
        load_mailboxes(conf, names=("three",))


def test_default_config_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config_file(None) is None
    xdg = tmp_path / "xdg" / "mailbox-processor"
    xdg.mkdir(parents=True)
    user_conf = write(xdg / "config.toml", "")
    assert find_config_file(None) == user_conf
    local = write(tmp_path / "mailbox-processor.toml", "")
    assert find_config_file(None) == local  # ./mailbox-processor.toml wins
    monkeypatch.setenv("MAILBOX_PROCESSOR_CONFIG", str(user_conf))
    assert find_config_file(None) == user_conf
    with pytest.raises(ConfigError, match="not found: check --config"):
        find_config_file(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"user": "u", "password_env": "X"}, "no IMAP host: use --host"),
        ({"host": "h", "password_env": "X"}, "no IMAP user: use --user"),
        ({"host": "h", "user": "u"}, "no password source: use --password-env"),
        ({**BASE, "password_file": "f"}, "more than one password source"),
        ({**BASE, "tls": "ssl"}, "tls must be one of implicit, starttls, plain"),
        ({**BASE, "after": "archive"}, "invalid after value 'archive'"),
        ({**BASE, "after": "move:"}, "use keep, seen, delete or move:FOLDER"),
        ({**BASE, "port": "imap"}, "port must be a number"),
        ({**BASE, "port": 70000}, "port 70000 is out of range"),
        ({**BASE, "batch_size": 0}, "batch_size must be at least 1"),
        ({**BASE, "auth": "xoauth2"}, "needs oauth2_token_command"),
        ({**BASE, "cafile": "/nonexistent/ca.pem"}, "CA file /nonexistent/ca.pem not found"),
        ({**BASE, "insecure": "maybe"}, "insecure must be true or false"),
        ({**BASE, "after": "move:INBOX"}, "after files messages into 'INBOX', the folder being"),
        ({**BASE, "folder": "Q", "quarantine_folder": "Q"}, "quarantine_folder files messages"),
    ],
)
def test_invalid_settings(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_mailbox("m", values)


def test_unknown_key_and_bad_toml(tmp_path: Path) -> None:
    conf = write(tmp_path / "mp.toml", '[mailboxes.a]\nhots = "typo"\n')
    with pytest.raises(ConfigError, match=r"\[mailboxes.a\]: unknown setting 'hots'"):
        load_mailboxes(conf)
    conf = write(tmp_path / "bad.toml", "host = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_mailboxes(conf)


def test_password_in_readable_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI stops propagation to the root logger; caplog listens there.
    monkeypatch.setattr(logging.getLogger("mailbox_processor"), "propagate", True)
    text = '[mailboxes.a]\nhost = "h"\nuser = "u"\npassword = "hunter2"\n'
    conf = write(tmp_path / "mp.toml", text, mode=0o644)
    with caplog.at_level(logging.WARNING, logger="mailbox_processor"):
        (cfg,) = load_mailboxes(conf)
    assert "holds a password and is readable by others: run chmod 600" in caplog.text
    assert "hunter2" not in caplog.text and "hunter2" not in repr(cfg)
    assert resolve_password(cfg) == "hunter2"
    caplog.clear()
    conf.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="mailbox_processor"):
        load_mailboxes(conf)
    assert caplog.text == ""


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_PW", "from-env")
    assert resolve_password(build_mailbox("m", BASE)) == "from-env"
    pw = write(tmp_path / "pw", "from-file\n")
    cfg = build_mailbox("m", {**BASE, "password_env": None, "password_file": str(pw)})
    assert resolve_password(cfg) == "from-file"
    cfg = build_mailbox("m", {**BASE, "password_env": None,
                              "password_command": "printf 'from-cmd\\n'"})
    assert resolve_password(cfg) == "from-cmd"
    cfg = build_mailbox("m", {**BASE, "auth": "xoauth2", "oauth2_token_command": "echo tok"})
    assert resolve_password(cfg) == "tok"


def test_password_source_errors_never_show_the_secret(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MP_PW", raising=False)
    with pytest.raises(ConfigError, match="environment variable MP_PW is not set"):
        resolve_password(build_mailbox("m", BASE))
    cfg = build_mailbox("m", {**BASE, "password_env": None,
                              "password_file": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="cannot read password file"):
        resolve_password(cfg)
    cfg = build_mailbox("m", {**BASE, "password_env": None,
                              "password_command": "echo s3cret; echo oops >&2; exit 3"})
    with pytest.raises(ConfigError) as info:
        resolve_password(cfg)
    assert "exited with status 3: oops" in str(info.value)
    assert "s3cret" not in str(info.value)
    cfg = build_mailbox("m", {**BASE, "password_env": None, "password_command": "true"})
    with pytest.raises(ConfigError, match="printed nothing"):
        resolve_password(cfg)


def test_post_action_parse() -> None:
    assert PostAction.parse("move:Done/Bounces") == PostAction("move", "Done/Bounces")
    assert str(PostAction.parse(" delete ")) == "delete"
    cfg = build_mailbox("m", {**BASE, "not_bounce_folder": "Auto"})
    assert cfg.not_bounce_action == PostAction("move", "Auto")
    assert build_mailbox("m", BASE).not_bounce_action == PostAction("move", "Processed")


# -- the CLI side: exit statuses for configuration errors ------------------------------


def test_cli_config_error_exit_status() -> None:
    res = CliRunner().invoke(cli.cli, ["poll", "--user", "u", "--password-env", "X"])
    assert res.exit_code == poller.EXIT_CONFIG
    assert res.stderr == "Error: mailbox 'default': no IMAP host: use --host or host = " \
        "\"...\" in the configuration\n"


def test_cli_flag_not_given_keeps_file_value(tmp_path: Path) -> None:
    conf = write(tmp_path / "mailbox-processor.toml",
                 '[mailboxes.a]\nhost="h"\nuser="u"\npassword_env="X"\ninsecure=true\n')
    seen: dict[str, object] = {}
    ctx_overrides = cli._imap_overrides  # noqa: SLF001 - checking what the flags pass on

    def spy(ctx: object) -> dict[str, object]:
        out = ctx_overrides(ctx)  # type: ignore[arg-type]
        seen.update(out)
        return out

    cli._imap_overrides = spy  # type: ignore[assignment]
    try:
        res = CliRunner().invoke(cli.cli, ["watch", "--config", str(conf), "--mailbox", "b"])
    finally:
        cli._imap_overrides = ctx_overrides  # type: ignore[assignment]
    assert res.exit_code == poller.EXIT_CONFIG
    assert "no mailbox named 'b'" in res.stderr
    assert "insecure" not in seen and "idle" not in seen
    (cfg,) = load_mailboxes(conf)
    assert cfg.insecure is True


def test_cli_watch_needs_one_mailbox(tmp_path: Path) -> None:
    conf = write(tmp_path / "mp.toml", 'user="u"\npassword_env="X"\n'
                 '[mailboxes.a]\nhost="a"\n[mailboxes.b]\nhost="b"\n')
    res = CliRunner().invoke(cli.cli, ["watch", "--config", str(conf)])
    assert res.exit_code == 2
    assert "watch follows one mailbox, the config has 2: pick one with --mailbox" in res.stderr
