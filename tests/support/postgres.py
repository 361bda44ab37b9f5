"""A throwaway PostgreSQL server for tests: a cluster in a temp folder, on a free loopback port.

    server = PostgresServer.start()          # or the `postgres_server` / `postgres_url` fixtures
    url = server.create_database("t1")       # postgresql://dossier:<password>@127.0.0.1:<port>/t1
    server.stop()

The binaries (``initdb``, ``pg_ctl``) are found on PATH or in ``/usr/lib/postgresql/<version>/bin``.
PostgreSQL refuses to run as root, so as root they run as an unprivileged user (``postgres``, else
``nobody``) through ``runuser``, with the temp folder handed to that user. The server listens on
127.0.0.1 only, its superuser has a password (scram-sha-256), and fsync is off: a test never needs
the data to outlive the machine. Without the binaries the fixtures skip and say why.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "dossier"
START_TIMEOUT_S = 60
_UNPRIVILEGED = ("postgres", "nobody")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def find_bin_dir() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name), reverse=True)
    candidates += [*versions, Path("/usr/local/pgsql/bin")]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin;"
                              " install them, e.g. apt-get install postgresql")


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that drops root (and the user it runs as); nothing when not root."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    for name in _UNPRIVILEGED:
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if runuser:
            return [runuser, "-u", name, "--"], user
    raise PostgresUnavailable(f"running as root, and no runuser or unprivileged user ({', '.join(_UNPRIVILEGED)})"
                              " to run PostgreSQL as")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    root: Path
    port: int
    password: str
    bin_dir: Path
    prefix: list[str]

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = find_bin_dir()
        prefix, user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="dossier-pg-"))  # not pytest's tmp: that one is private to root
        server = cls(root, free_port(), "pw-" + secrets.token_hex(12), bin_dir, prefix)
        try:
            server._init(user)
            server._start()
        except BaseException:
            server.stop()
            raise
        return server

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._pg(["pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _init(self, user: pwd.struct_passwd | None) -> None:
        (self.root / "pwfile").write_text(self.password + "\n")
        if user is not None:
            for path in (self.root, self.root / "pwfile"):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._pg(["initdb", "-D", str(self.root / "data"), "-U", USER, f"--pwfile={self.root / 'pwfile'}",
                  "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])

    def _start(self) -> None:
        options = (f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._pg(["pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-o", options,
                  "-w", "-t", str(START_TIMEOUT_S), "start"])

    def _pg(self, argv: list[str], *, check: bool = True) -> None:
        command = [*self.prefix, str(self.bin_dir / argv[0]), *argv[1:]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, cwd=self.root)
        if check and done.returncode != 0:
            raise PostgresUnavailable(f"{argv[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}"
                                      f"\n{self.log()}")


# -- pytest fixtures: import them into a test module ---------------------------------------------

@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the session; skips, saying why, where none can start."""
    pytest.importorskip("psycopg", reason="needs the 'postgres' extra (psycopg)")
    try:
        server = PostgresServer.start()
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database per test on the session's server."""
    return postgres_server.create_database("t_" + secrets.token_hex(6))
