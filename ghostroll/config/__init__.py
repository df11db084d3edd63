"""Configuration: one declarative key table, parsed once at the edge.

Every setting is a `Key` in `KEYS`. Its TOML place (`[section] name`), its
environment variable (`GHOSTROLL_*`) and its CLI flag (`--name-with-dashes`) are all
derived from that one row, and `docs/configuration.md` is generated from it (a test
checks the file is current). Sources, lowest to highest:

    defaults < TOML file < GHOSTROLL_* environment < CLI flags

`load()` returns a frozen `Config` (one frozen dataclass per section) plus where each
value came from, for `ghostroll doctor`. Invalid values raise `ConfigError` naming the
key, the source and what is allowed.

The package: `keys` (the table), `sections` (the frozen Config), `values` (one value
parsed), `files` (reading/writing a config file), `layers` (sources and cross-key
checks), `s3names` (S3 name rules), `flags` (CLI), `docs` (text for people). The names
below are re-exported because most callers only need `config.load` and friends.
"""

from ghostroll.config.docs import describe, markdown_table
from ghostroll.config.files import effective_toml, read_toml, to_toml, toml_value
from ghostroll.config.flags import SECTION_TITLES, add_flags, from_args, short_meaning
from ghostroll.config.keys import KEYS, KEYS_BY_NAME, Key, default_process_workers
from ghostroll.config.layers import SYSTEM_CONFIG, USER_CONFIG, default_config_file, load
from ghostroll.config.s3names import (
    bucket_name_problem,
    endpoint_problem,
    is_loopback_host,
    prefix_problem,
    region_problem,
)
from ghostroll.config.sections import (
    SECTIONS,
    ApplianceConfig,
    ArchiveConfig,
    CardConfig,
    Config,
    ImagesConfig,
    LoggingConfig,
    S3Config,
    StorageConfig,
)

__all__ = [
    "KEYS",
    "KEYS_BY_NAME",
    "SECTIONS",
    "SECTION_TITLES",
    "SYSTEM_CONFIG",
    "USER_CONFIG",
    "ApplianceConfig", "ArchiveConfig",
    "CardConfig",
    "Config",
    "ImagesConfig",
    "Key",
    "LoggingConfig",
    "S3Config",
    "StorageConfig",
    "add_flags",
    "bucket_name_problem",
    "default_config_file",
    "default_process_workers",
    "describe",
    "effective_toml",
    "endpoint_problem",
    "from_args",
    "is_loopback_host",
    "load",
    "markdown_table",
    "prefix_problem",
    "read_toml",
    "region_problem",
    "short_meaning",
    "to_toml",
    "toml_value",
]
