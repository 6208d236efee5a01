"""A real PostgreSQL server for the registry's tests and bench: a throwaway cluster in a temporary folder.

The machine's PostgreSQL binaries (`pg_config --bindir`, /usr/lib/postgresql/*/bin, or PATH) run `initdb` and
`pg_ctl` into a temporary folder; the server listens on a free loopback port with trust auth. PostgreSQL
refuses to run as root: then it runs as the `postgres` user (or `aoai-pg`, made for it), owning the folder.
Each test gets a database of its own (`PostgresServer.new_database`).

`.ci/run` installs Debian's postgresql when no binaries are found and sets `REQUIRE_POSTGRES=1`: there (or
wherever `CI` is set) missing binaries fail the PostgreSQL tests. Elsewhere those tests are skipped, saying
what to install.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

SERVICE_USERS = ("postgres", "aoai-pg")
_names = itertools.count()


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            candidates.append(Path(done.stdout.strip()))
    candidates += [Path(found) for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    return next((found for found in candidates if (found / "initdb").exists() and (found / "pg_ctl").exists()), None)


def postgres_required() -> bool:
    return bool(os.environ.get("REQUIRE_POSTGRES") or os.environ.get("CI"))


def bindir_or_skip() -> Path:
    """The binaries' folder; missing ones fail the test where PostgreSQL is required, else skip it."""
    if (found := find_bindir()) is not None:
        return found
    reason = "PostgreSQL is not installed: install Debian's postgresql (apt-get install -y postgresql) for these tests"
    if postgres_required():
        pytest.fail(reason)
    pytest.skip(reason)


def _service_user() -> pwd.struct_passwd | None:
    """Who runs the server: None (this user) unless this is root, which PostgreSQL refuses."""
    if os.getuid() != 0:
        return None
    for name in SERVICE_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USERS[1]], check=True)
    return pwd.getpwnam(SERVICE_USERS[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A cluster in a temporary folder, started by `start` and removed by `stop` (also at exit).

    `durable=False` turns fsync off (tests: nothing needs to survive a crash of the machine)."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable
        self.port = 0
        self.folder = Path(tempfile.mkdtemp(prefix="aoai-pg-"))
        self._user = _service_user()
        self._started = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        user = self._user
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            cwd=self.folder,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> PostgresServer:
        if self._user is not None:
            os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-locale",
        )  # fmt: skip
        self.port = _free_port()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        atexit.register(self.stop)
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh empty database's URL."""
        name = f"registry_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)
