"""`ghostroll firstboot`: apply /boot/firmware/ghostroll.toml, on the first boot and on
any later boot that finds one there (new Wi-Fi, new bucket).

The boot partition is FAT and world-readable, so the file is validated completely
before anything is applied. Its settings are merged over /etc/ghostroll/config.toml (the
image's defaults, e.g. `[storage]`, stay unless the file sets them), the admin's SSH
keys and the Wi-Fi network are installed, and the source is renamed to
`ghostroll.toml.applied` with every secret removed. A broken file applies nothing: the
error goes to a documented file the service shows on the panel, and to the journal.

Wi-Fi needs the country (the regulatory domain): Raspberry Pi OS images built without
one leave the radio soft-blocked and NetworkManager's `WirelessEnabled=false`. With
`wifi_ssid` the file must name `wifi_country`; then the domain is set (now, and on the
kernel command line for every boot), the block lifted and Wi-Fi enabled, before
NetworkManager starts (the unit is ordered before it).

The file is the service config plus one section of its own:

    [firstboot]
    ssh_authorized_keys = ["ssh-ed25519 AAAA... me@laptop"]
    wifi_ssid = "Studio"
    wifi_psk = "..."
    wifi_country = "GB"
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostroll import config
from ghostroll.errors import ConfigError
from ghostroll.exitcodes import ExitCode

SECRET_KEYS = ("s3_secret_access_key", "s3_access_key_id", "wifi_psk")
FIRSTBOOT_KEYS = {"ssh_authorized_keys", "wifi_ssid", "wifi_psk", "wifi_country"}
_COUNTRY = re.compile(r"^[A-Z]{2}$")
REGDOM_ARG = "cfg80211.ieee80211_regdom"
Runner = Callable[[list[str]], None]
_KEY_LINE = re.compile(r"^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com) "
                       r"[A-Za-z0-9+/=]{40,}( .*)?$")


@dataclass(frozen=True)
class Paths:
    source: Path = Path("/boot/firmware/ghostroll.toml")
    config: Path = Path("/etc/ghostroll/config.toml")
    error: Path = Path("/var/lib/ghostroll/firstboot-error.txt")
    network_dir: Path = Path("/etc/NetworkManager/system-connections")
    nm_state: Path = Path("/var/lib/NetworkManager/NetworkManager.state")
    rfkill_dir: Path = Path("/var/lib/systemd/rfkill")  # systemd-rfkill's saved states
    cmdline: Path = Path("/boot/firmware/cmdline.txt")
    home_root: Path = Path("/home")
    admin: str = "admin"
    owner: str = "ghostroll"  # who owns the installed config


@dataclass
class Plan:
    service_toml: str
    ssh_keys: list[str] = field(default_factory=list)
    wifi: dict[str, str] = field(default_factory=dict)


def parse(text: str, source: str, base: Mapping[str, Mapping[str, Any]] | None = None) -> Plan:
    """Validate the whole file, merged over `base` (the installed config); raise
    ConfigError naming what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    boot = data.pop("firstboot", {})
    if not isinstance(boot, dict) or set(boot) - FIRSTBOOT_KEYS:
        raise ConfigError(f"{source}: [firstboot] allows only " + ", ".join(sorted(FIRSTBOOT_KEYS)))
    keys = boot.get("ssh_authorized_keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and _KEY_LINE.match(k.strip())
                                             for k in keys):
        raise ConfigError(f"{source}: ssh_authorized_keys must be a list of public key lines "
                          "(ssh-ed25519 AAAA... comment)")
    wifi = {k.removeprefix("wifi_"): str(v) for k, v in boot.items() if k.startswith("wifi_")}
    if wifi and not wifi.get("ssid"):
        raise ConfigError(f"{source}: wifi_ssid is required when Wi-Fi settings are given")
    if wifi.get("psk") is not None and not 8 <= len(wifi["psk"]) <= 63:
        raise ConfigError(f"{source}: wifi_psk must be 8 to 63 characters")
    if wifi:
        wifi["country"] = wifi.get("country", "").strip().upper()
        if not _COUNTRY.match(wifi["country"]):
            raise ConfigError(f"{source}: wifi_country is required with wifi_ssid: the "
                              "two-letter country code (GB, US, DE...); the radio stays off "
                              "without it")
    service_toml = config.to_toml(merged(base or {}, data))
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as tmp:
        tmp.write(service_toml)
    try:
        config.read_toml(Path(tmp.name))
        config.load(config_file=Path(tmp.name), env={})
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(tmp.name, source)) from None
    finally:
        os.unlink(tmp.name)
    return Plan(service_toml, [k.strip() for k in keys], wifi)


def merged(base: Mapping[str, Mapping[str, Any]],
           update: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`update`'s settings over `base`, key by key within each section."""
    out = {section: dict(table) for section, table in base.items()}
    for section, table in update.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"unexpected top-level key {section!r}: settings go in sections")
        out.setdefault(section, {}).update(table)
    return out


