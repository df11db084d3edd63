"""`ghostroll setup`: write the config file, after checking the bucket with doctor's checks.

Interactive on a terminal (asks for bucket, region, endpoint and credentials; the secret
is read without echo), or from flags (`--s3-bucket ... --yes`). Nothing is saved while a
blocking check fails. Laptop: ~/.config/ghostroll/config.toml (0600); appliance with
`--system`: /etc/ghostroll/config.toml (0640 root:ghostroll)."""

from __future__ import annotations

import contextlib
import getpass
import grp
import os
import tomllib
from collections.abc import Callable
from pathlib import Path

from ghostroll import config
from ghostroll.commands import doctor
from ghostroll.config import KEYS_BY_NAME
from ghostroll.errors import ConfigError
from ghostroll.exitcodes import ExitCode

ASKED = ("s3_bucket", "s3_region", "s3_endpoint_url", "s3_access_key_id",
         "s3_secret_access_key", "short_links")


def target_path(system: bool) -> Path:
    return config.SYSTEM_CONFIG if system else config.USER_CONFIG.expanduser()


def ask(current: config.Config, flags: dict[str, str], prompt: Callable[[str], str],
        secret: Callable[[str], str]) -> dict[str, str]:
    answers = dict(flags)
    for name in ASKED:
        if name in answers:
            continue
        now = getattr(current.s3, name)
        shown = "(set)" if KEYS_BY_NAME[name].secret and now else now
        question = f"{name} [{shown}]: " if shown else f"{name}: "
        reply = (secret if KEYS_BY_NAME[name].secret else prompt)(question).strip()
        if reply or now:
            answers[name] = reply or str(now)
    return answers


def write(path: Path, answers: dict[str, str], system: bool) -> None:
    existing: dict = {}
    if path.exists():
        existing = tomllib.loads(path.read_text(encoding="utf-8"))
    for name, value in answers.items():
        key = KEYS_BY_NAME[name]
        existing.setdefault(key.section, {})[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    mode = 0o640 if system else 0o600
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# written by `ghostroll setup`; every key: ghostroll config --markdown\n")
        fh.write(config.to_toml(existing))
    os.chmod(temp, mode)
    if system and os.geteuid() == 0:
        with contextlib.suppress(KeyError):  # no ghostroll group here: root only
            os.chown(temp, 0, grp.getgrnam("ghostroll").gr_gid)
    os.replace(temp, path)


def run_setup(flags: dict[str, str], *, system: bool, interactive: bool,
              path: Path | None = None,
              prompt: Callable[[str], str] = input,
              secret: Callable[[str], str] = getpass.getpass,
              out: Callable[[str], None] = print) -> int:
    path = path or target_path(system)
    current = config.load(config_file=path if path.exists() else None)
    answers = ask(current, flags, prompt, secret) if interactive else dict(flags)
    try:
        candidate = config.load(config_file=path if path.exists() else None, flags=answers)
    except ConfigError as exc:  # a bucket name S3 cannot take, an endpoint that is no URL
        out(f"setup: not saved: {exc} ({path} is unchanged)")
        return ExitCode.UNUSABLE
    results = [r for check in (doctor.check_config, doctor.check_s3)
               for r in check(candidate)]
    out(doctor.report_text(results))
    if doctor.failed(results):
        out(f"setup: not saved: fix the problems above, then run setup again ({path} is "
            "unchanged)")
        return ExitCode.PARTIAL
    write(path, {k: v for k, v in answers.items() if v != ""}, system)
    out(f"setup: saved {path} (mode {'0640' if system else '0600'})")
    return ExitCode.OK
