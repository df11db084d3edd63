"""Config files: reading one (unknown sections and keys refused) and writing one."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ghostroll.config.keys import KEYS_BY_NAME
from ghostroll.config.sections import SECTIONS
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


def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """Settings as a config file (sections of strings, numbers and booleans)."""
    out = []
    for section, table in sections.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"unexpected top-level key {section!r}: settings go in sections")
        out.append(f"[{section}]")
        for key, value in table.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = str(value)
            else:
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            out.append(f"{key} = {text}")
        out.append("")
    return "\n".join(out)