def apply(plan: Plan, paths: Paths, runner: Runner | None = None) -> list[str]:
    """Install what the plan says; returns what was done, for the journal."""
    done = []
    _write(paths.config, plan.service_toml, 0o640, paths.owner)
    done.append(f"installed {paths.config}")
    if plan.ssh_keys:
        ssh = paths.home_root / paths.admin / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
        auth = ssh / "authorized_keys"
        existing = auth.read_text().splitlines() if auth.exists() else []
        lines = existing + [k for k in plan.ssh_keys if k not in existing]
        _write(auth, "\n".join(lines) + "\n", 0o600, paths.admin)
        _chown(ssh, paths.admin)
        done.append(f"{len(plan.ssh_keys)} SSH key(s) for {paths.admin}")
    if plan.wifi:
        paths.network_dir.mkdir(parents=True, exist_ok=True)
        _write(paths.network_dir / "ghostroll-wifi.nmconnection", _nm_keyfile(plan.wifi),
               0o600, "root")
        enable_wifi(plan.wifi["country"], paths, runner or run_tool)
        done.append(f"Wi-Fi network {plan.wifi['ssid']!r}, country {plan.wifi['country']}")
    return done


def enable_wifi(country: str, paths: Paths, runner: Runner) -> None:
    """Regulatory domain, rfkill and NetworkManager's switch, as raspi-config's
    do_wifi_country does (pi-gen runs it only when the image names a country)."""
    runner(["iw", "reg", "set", country])
    if paths.cmdline.exists():
        args = [a for a in paths.cmdline.read_text().split()
                if not a.startswith(REGDOM_ARG + "=")]
        _write(paths.cmdline, " ".join([*args, f"{REGDOM_ARG}={country}"]) + "\n", 0o644,
               "root")
    runner(["rfkill", "unblock", "wifi"])
    if paths.rfkill_dir.is_dir():  # restored by systemd-rfkill when the radio appears
        for saved in paths.rfkill_dir.glob("*:wlan"):
            _write(saved, "0\n", 0o644, "root")
    _write(paths.nm_state, _nm_state(paths.nm_state), 0o644, "root")


def run_tool(argv: list[str]) -> None:
    """Run a system tool; a missing tool or a failure is reported, not fatal (the saved
    state files written next to it take effect when the radio appears)."""
    if shutil.which(argv[0]) is None:
        print(f"ghostroll firstboot: {argv[0]} not installed; skipped {' '.join(argv)}",
              file=sys.stderr)
        return
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"ghostroll firstboot: {' '.join(argv)} failed: {done.stderr.strip()}",
              file=sys.stderr)


def _nm_state(path: Path) -> str:
    """NetworkManager.state with WirelessEnabled=true, other settings kept."""
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [x for x in lines if not x.strip().startswith("WirelessEnabled=")]
    if "[main]" not in (x.strip() for x in lines):
        lines = ["[main]", *lines]
    where = [x.strip() for x in lines].index("[main]")
    lines.insert(where + 1, "WirelessEnabled=true")
    return "\n".join(lines) + "\n"


def redacted(text: str) -> str:
    """The source file with every secret value replaced, for ghostroll.toml.applied."""
    pattern = re.compile(r'^(\s*(' + "|".join(SECRET_KEYS) + r')\s*=\s*).*$', re.MULTILINE)
    return pattern.sub(r'\1"<removed after first boot>"', text)


def _installed(path: Path) -> dict[str, dict[str, Any]]:
    """The installed config (the image's defaults on the first boot), or nothing."""
    if not path.exists():
        return {}
    return config.read_toml(path)


def run(paths: Paths, runner: Runner | None = None) -> int:
    try:
        text = paths.source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(paths, f"cannot read {paths.source}: {exc}")
    try:
        plan = parse(text, str(paths.source), _installed(paths.config))
    except ConfigError as exc:
        return _fail(paths, str(exc))
    try:
        done = apply(plan, paths, runner)
    except OSError as exc:
        return _fail(paths, f"applying {paths.source} failed: {exc}")
    applied = paths.source.with_name(paths.source.name + ".applied")
    applied.write_text(redacted(text), encoding="utf-8")
    paths.source.unlink()
    paths.error.unlink(missing_ok=True)
    print("ghostroll firstboot: " + "; ".join(done) + f"; source renamed to {applied.name}")
    return ExitCode.OK


def _fail(paths: Paths, message: str) -> int:
    text = f"first-boot settings not applied: {message}\n"
    print("ghostroll firstboot: " + text.strip(), file=sys.stderr)
    try:
        paths.error.parent.mkdir(parents=True, exist_ok=True)
        paths.error.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"ghostroll firstboot: cannot write {paths.error}: {exc}", file=sys.stderr)
    return ExitCode.PARTIAL


def _write(path: Path, text: str, mode: int, owner: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(temp, mode)
    _chown(temp, owner)
    os.replace(temp, path)


def _chown(path: Path, owner: str) -> None:
    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        return  # tests and non-appliance machines: keep the current owner
    if os.geteuid() == 0:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _nm_keyfile(wifi: dict[str, str]) -> str:
    lines = ["[connection]", "id=ghostroll-wifi", "type=wifi", "autoconnect=true", "",
             "[wifi]", "mode=infrastructure", f"ssid={wifi['ssid']}", ""]
    if wifi.get("psk"):
        lines += ["[wifi-security]", "key-mgmt=wpa-psk", f"psk={wifi['psk']}", ""]
    lines += ["[ipv4]", "method=auto", "", "[ipv6]", "method=auto", ""]
    return "\n".join(lines)
