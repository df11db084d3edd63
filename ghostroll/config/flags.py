"""One `--flag` per key on a parser, and the Config built from parsed arguments."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from ghostroll.config.keys import KEYS
from ghostroll.config.layers import SYSTEM_CONFIG, USER_CONFIG, load
from ghostroll.config.sections import Config


def add_flags(parser: argparse.ArgumentParser, sections: Sequence[str] | None = None) -> None:
    """Add one `--flag` per key (all sections, or the ones named) to a parser.

    Defaults are None so an unset flag never hides the environment or the file."""
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: $GHOSTROLL_CONFIG, "
                             f"{USER_CONFIG}, {SYSTEM_CONFIG})")
    group = parser.add_argument_group("settings (see docs/configuration.md)")
    for key in KEYS:
        if sections is not None and key.section not in sections:
            continue
        group.add_argument(key.flag, dest=f"cfg_{key.name}", default=None, metavar="VALUE",
                           help=f"{key.meaning} [{key.env}]")


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    flags = {k.name: getattr(args, f"cfg_{k.name}", None) for k in KEYS}
    return load(config_file=getattr(args, "config", None), env=env, flags=flags)
