"""Config files: reading one (unknown sections and keys refused) and writing one."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ghostroll.config.keys import KEYS, KEYS_BY_NAME
from ghostroll.config.sections import SECTIONS, Config
from ghostroll.errors import ConfigError


def read_toml(path: Path) -> dict[str, dict[str, Any]]:
    """Read a config file; unknown sections or keys are refused with the file name."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    for section, table in data.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise ConfigError(
                f"{path}: unknown section [{section}]; known: " + ", ".join(SECTIONS))
        for name in table:
            key = KEYS_BY_NAME.get(name)
            if key is None or key.section != section:
                raise ConfigError(f"{path}: unknown key {name!r} in [{section}]")
    return data


def toml_value(value: Any) -> str:
    """One value as TOML: booleans and numbers bare, everything else a quoted string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def effective_toml(config: Config) -> str:
    """The effective configuration as a config file, each value's source in a comment;
    secrets and unset paths are comments, never values."""
    out = [f"# config file: {config.config_file or '(none)'}"]
    section = ""
    for key in KEYS:
        if key.section != section:
            section = key.section
            out += ["", f"[{section}]"]
        value = getattr(getattr(config, key.section), key.name)
        source = config.sources.get(key.name, "default")
        if key.secret:
            out.append(f"# {key.name}: {'set' if value else 'not set'} (never shown)  "
                       f"# {source}")
        elif value is None:
            out.append(f"# {key.name}: not set  # {source}")
        else:
            out.append(f"{key.name} = {toml_value(value)}  # {source}")
    return "\n".join(out) + "\n"


def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """Settings as a config file (sections of strings, numbers and booleans)."""
    out = []
    for section, table in sections.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"unexpected top-level key {section!r}: settings go in sections")
        out.append(f"[{section}]")
        for key, value in table.items():
            out.append(f"{key} = {toml_value(value)}")
        out.append("")
    return "\n".join(out)
