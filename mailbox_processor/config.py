"""Settings for IMAP mailboxes: a TOML file, environment variables and flags.

Precedence, lowest first: built-in defaults, the config file's top-level keys, the
file's ``[mailboxes.NAME]`` table, ``MAILBOX_PROCESSOR_*`` environment variables,
command-line flags. A config file looks like this::

    # ./mailbox-processor.toml (or ~/.config/mailbox-processor/config.toml)
    batch_size = 500                      # top-level keys apply to every mailbox

    [mailboxes.bounces]
    host = "imap.example.org"
    user = "bounces@example.org"
    password_file = "~/.config/mailbox-processor/bounces.pw"
    folder = "INBOX"
    after = "move:Processed"              # keep | seen | move:FOLDER | delete

Secrets are never read from argv: a password comes from an environment variable
(``password_env``), a file (``password_file``) or a command's output
(``password_command``); an OAuth2 access token (``auth = "xoauth2"``) from
``oauth2_token_command``. A ``password`` key in the file itself is accepted, with a
warning when others can read the file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbox_processor.errors import ConfigError
from mailbox_processor.sources import DEFAULT_BATCH_SIZE

log = logging.getLogger(__name__)

ENV_PREFIX = "MAILBOX_PROCESSOR_"
CONFIG_FILE_NAME = "mailbox-processor.toml"
TLS_MODES = ("implicit", "starttls", "plain")
AUTH_METHODS = ("password", "xoauth2")
#: Seconds a secret command may run before we give up on it.
SECRET_COMMAND_TIMEOUT = 30.0


@dataclass(frozen=True)
class PostAction:
    """What happens to a message in the mailbox once its results are committed.

    ``kind`` is ``keep``, ``seen``, ``move`` (to ``folder``) or ``delete``.
    """

    kind: str
    folder: str | None = None

    @classmethod
    def parse(cls, text: str, *, setting: str = "after") -> PostAction:
        """Parse ``keep``, ``seen``, ``delete`` or ``move:FOLDER``."""
        value = text.strip()
        if value in ("keep", "seen", "delete"):
            return cls(value)
        if value.startswith("move:") and value[5:].strip():
            return cls("move", value[5:].strip())
        raise ConfigError(
            f"invalid {setting} value {text!r}: use keep, seen, delete or move:FOLDER"
        )

    def __str__(self) -> str:
        return f"move:{self.folder}" if self.kind == "move" else self.kind


@dataclass(frozen=True)
class MailboxConfig:
    """Everything needed to poll one IMAP folder. Holds no secret, only where to get it."""

    name: str = "default"
    host: str | None = None
    port: int | None = None
    tls: str = "implicit"
    user: str | None = None
    auth: str = "password"
    password_env: str | None = None
    password_file: str | None = None
    password_command: str | None = None
    oauth2_token_command: str | None = None
    cafile: str | None = None
    insecure: bool = False
    folder: str = "INBOX"
    after: str = "move:Processed"
    quarantine_folder: str = "Quarantine"
    not_bounce_folder: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    interval: float = 60.0
    idle: bool = True
    timeout: float = 60.0
    # Only from a config file (warned about when others can read it); never from flags.
    password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def effective_port(self) -> int:
        """The port to connect to: the configured one, else 993 (implicit TLS) or 143."""
        if self.port is not None:
            return self.port
        return 993 if self.tls == "implicit" else 143

    @property
    def identity(self) -> str:
        """A stable key for checkpoints and locks: ``user@host:port``."""
        return f"{self.user}@{self.host}:{self.effective_port}"

    @property
    def url(self) -> str:
        """``imap://user@host:port/Folder``: for log lines and ``RawMessage.source``."""
        return f"imap://{self.identity}/{self.folder}"

    @property
    def post_action(self) -> PostAction:
        return PostAction.parse(self.after)

    @property
    def not_bounce_action(self) -> PostAction:
        """Where non-bounces go: their own folder if one is set, else like bounces."""
        if self.not_bounce_folder:
            return PostAction("move", self.not_bounce_folder)
        return self.post_action


#: Settings that may appear in the file, the environment and (most of them) as flags.
_FIELDS = {f.name: f for f in dataclasses.fields(MailboxConfig) if f.name != "name"}
_ENV_KEYS = tuple(k for k in _FIELDS if k != "password")


