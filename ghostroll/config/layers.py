"""Layered sources, lowest to highest: defaults < TOML file < GHOSTROLL_* environment
< CLI flags; cross-key checks; where each value came from."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from ghostroll.config.files import read_toml
from ghostroll.config.keys import KEYS
from ghostroll.config.s3names import (
    bucket_name_problem,
    endpoint_problem,
    prefix_problem,
    region_problem,
)
from ghostroll.config.sections import SECTIONS, Config
from ghostroll.config.values import _parse
from ghostroll.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/ghostroll/config.toml")
USER_CONFIG = Path("~/.config/ghostroll/config.toml")


def default_config_file(env: Mapping[str, str]) -> Path | None:
    """`GHOSTROLL_CONFIG`, else the user file, else the system file, if present."""
    if env.get("GHOSTROLL_CONFIG"):
        return Path(env["GHOSTROLL_CONFIG"]).expanduser()
    for candidate in (USER_CONFIG.expanduser(), SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    typed: Mapping[str, Any] | None = None,
) -> Config:
    """Build the Config from all sources. `flags` maps key names to CLI values, `typed`
    to answers typed into `ghostroll setup` (as strong as flags, named as typed)."""
    env = os.environ if env is None else env
    flags = flags or {}
    typed = typed or {}
    path = config_file if config_file is not None else default_config_file(env)
    file_data = read_toml(path) if path is not None else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in KEYS:
        raw, source = key.default_value(), "default"
        if key.name in file_data.get(key.section, {}):
            raw, source = file_data[key.section][key.name], f"file {path}"
        if key.env in env:
            raw, source = env[key.env], f"env {key.env}"
        if flags.get(key.name) is not None:
            raw, source = flags[key.name], f"flag {key.flag}"
        if typed.get(key.name) is not None:
            raw, source = typed[key.name], "the setup prompt"
        values[key.name] = _parse(key, raw, source)
        sources[key.name] = source

    _check_cross_keys(values, sources)
    if values["s3_bucket"]:
        _check_aws_env(values, env)
    built = {
        section: cls(**{f.name: values[f.name] for f in fields(cls)})
        for section, cls in SECTIONS.items()
    }
    return Config(**built, sources=sources, config_file=path)


def _check_cross_keys(values: dict[str, Any], sources: dict[str, str]) -> None:
    if values["battery_critical_percent"] > values["battery_min_percent"]:
        raise ConfigError(
            f"battery_critical_percent ({values['battery_critical_percent']}, from "
            f"{sources['battery_critical_percent']}) must not exceed battery_min_percent "
            f"({values['battery_min_percent']}, from {sources['battery_min_percent']})")
    prefix = values["s3_prefix_root"]
    if prefix and not prefix.endswith("/"):
        values["s3_prefix_root"] = prefix + "/"
    if bool(values["s3_access_key_id"]) != bool(values["s3_secret_access_key"]):
        raise ConfigError("s3_access_key_id and s3_secret_access_key must be set together "
                          f"(from {sources['s3_access_key_id']} / "
                          f"{sources['s3_secret_access_key']})")
    if values["short_link_bucket"] and values["short_link_bucket"] == values["s3_bucket"]:
        raise ConfigError(f"short_link_bucket (from {sources['short_link_bucket']}) must be "
                          "another bucket than s3_bucket: it is public, the photos' is not")
    for name, problem in (("s3_bucket", bucket_name_problem),
                          ("short_link_bucket", bucket_name_problem),
                          ("short_link_base_url", endpoint_problem),
                          ("s3_endpoint_url", endpoint_problem),
                          ("s3_region", region_problem),
                          ("s3_prefix_root", prefix_problem)):
        value = values[name]
        why = problem(value) if value else None
        if why:
            raise ConfigError(f"{name} = {_redact(value)!r} from {sources[name]}: {why}")


# The AWS variables boto3 reads when the matching key is empty: checked like the key.
_AWS_FALLBACKS = (("s3_endpoint_url", ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")),
                  ("s3_region", ("AWS_REGION", "AWS_DEFAULT_REGION")))


def _check_aws_env(values: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, variables in _AWS_FALLBACKS:
        if values[name]:
            continue
        problem = endpoint_problem if name == "s3_endpoint_url" else region_problem
        for variable in variables:
            value = env.get(variable, "")
            why = problem(value) if value else None
            if why:
                raise ConfigError(f"{variable} = {_redact(value)!r} from env {variable} (used "
                                  f"because {name} is empty): {why}")


def _redact(value: str) -> str:
    """A URL as shown in a message: credentials in it are never printed."""
    return re.sub(r"//[^/@]*@", "//***@", value)
