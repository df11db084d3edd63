"""Configuration: defaults < TOML file < GHOSTROLL_* env < CLI flags, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostroll import config
from ghostroll.cli import build_parser
from ghostroll.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_original_systems(tmp_path: Path) -> None:
    cfg = config.load(config_file=None, env={"HOME": str(tmp_path)})
    assert cfg.card.sd_label == "auto-import"
    assert cfg.storage.base_dir == Path("~/ghostroll").expanduser()
    assert cfg.storage.db_path == Path("~/.ghostroll/ghostroll.db").expanduser()
    assert cfg.s3.s3_prefix_root == "sessions/"
    assert cfg.s3.presign_expiry_seconds == 604800
    assert (cfg.images.share_max_long_edge, cfg.images.share_quality) == (2048, 90)
    assert (cfg.images.thumb_max_long_edge, cfg.images.thumb_quality) == (512, 85)
    assert 1 <= cfg.images.process_workers <= 6
    assert cfg.s3.upload_workers == 4
    assert cfg.s3.presign_workers == 8
    assert not cfg.s3.enabled
    assert set(cfg.sources.values()) == {"default"}


def test_each_source_overrides_the_one_below(tmp_path: Path) -> None:
    path = write(tmp_path, '[card]\nsd_label = "from-file"\n[s3]\nupload_workers = 2\n'
                           's3_bucket = "file-bucket"\n')
    env = {"GHOSTROLL_UPLOAD_WORKERS": "3", "GHOSTROLL_S3_BUCKET": "env-bucket"}
    cfg = config.load(config_file=path, env=env, flags={"s3_bucket": "flag-bucket"})
    assert cfg.card.sd_label == "from-file"
    assert cfg.sources["sd_label"] == f"file {path}"
    assert cfg.s3.upload_workers == 3
    assert cfg.sources["upload_workers"] == "env GHOSTROLL_UPLOAD_WORKERS"
    assert cfg.s3.s3_bucket == "flag-bucket"
    assert cfg.sources["s3_bucket"] == "flag --s3-bucket"


def test_cli_flags_parse_into_config_and_unset_flags_do_not_hide_env(tmp_path: Path) -> None:
    args = build_parser().parse_args(["run", str(tmp_path), "--share-quality", "77"])
    cfg = config.from_args(args, env={"GHOSTROLL_THUMB_QUALITY": "60"})
    assert cfg.images.share_quality == 77
    assert cfg.images.thumb_quality == 60  # flag default None leaves the env value alone


@pytest.mark.parametrize(("env", "words"), [
    ({"GHOSTROLL_SHARE_QUALITY": "200"}, ["share_quality", "env GHOSTROLL_SHARE_QUALITY",
                                         "30..100"]),
    ({"GHOSTROLL_UPLOAD_WORKERS": "many"}, ["upload_workers", "whole number"]),
    ({"GHOSTROLL_S3_ADDRESSING_STYLE": "sideways"}, ["s3_addressing_style",
                                                     "auto, path, virtual"]),
    ({"GHOSTROLL_SHARE_ZIP": "maybe"}, ["share_zip", "true or false"]),
    ({"GHOSTROLL_PRESIGN_EXPIRY_SECONDS": "999999"}, ["presign_expiry_seconds", "604800"]),
    ({"GHOSTROLL_S3_ACCESS_KEY_ID": "AKIA"}, ["s3_secret_access_key", "together"]),
])
def test_invalid_values_name_key_source_and_what_is_allowed(env: dict, words: list) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(config_file=None, env=env)
    for word in words:
        assert word in str(caught.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'sd_lable'"):
        config.load(config_file=write(tmp_path, '[card]\nsd_lable = "x"\n'), env={})
    with pytest.raises(ConfigError, match=r"unknown section \[cards\]"):
        config.load(config_file=write(tmp_path, '[cards]\nsd_label = "x"\n'), env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(config_file=write(tmp_path, "[card\n"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(config_file=tmp_path / "nope.toml", env={})
    bad = write(tmp_path, "[images]\nshare_quality = true\n")
    with pytest.raises(ConfigError, match=f"share_quality = True from file {bad}"):
        config.load(config_file=bad, env={})


def test_config_file_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, '[card]\nsd_label = "EOS_DIGITAL"\n')
    cfg = config.load(env={"GHOSTROLL_CONFIG": str(path)})
    assert cfg.card.sd_label == "EOS_DIGITAL"
    assert cfg.config_file == path


def test_secrets_are_never_described() -> None:
    cfg = config.load(config_file=None, env={"GHOSTROLL_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
                                             "GHOSTROLL_S3_SECRET_ACCESS_KEY": "s3cr3t"})
    text = repr(cfg) + repr(config.describe(cfg))
    assert "s3cr3t" not in text and "AKIAEXAMPLE" not in text
    assert ("s3_secret_access_key", "(set)", "env GHOSTROLL_S3_SECRET_ACCESS_KEY") in \
        config.describe(cfg)


def test_every_key_has_env_and_flag_and_docs_are_current() -> None:
    names = [k.name for k in config.KEYS]
    assert len(names) == len(set(names))
    envs = {k.env for k in config.KEYS}
    for original in ("GHOSTROLL_SD_LABEL", "GHOSTROLL_BASE_DIR", "GHOSTROLL_DB_PATH",
                     "GHOSTROLL_S3_BUCKET", "GHOSTROLL_S3_PREFIX_ROOT",
                     "GHOSTROLL_PRESIGN_EXPIRY_SECONDS", "GHOSTROLL_PROCESS_WORKERS",
                     "GHOSTROLL_UPLOAD_WORKERS", "GHOSTROLL_PRESIGN_WORKERS"):
        assert original in envs
    doc = (REPO / "docs" / "configuration.md").read_text()
    assert config.markdown_table() in doc, (
        "docs/configuration.md is stale: regenerate the table with `ghostroll config --markdown`")


@pytest.mark.parametrize(("env", "words"), [
    ({"GHOSTROLL_POLL_SECONDS": "nan"}, ["poll_seconds", "finite", "0.1..60"]),
    ({"GHOSTROLL_POLL_SECONDS": "inf"}, ["poll_seconds", "finite"]),
    ({"GHOSTROLL_BUTTON_HOLD_SECONDS": "-inf"}, ["button_hold_seconds", "finite"]),
    ({"GHOSTROLL_BASE_DIR": ""}, ["base_dir", "env GHOSTROLL_BASE_DIR", "must not be empty",
                                  "~/ghostroll"]),
    ({"GHOSTROLL_DB_PATH": "  "}, ["db_path", "must not be empty"]),
    ({"GHOSTROLL_S3_ENDPOINT_URL": "not a url"}, ["s3_endpoint_url", "http:// or https://"]),
    ({"GHOSTROLL_S3_ENDPOINT_URL": "ftp://s3.example.com"}, ["s3_endpoint_url", "http://"]),
    ({"GHOSTROLL_S3_ENDPOINT_URL": "https://"}, ["s3_endpoint_url", "with a host"]),
    ({"GHOSTROLL_S3_ENDPOINT_URL": "https://s3.example.com:port"}, ["s3_endpoint_url"]),
    ({"GHOSTROLL_S3_ENDPOINT_URL": "https://k:s@s3.example.com"}, ["credentials"]),
    ({"GHOSTROLL_S3_REGION": "us east/1"}, ["s3_region", "us-east-1"]),
    ({"GHOSTROLL_S3_BUCKET": "a/b"}, ["s3_bucket", "3-63 characters"]),
    ({"GHOSTROLL_S3_BUCKET": "My_Photos"}, ["s3_bucket", "lowercase"]),
    ({"GHOSTROLL_S3_BUCKET": "ab"}, ["s3_bucket", "3-63"]),
    ({"GHOSTROLL_S3_BUCKET": "x" * 64}, ["s3_bucket", "3-63"]),
    ({"GHOSTROLL_S3_BUCKET": "photos..2026"}, ["s3_bucket", "two dots"]),
    ({"GHOSTROLL_S3_BUCKET": "192.168.1.10"}, ["s3_bucket", "IP address"]),
    ({"GHOSTROLL_S3_BUCKET": "xn--photos"}, ["s3_bucket", "reserved"]),
    ({"GHOSTROLL_S3_PREFIX_ROOT": "L/"}, ["s3_prefix_root", "short-link", "public"]),
    ({"GHOSTROLL_S3_PREFIX_ROOT": "L"}, ["s3_prefix_root", "short-link"]),
    ({"GHOSTROLL_S3_PREFIX_ROOT": "L/sessions/"}, ["s3_prefix_root", "short-link"]),
    ({"GHOSTROLL_S3_PREFIX_ROOT": "l/"}, ["s3_prefix_root", "short-link"]),
    ({"GHOSTROLL_S3_PREFIX_ROOT": "a/../L/"}, ["s3_prefix_root", "'..'"]),
    ({"GHOSTROLL_S3_PREFIX_ROOT": "/sessions/"}, ["s3_prefix_root", "leading"]),
])
def test_unusable_values_are_refused_at_load(env: dict, words: list) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(config_file=None, env=env)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(("toml", "words"), [
    ('[card]\nsd_label = ["a", "b"]\n', ["sd_label", "expected a string", "TOML array"]),
    ("[storage]\nbase_dir = {a = 1}\n", ["base_dir", "expected a path", "TOML table"]),
    ("[card]\npoll_seconds = [1]\n", ["poll_seconds", "expected a number", "array"]),
    ("[s3]\ns3_bucket = 2026-01-01\n", ["s3_bucket", "date/time"]),
    ("[card]\npoll_seconds = nan\n", ["poll_seconds", "finite"]),
    ("[card]\npoll_seconds = inf\n", ["poll_seconds", "finite"]),
])
def test_toml_values_of_the_wrong_shape_are_refused(tmp_path: Path, toml: str,
                                                    words: list) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as caught:
        config.load(config_file=path, env={})
    for word in [*words, f"from file {path}"]:
        assert word in str(caught.value)


def test_valid_s3_names_and_optional_empty_paths_pass(tmp_path: Path) -> None:
    cfg = config.load(config_file=None, env={
        "GHOSTROLL_S3_BUCKET": "my.photos-2026", "GHOSTROLL_S3_REGION": "auto",
        "GHOSTROLL_S3_ENDPOINT_URL": "http://192.168.1.20:9000",
        "GHOSTROLL_S3_PREFIX_ROOT": "photos/Lisbon", "GHOSTROLL_FRAMES_DIR": ""})
    assert cfg.s3.s3_bucket == "my.photos-2026"
    assert cfg.s3.s3_prefix_root == "photos/Lisbon/"
    assert cfg.appliance.frames_dir is None  # empty means "none" where the default is none
    for region in ("us-east-1", "eu-central-1", "us-west-004", "fr-par", "auto"):
        assert config.region_problem(region) is None
    for url in ("https://s3.eu-central-1.amazonaws.com", "https://acc.r2.cloudflarestorage.com",
                "http://127.0.0.1:8333", "http://[::1]:9000/"):
        assert config.endpoint_problem(url) is None
    assert config.is_loopback_host("127.0.0.1") and config.is_loopback_host("[::1]")
    assert config.is_loopback_host("localhost")
    assert not config.is_loopback_host("192.168.1.20")


def test_aws_fallbacks_are_checked_when_a_bucket_uses_them() -> None:
    bucket = {"GHOSTROLL_S3_BUCKET": "photos"}
    with pytest.raises(ConfigError, match=r"AWS_ENDPOINT_URL = 'not a url' from env "
                                          r"AWS_ENDPOINT_URL \(used because s3_endpoint_url"):
        config.load(config_file=None, env={**bucket, "AWS_ENDPOINT_URL": "not a url"})
    with pytest.raises(ConfigError, match="AWS_DEFAULT_REGION"):
        config.load(config_file=None, env={**bucket, "AWS_DEFAULT_REGION": "us east/1"})
    # not used, so not checked: a set key wins, and without a bucket nothing is sent
    config.load(config_file=None, env={**bucket, "GHOSTROLL_S3_REGION": "eu-west-1",
                                       "AWS_REGION": "us east/1"})
    config.load(config_file=None, env={"AWS_ENDPOINT_URL": "not a url"})


def test_refusals_never_show_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(config_file=None, env={"GHOSTROLL_S3_ENDPOINT_URL":
                                           "https://AKIAKEY:s3cr3t@s3.example.com"})
    assert "s3cr3t" not in str(caught.value) and "credentials" in str(caught.value)
    path = write(tmp_path, '[s3]\ns3_secret_access_key = ["s3cr3t"]\n')
    with pytest.raises(ConfigError) as caught:
        config.load(config_file=path, env={})
    assert "s3cr3t" not in str(caught.value) and "s3_secret_access_key" in str(caught.value)


def test_ghostroll_config_prints_a_config_file_that_loads_back(tmp_path: Path) -> None:
    import tomllib

    cfg = config.load(config_file=None, env={}, flags={
        "s3_bucket": "photos", "s3_access_key_id": "AKIAEXAMPLE",
        "s3_secret_access_key": "very-secret", "share_zip": "false", "poll_seconds": "3"})
    text = config.effective_toml(cfg)
    assert "very-secret" not in text and "AKIAEXAMPLE" not in text
    assert "None" not in text and "True" not in text and "False" not in text
    assert 's3_bucket = "photos"  # flag --s3-bucket' in text
    assert "share_zip = false  # flag --share-zip" in text
    assert "# frames_dir: not set  # default" in text
    path = tmp_path / "printed.toml"
    path.write_text(text)
    assert set(tomllib.loads(text)) == set(config.SECTIONS)
    again = config.load(config_file=path, env={})
    assert again.images.share_zip is False and again.card.poll_seconds == 3.0
    assert again.s3.s3_bucket == "photos" and again.storage == cfg.storage


def test_the_short_link_bucket_must_be_another_bucket() -> None:
    with pytest.raises(ConfigError, match=r"short_link_bucket .* must be another bucket"):
        config.load(config_file=None, env={}, flags={"s3_bucket": "photos",
                                                    "short_link_bucket": "photos"})
    with pytest.raises(ConfigError, match="short_link_base_url"):
        config.load(config_file=None, env={}, flags={"s3_bucket": "photos",
                                                    "short_link_bucket": "links",
                                                    "short_link_base_url": "pub.r2.dev"})
