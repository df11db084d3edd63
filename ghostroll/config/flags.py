"""One `--flag` per key on a parser, and the Config built from parsed arguments (plus,
in a child process, the overrides its parent sent on stdin; see `handoff.py`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ghostroll.config.handoff import OVERRIDES_FLAG, read_overrides
from ghostroll.config.keys import KEYS
from ghostroll.config.layers import SYSTEM_CONFIG, USER_CONFIG, load
from ghostroll.config.sections import Config

log = logging.getLogger("ghostroll.config")


def short_meaning(meaning: str) -> str:
    """The first clause of a key's meaning, for `--help` (the whole row is in
    docs/configuration.md and `ghostroll config --markdown`)."""
    cut = min((i for i in (meaning.find(" ("), meaning.find("; ")) if i > 0),
              default=len(meaning))
    return meaning[:cut].rstrip(".")


SECTION_TITLES = {
    "card": "card settings", "storage": "storage settings", "images": "image settings",
    "s3": "bucket and link settings", "appliance": "appliance settings (the service on "
    "the Pi: panel, button, battery)", "archive": "archive settings (a second copy, "
    "pruning)", "logging": "logging settings"}


def add_flags(parser: argparse.ArgumentParser, sections: Sequence[str] | None = None,
              hidden: Sequence[str] = ()) -> None:
    """Add one `--flag` per key (all sections, or the ones named) to a parser, one
    argument group per section. Sections in `hidden` are accepted but left out of
    `--help` (a command that does not use them), named in a last line instead.

    Defaults are None so an unset flag never hides the environment or the file."""
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: $GHOSTROLL_CONFIG, "
                             f"{USER_CONFIG}, {SYSTEM_CONFIG})")
    parser.add_argument(OVERRIDES_FLAG, dest="overrides_stdin", action="store_true",
                        help=argparse.SUPPRESS)  # set by a parent process (handoff.py)
    groups: dict[str, Any] = {}
    for key in KEYS:
        if sections is not None and key.section not in sections:
            continue
        if key.section not in groups:
            note = None if groups else ("each setting is also GHOSTROLL_<NAME> in the "
                                        "environment, or <name> under its [section] in "
                                        "the config file (docs/configuration.md)")
            groups[key.section] = None if key.section in hidden else parser.add_argument_group(
                SECTION_TITLES[key.section], note)
        group = groups[key.section]
        (group or parser).add_argument(
            key.flag, dest=f"cfg_{key.name}", default=None,
            metavar="|".join(key.choices) if key.choices else "VALUE",
            help=argparse.SUPPRESS if group is None else short_meaning(key.meaning))
    if any(g is None for g in groups.values()):
        names = ", ".join(SECTION_TITLES[s].split(" (")[0] for s, g in groups.items()
                          if g is None)
        parser.epilog = ((parser.epilog + "\n") if parser.epilog else "") + (
            f"{names}: accepted too, not shown (`ghostroll config --markdown` lists every "
            "setting)")


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    flags: dict[str, str | None] = {k.name: getattr(args, f"cfg_{k.name}", None) for k in KEYS}
    child = getattr(args, "overrides_stdin", False)
    if child:
        flags.update(read_overrides(sys.stdin.buffer))
    cfg = load(config_file=getattr(args, "config", None), env=env, flags=flags)
    if not child:  # the parent warned already
        for warning in ignored_settings(cfg):
            log.warning("%s", warning)
    return cfg


def ignored_settings(cfg: Config) -> list[str]:
    """Settings accepted for compatibility but without effect, when someone set them."""
    source = cfg.sources.get("presign_workers", "default")
    if source == "default":
        return []
    return [f"presign_workers (from {source}) is ignored: links are signed locally, one "
            "at a time, which takes milliseconds; remove it to silence this warning"]
