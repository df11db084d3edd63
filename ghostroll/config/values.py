"""Turning one raw value (TOML-typed or a string) into a key's type, or refusing it."""

from __future__ import annotations

import math
import os
from datetime import date, time
from pathlib import Path
from typing import Any

from ghostroll.config.keys import Key
from ghostroll.errors import ConfigError


def _parse(key: Key, raw: Any, source: str) -> Any:
    """Turn a raw value (TOML-typed or a string) into the key's type, or raise."""

    def refuse(allowed: str) -> ConfigError:
        shown = "(secret, not shown)" if key.secret else repr(raw)
        return ConfigError(f"{key.name} = {shown} from {source}: {allowed}")

    if isinstance(raw, list | dict | date | time):
        # a TOML array, table or date where one plain value belongs
        raise refuse(f"expected {_kind(key)}, not a TOML {_toml_kind(raw)}")
    if key.type is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise refuse("expected true or false")
    if key.type in (int, float):
        if isinstance(raw, bool):
            raise refuse(f"expected a number, not {raw}")
        try:
            value = key.type(raw) if key.type is float else int(str(raw).strip())
        except ValueError:
            raise refuse(f"expected {_kind(key)}") from None
        if not math.isfinite(value):
            raise refuse(f"expected a finite number in {_num(key.minimum)}..{_num(key.maximum)}")
        lo, hi = key.minimum, key.maximum
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise refuse(f"allowed range is {_num(lo)}..{_num(hi)}")
        return value
    if key.type is Path:
        text = str(raw).strip()
        if not text:
            if key.default_value():
                raise refuse(f"must not be empty; leave it unset for the default "
                             f"{key.default_text()}")
            return None
        # Absolute now: the working directory is not part of a stored fact (lgpio
        # changes it on the appliance; a later run may start elsewhere).
        return Path(os.path.expandvars(text)).expanduser().absolute()
    text = str(raw).strip() if not key.secret else str(raw)
    if key.choices:
        wanted = text.upper() if key.name == "log_level" else text.lower()
        if wanted not in key.choices:
            raise refuse("allowed: " + ", ".join(key.choices))
        return wanted
    return text


def _kind(key: Key) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number",
            Path: "a path (a string)"}.get(key.type, "a string")


def _toml_kind(raw: Any) -> str:
    if isinstance(raw, list):
        return "array"
    return "table" if isinstance(raw, dict) else "date/time"


def _num(v: float | None) -> str:
    if v is None:
        return "any"
    return str(int(v)) if float(v).is_integer() else str(v)
