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


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@contextmanager
def postgresql() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free port; yields its URL. PostgreSQL refuses to run
    as root, so under root it runs as the `postgres` user the Debian package creates (in a
    directory of its own: pytest's temporary folders are closed to other users)."""
    root = Path(tempfile.mkdtemp(prefix="edgetune-pg-"))
    root.chmod(0o755)
    initdb, postgres = _pg_binary("initdb"), _pg_binary("postgres")
    if initdb is None or postgres is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make test does)")
    data, sockets = root / "pgdata", root / "pgsock"
    for d in (root, sockets):
        d.mkdir(parents=True, exist_ok=True)
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "edgetune", "--no-sync"],
                   check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([*as_user, postgres, "-D", str(data), "-p", str(port), "-k", str(sockets),
                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("PostgreSQL did not start") from None
                time.sleep(0.2)
        time.sleep(0.5)  # accepting connections is not yet accepting logins
        yield f"postgresql+psycopg2://edgetune@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
