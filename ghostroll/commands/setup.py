"""`ghostroll setup`: write the config file, after checking the bucket with doctor's checks.

Interactive on a terminal (asks for bucket, region, endpoint and credentials; the secret
is read without echo), or from flags (`--s3-bucket ... --yes`). Nothing is saved while a
blocking check fails; interactively, what was typed is kept and only the settings of
the failed check are asked again. Once saved, setup offers the short-link bucket policy
and lifecycle rule (bucket_rules.py): it shows the exact JSON and applies it only when
told to. Laptop: ~/.config/ghostroll/config.toml (0600); appliance with `--system`:
/etc/ghostroll/config.toml (0640 root:ghostroll)."""

from __future__ import annotations

import contextlib
import getpass
import grp
import json
import os
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ghostroll import config
from ghostroll.commands import doctor
from ghostroll.config import KEYS_BY_NAME
from ghostroll.errors import ConfigError, PublishError
from ghostroll.exitcodes import ExitCode

ASKED = ("s3_bucket", "s3_region", "s3_endpoint_url", "s3_access_key_id",
         "s3_secret_access_key", "short_links")
ROUNDS = 5  # interactive attempts before giving up


def target_path(system: bool) -> Path:
    return config.SYSTEM_CONFIG if system else config.USER_CONFIG.expanduser()


def ask(current: config.Config, names: list[str], typed: dict[str, str],
        prompt: Callable[[str], str], secret: Callable[[str], str]) -> dict[str, str]:
    """Ask for `names`, offering what was typed before (else the current value)."""
    answers = dict(typed)
    for name in names:
        now = typed.get(name) or getattr(current.s3, name)
        shown = "(set)" if KEYS_BY_NAME[name].secret and now else now
        question = f"{name} [{shown}]: " if shown else f"{name}: "
        reply = (secret if KEYS_BY_NAME[name].secret else prompt)(question).strip()
        if reply or now:
            answers[name] = reply or str(now)
    return answers


def failed_keys(results: list[doctor.Check]) -> list[str]:
    """The asked settings behind the blocking failures (pure), in asking order."""
    named = {k for r in results if r.status == doctor.FAIL and r.blocking for k in r.keys}
    return [n for n in ASKED if n in named]


def config_error_keys(exc: ConfigError) -> list[str]:
    """The asked settings a ConfigError names (its message starts with the key)."""
    text = str(exc)
    return [n for n in ASKED if text.startswith(n + " ") or f" {n} " in text]


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
              out: Callable[[str], None] = print,
              apply_rules: bool = False) -> int:
    path = path or target_path(system)
    existing = path if path.exists() else None
    current = config.load(config_file=existing)
    typed: dict[str, str] = {}
    names = [n for n in ASKED if n not in flags]
    for _ in range(ROUNDS if interactive else 1):
        if interactive:
            typed = ask(current, names, typed, prompt, secret)
        try:
            candidate = config.load(config_file=existing, flags=flags, typed=typed)
        except ConfigError as exc:  # a bucket name S3 cannot take, an endpoint that is no URL
            out(f"setup: not saved: {exc} ({path} is unchanged)")
            names = [n for n in config_error_keys(exc) if n not in flags]
            if not interactive or not names:
                return ExitCode.UNUSABLE
            continue
        results = [r for check in (doctor.check_config, doctor.check_s3)
                   for r in check(candidate)]
        out(doctor.report_text(results))
        if not doctor.failed(results):
            break
        names = [n for n in failed_keys(results) if n not in flags]
        if not interactive or not names:
            out(f"setup: not saved: fix the problems above, then run setup again ({path} "
                "is unchanged)")
            return ExitCode.PARTIAL
        out("setup: asking again what failed (Enter keeps what you typed)")
    else:
        out(f"setup: not saved after {ROUNDS} attempts ({path} is unchanged)")
        return ExitCode.PARTIAL
    write(path, {k: v for k, v in {**flags, **typed}.items() if v != ""}, system)
    out(f"setup: saved {path} (mode {'0640' if system else '0600'})")
    if interactive or apply_rules:
        offer_bucket_rules(candidate, ask_yes=None if apply_rules else prompt, out=out)
    return ExitCode.OK


def _yes(ask_yes: Callable[[str], str] | None, question: str) -> bool:
    return ask_yes is None or ask_yes(question).strip().lower() in ("y", "yes")


def offer_bucket_rules(cfg: config.Config, ask_yes: Callable[[str], str] | None,
                       out: Callable[[str], None]) -> None:
    """Show the short-link policy and the lifecycle rule the bucket lacks and apply each
    when the answer is yes (`ask_yes` None: apply without asking, `--apply-bucket-rules`)."""
    from ghostroll.publish import bucket_rules, links, short_memo
    from ghostroll.publish.s3client import make_client

    if cfg.s3.short_links == "off":
        return
    client, bucket = make_client(cfg.s3), cfg.s3.s3_bucket
    try:
        policy = None if cfg.s3.short_link_bucket else links.read_bucket_policy(client, bucket)
        if not cfg.s3.short_link_bucket and (
                policy is None or not links.grants_short_links(policy, bucket)):
            wanted = bucket_rules.policy_with_short_links(policy, bucket)
            out(f"Short links (a QR that scans on the 2.13\" panel) need this policy on "
                f"bucket {bucket}: it makes L/* public and nothing else "
                f"(statements already there are kept):\n{json.dumps(wanted, indent=2)}")
            if _yes(ask_yes, "Apply this bucket policy now? [y/N] "):
                bucket_rules.apply_policy(client, bucket, wanted)
                applied = links.has_short_link_policy(client, bucket)
                short_memo.remember(cfg.storage.db_path, cfg.s3, applied, datetime.now(UTC))
                out("setup: policy applied: short links from the next run" if applied else
                    "setup: the bucket took the policy but does not report it back")
        rules = bucket_rules.read_lifecycle(client, bucket)
        if not bucket_rules.has_our_rules(rules):
            wanted_rules = bucket_rules.lifecycle_with_our_rules(rules)
            out("This lifecycle rule deletes short-link pages not rewritten for "
                f"{bucket_rules.PAGE_DAYS} days and uploads a crash left unfinished "
                f"(rules already there are kept):\n{json.dumps(wanted_rules, indent=2)}")
            if _yes(ask_yes, "Apply these lifecycle rules now? [y/N] "):
                bucket_rules.apply_lifecycle(client, bucket, wanted_rules)
                out("setup: lifecycle rules applied")
    except PublishError as exc:
        out(f"setup: {exc}. Some providers have no bucket policies (R2, B2): there, set "
            "short_link_bucket to a second, public-read bucket for the short-link pages, "
            "or links stay full presigned URLs (docs/publishing.md). The config is saved.")