def default_config_paths(cwd: Path | None = None) -> list[Path]:
    """Where a config file is looked for when ``--config`` is not given, in order."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [
        (cwd or Path.cwd()) / CONFIG_FILE_NAME,
        Path(base) / "mailbox-processor" / "config.toml",
    ]


def find_config_file(path: str | os.PathLike[str] | None) -> Path | None:
    """Return the config file to read: ``path`` (which must exist) or the first default."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} not found: check --config")
        return p
    env_path = os.environ.get(ENV_PREFIX + "CONFIG")
    if env_path:
        return find_config_file(env_path)
    for p in default_config_paths():
        if p.is_file():
            return p
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML config file; warn when it holds a password others can read."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if _holds_password(data):
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning(
                "config file %s holds a password and is readable by others: "
                "run chmod 600 %s, or use password_file / password_command",
                path,
                path,
            )
    return data


def _holds_password(data: Mapping[str, Any]) -> bool:
    if "password" in data:
        return True
    boxes = data.get("mailboxes", {})
    return isinstance(boxes, dict) and any(
        isinstance(b, dict) and "password" in b for b in boxes.values()
    )


def env_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``MAILBOX_PROCESSOR_HOST=...`` and friends, as raw setting values."""
    out: dict[str, str] = {}
    for key in _ENV_KEYS:
        value = environ.get(ENV_PREFIX + key.upper())
        if value:
            out[key] = value
    return out


def load_mailboxes(
    config_path: str | os.PathLike[str] | None = None,
    *,
    names: tuple[str, ...] = (),
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[MailboxConfig]:
    """Return the mailboxes to work on, with file, environment and flags merged.

    ``names`` picks mailboxes from the file (all of them when empty); without any
    ``[mailboxes.*]`` table one mailbox named ``default`` is built from the top-level
    keys, the environment and the flags. ``overrides`` are flag values (``None``
    means "not given"). Raises :class:`ConfigError` with a fix-it message.
    """
    environ = os.environ if environ is None else environ
    path = find_config_file(config_path)
    data = read_config_file(path) if path else {}
    where = str(path) if path else "the configuration"
    boxes = data.pop("mailboxes", {})
    if not isinstance(boxes, dict):
        raise ConfigError(f"{where}: [mailboxes] must be a table of [mailboxes.NAME] tables")
    _check_keys(data, f"{where} (top level)")
    top = dict(data)
    if boxes:
        unknown = [n for n in names if n not in boxes]
        if unknown:
            raise ConfigError(
                f"no mailbox named {unknown[0]!r} in {where}: "
                f"choose one of {', '.join(sorted(boxes))}"
            )
        selected = list(names) if names else sorted(boxes)
    else:
        if names and names != ("default",):
            raise ConfigError(
                f"no mailbox named {names[0]!r}: no config file with [mailboxes.*] found "
                f"(looked in {', '.join(str(p) for p in default_config_paths())}); "
                "use --config PATH"
            )
        selected = ["default"]
    env = env_settings(environ)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    result = []
    for name in selected:
        box = boxes.get(name, {})
        if not isinstance(box, dict):
            raise ConfigError(f"{where}: mailboxes.{name} must be a table")
        _check_keys(box, f"{where} [mailboxes.{name}]")
        merged: dict[str, Any] = {**top, **box, **env, **flags}
        result.append(build_mailbox(name, merged, where=where))
    return result


def _check_keys(table: Mapping[str, Any], where: str) -> None:
    for key in table:
        if key not in _FIELDS:
            raise ConfigError(
                f"{where}: unknown setting {key!r}; known settings: {', '.join(sorted(_FIELDS))}"
            )


def build_mailbox(name: str, values: Mapping[str, Any], *, where: str = "flags") -> MailboxConfig:
    """Validate and convert raw setting values into a :class:`MailboxConfig`."""
    kwargs: dict[str, Any] = {"name": name}
    for key, value in values.items():
        if value is None:
            continue
        if key not in _FIELDS:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        kwargs[key] = _convert(key, value, where)
    cfg = MailboxConfig(**kwargs)
    _validate(cfg, where)
    return cfg


def _convert(key: str, value: Any, where: str) -> Any:
    default = _FIELDS[key].default
    try:
        if key == "port":
            return int(value)
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ConfigError(f"{where}: {key} must be true or false, not {value!r}")
                return low in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a number, not {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not {value!r}")
    return value


def _validate(cfg: MailboxConfig, where: str) -> None:
    label = f"mailbox {cfg.name!r}"
    if not cfg.host:
        raise ConfigError(f"{label}: no IMAP host: use --host or host = \"...\" in {where}")
    if not cfg.user:
        raise ConfigError(f"{label}: no IMAP user: use --user or user = \"...\" in {where}")
    if cfg.tls not in TLS_MODES:
        raise ConfigError(f"{label}: tls must be one of {', '.join(TLS_MODES)}, not {cfg.tls!r}")
    if cfg.auth not in AUTH_METHODS:
        raise ConfigError(
            f"{label}: auth must be one of {', '.join(AUTH_METHODS)}, not {cfg.auth!r}"
        )
    if cfg.port is not None and not 0 < cfg.port < 65536:
        raise ConfigError(f"{label}: port {cfg.port} is out of range")
    if cfg.batch_size < 1:
        raise ConfigError(f"{label}: batch_size must be at least 1")
    if cfg.interval <= 0:
        raise ConfigError(f"{label}: interval must be positive")
    action = PostAction.parse(cfg.after)
    for setting, target in (("after", action.folder), ("quarantine_folder", cfg.quarantine_folder),
                            ("not_bounce_folder", cfg.not_bounce_folder)):
        if target and target == cfg.folder:
            raise ConfigError(
                f"{label}: {setting} files messages into {target!r}, the folder being read: "
                "choose another folder"
            )
    if cfg.auth == "xoauth2":
        if not cfg.oauth2_token_command:
            raise ConfigError(
                f"{label}: auth = xoauth2 needs oauth2_token_command "
                "(--oauth2-token-command CMD printing an access token)"
            )
    else:
        sources = [
            s
            for s in ("password_env", "password_file", "password_command", "password")
            if getattr(cfg, s)
        ]
        if not sources:
            raise ConfigError(
                f"{label}: no password source: use --password-env VAR, --password-file F "
                "or --password-command CMD"
            )
        if len(sources) > 1:
            raise ConfigError(
                f"{label}: more than one password source ({', '.join(sources)}): keep one"
            )
    if cfg.cafile and not Path(cfg.cafile).expanduser().is_file():
        raise ConfigError(f"{label}: CA file {cfg.cafile} not found: check --cafile")


def resolve_password(cfg: MailboxConfig) -> str:
    """Return the password (or, with ``auth = xoauth2``, the access token) for ``cfg``.

    The secret is read now, at connect time, so that a rotated token or password is
    picked up on every reconnect. Error messages name the source, never the secret.
    """
    label = f"mailbox {cfg.name!r}"
    if cfg.auth == "xoauth2":
        assert cfg.oauth2_token_command is not None
        return _run_secret_command(cfg.oauth2_token_command, f"{label}: oauth2_token_command")
    if cfg.password is not None:
        return cfg.password
    if cfg.password_env:
        value = os.environ.get(cfg.password_env)
        if not value:
            raise ConfigError(
                f"{label}: environment variable {cfg.password_env} is not set or empty: "
                "export it or use --password-file"
            )
        return value
    if cfg.password_file:
        p = Path(cfg.password_file).expanduser()
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{label}: cannot read password file {p} ({exc.strerror or exc}): "
                "check --password-file"
            ) from None
        value = text.rstrip("\r\n")
        if not value:
            raise ConfigError(f"{label}: password file {p} is empty")
        return value
    if cfg.password_command:
        return _run_secret_command(cfg.password_command, f"{label}: password_command")
    raise ConfigError(f"{label}: no password source configured")


def _run_secret_command(command: str, what: str) -> str:
    try:
        proc = subprocess.run(
            command,
            shell=True,
            capture_output=True,
            text=True,
            timeout=SECRET_COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{what} took more than {SECRET_COMMAND_TIMEOUT:.0f}s") from None
    if proc.returncode != 0:
        # stderr may be helpful ("no such entry") but never echo stdout: it is the secret.
        hint = proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else ""
        raise ConfigError(
            f"{what} exited with status {proc.returncode}" + (f": {hint}" if hint else "")
        )
    value = proc.stdout.strip()
    if not value:
        raise ConfigError(f"{what} printed nothing")
    return value
