"""Settings as text for people: `doctor`'s value/source rows and the generated body of
docs/configuration.md."""

from __future__ import annotations

from ghostroll.config.keys import KEYS
from ghostroll.config.sections import Config
from ghostroll.config.values import _num


def describe(config: Config) -> list[tuple[str, str, str]]:
    """(key, shown value, source) for every key; secrets are never shown."""
    rows = []
    for key in KEYS:
        value = getattr(getattr(config, key.section), key.name)
        shown = ("(set)" if value else "(not set)") if key.secret else str(value)
        rows.append((key.name, shown, config.sources.get(key.name, "default")))
    return rows


def markdown_table() -> str:
    """The body of docs/configuration.md, generated from KEYS."""
    lines = [
        "| TOML `[section] key` | environment | CLI flag | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for key in KEYS:
        allowed = ""
        if key.choices:
            allowed = " One of: " + ", ".join(f"`{c}`" for c in key.choices) + "."
        elif key.minimum is not None:
            allowed = f" Range {_num(key.minimum)}..{_num(key.maximum)}."
        lines.append(
            f"| `[{key.section}] {key.name}` | `{key.env}` | `{key.flag}` | "
            f"`{key.default_text()}` | {key.meaning}{allowed} |")
    return "\n".join(lines) + "\n"
