"""Config across a process boundary: a child gets the parent's config file path in its
argv and, on its stdin, only the values that differ from what that file (or the
defaults) gives, e.g. the ones set by flags or GHOSTROLL_* variables. Nothing of the
config goes into the child's environment, so a secret never shows in
/proc/<pid>/environ or in argv; the parent's GHOSTROLL_* settings are removed from
the environment the child inherits (the overrides say everything they said)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, TextIO

from ghostroll.config.files import read_toml
from ghostroll.config.keys import KEYS
from ghostroll.config.sections import Config
from ghostroll.config.values import _parse
from ghostroll.errors import ConfigError

OVERRIDES_FLAG = "--overrides-stdin"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def overrides(cfg: Config) -> dict[str, str]:
    """Key name -> value text, for every value the config file and defaults alone would
    not give (pure apart from reading that file)."""
    file_data = read_toml(cfg.config_file) if cfg.config_file is not None else {}
    out = {}
    for key in KEYS:
        value = getattr(getattr(cfg, key.section), key.name)
        raw = file_data.get(key.section, {}).get(key.name, key.default_value())
        try:
            base = _parse(key, raw, "base")
        except ConfigError:
            base = None
        if key.name == "s3_prefix_root" and isinstance(base, str) and base \
                and not base.endswith("/"):
            base += "/"  # as load() normalises it
        if value != base:
            out[key.name] = _text(value)
    return out


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for a child: the parent's, without our settings."""
    ours = {key.env for key in KEYS} | {"GHOSTROLL_CONFIG"}
    return {k: v for k, v in environ.items() if k not in ours}


def child_args(cfg: Config) -> list[str]:
    """Append to a `ghostroll` command line: the config file and the overrides flag."""
    path = ["--config", str(cfg.config_file)] if cfg.config_file is not None else []
    return [*path, OVERRIDES_FLAG]


def spawn(cfg: Config, argv: Sequence[str], environ: Mapping[str, str],
          keep_stdin: bool = False, **popen: Any) -> subprocess.Popen[str]:
    """Start `argv` (a `ghostroll` command) with this config handed over. The overrides
    are the first line of the child's stdin; with `keep_stdin` the pipe stays open for
    what follows (`ghostroll work --stream` reads recorded originals from it)."""
    proc = subprocess.Popen([*argv, *child_args(cfg)], stdin=subprocess.PIPE, text=True,
                            env=child_env(environ), **popen)
    send_overrides(cfg, proc, close=not keep_stdin)
    return proc


def send_overrides(cfg: Config, proc: subprocess.Popen[str], close: bool = True) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(overrides(cfg)) + "\n")  # JSON escapes newlines: one line
        proc.stdin.flush()
        if close:
            proc.stdin.close()
    except BrokenPipeError:  # the child is already gone; its exit code says why
        pass


def read_overrides(stdin: BinaryIO | TextIO) -> dict[str, str]:
    """The child's side: the overrides its parent sent, one line, so whatever follows on
    stdin is left unread (pass `sys.stdin.buffer`: a text wrapper reads ahead)."""
    line = stdin.readline()
    text = line.decode() if isinstance(line, bytes) else line
    try:
        data = json.loads(text.strip() or "{}")
    except ValueError as exc:
        raise ConfigError(f"overrides from the parent process are not JSON: {exc}") from None
    names = {key.name for key in KEYS}
    if not isinstance(data, dict) or not all(
            k in names and isinstance(v, str) for k, v in data.items()):
        raise ConfigError("overrides from the parent process are not key = text pairs")
    return data

