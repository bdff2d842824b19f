"""Real servers for tests, started from Debian's packages (installed by `make test`)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_binary(name: str) -> str:
    found = shutil.which(name) or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [None])[-1]
    if found is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make test does)")
    return found


def _wait_for_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.2)


class PostgresServer:
    """A throwaway PostgreSQL server on a free port. PostgreSQL refuses to run as root, so under
    root it runs as the `postgres` user the Debian package creates, in a directory of its own
    (pytest's temporary folders are closed to other users). `restart` keeps data and port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="edgetune-pg-"))
        self.root.chmod(0o755)
        self.data, self.sockets = self.root / "pgdata", self.root / "pgsock"
        self.sockets.mkdir()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*self.as_user, _pg_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "edgetune",
                        "--no-sync"], check=True, capture_output=True)
        self.port = _free_port()
        self.url = f"postgresql+psycopg2://edgetune@127.0.0.1:{self.port}/postgres"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*self.as_user, _pg_binary("postgres"), "-D", str(self.data), "-p", str(self.port), "-k",
             str(self.sockets), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.proc, "PostgreSQL")
        time.sleep(0.5)  # accepting connections is not yet accepting logins

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


@contextmanager
def postgresql() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def _certificates(root: Path) -> Path:
    """A private CA and a server certificate for 127.0.0.1 (openssl, from Debian's package)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=edgetune test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
            "/CN=127.0.0.1")
    (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "server.crt", "-days", "2", "-extfile", "san.ext")
    return root / "ca.crt"


class RedisServer:
    """A throwaway Redis server on a free port. With `durable`, every write is appended and
    synced before it is acknowledged (the setting docs/distributed.md asks of a broker that must
    lose nothing), so `restart` keeps queued requests and stored answers; port and data stay."""

    def __init__(self, password: str | None = None, durable: bool = False, tls: bool = False) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("Redis is not installed: apt-get install redis-server (make test does)")
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="edgetune-redis-"))
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else ["--appendonly", "no"]
        self.args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
                     "--dir", str(self.root), *(["--requirepass", password] if password else [])]
        self.url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{self.port}/0"
        if tls:  # TLS only: the plain port is closed
            self.ca = _certificates(self.root)
            self.args[1:3] = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file",
                              str(self.root / "server.crt"), "--tls-key-file", str(self.root / "server.key"),
                              "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no"]
            self.url = f"rediss{self.url[5:]}?ssl_ca_certs={self.ca}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.proc, "Redis")

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def restart(self, down_seconds: float = 0.0, kill: bool = False) -> None:
        self.stop(kill)
        time.sleep(down_seconds)
        self.start()


@contextmanager
def redis(password: str | None = None, durable: bool = False, tls: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(password, durable, tls)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@contextmanager
def redis_server(password: str | None = None) -> Iterator[str]:
    """A throwaway Redis server without persistence; yields its URL."""
    with redis(password) as server:
        yield server.url
