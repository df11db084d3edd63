"""One `--flag` per key on a parser, and the Config built from parsed arguments (plus,
in a child process, the overrides its parent sent on stdin; see `handoff.py`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ghostroll.config.handoff import OVERRIDES_FLAG, read_overrides
from ghostroll.config.keys import KEYS
from ghostroll.config.layers import SYSTEM_CONFIG, USER_CONFIG, load
from ghostroll.config.sections import Config

log = logging.getLogger("ghostroll.config")


def add_flags(parser: argparse.ArgumentParser, sections: Sequence[str] | None = None) -> None:
    """Add one `--flag` per key (all sections, or the ones named) to a parser.

    Defaults are None so an unset flag never hides the environment or the file."""
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: $GHOSTROLL_CONFIG, "
                             f"{USER_CONFIG}, {SYSTEM_CONFIG})")
    parser.add_argument(OVERRIDES_FLAG, dest="overrides_stdin", action="store_true",
                        help=argparse.SUPPRESS)  # set by a parent process (handoff.py)
    group = parser.add_argument_group("settings (see docs/configuration.md)")
    for key in KEYS:
        if sections is not None and key.section not in sections:
            continue
        group.add_argument(key.flag, dest=f"cfg_{key.name}", default=None, metavar="VALUE",
                           help=f"{key.meaning} [{key.env}]")


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    flags: dict[str, str | None] = {k.name: getattr(args, f"cfg_{k.name}", None) for k in KEYS}
    child = getattr(args, "overrides_stdin", False)
    if child:
        flags.update(read_overrides(sys.stdin))
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
