"""A throwaway PostgreSQL cluster of a test (or a benchmark): initdb and pg_ctl in a
temporary directory, listening on a Unix socket only, stopped at the end.

Root cannot run the server: when we are root the cluster belongs to the `postgres`
user (runuser), in a directory it owns; root still reaches the socket. One role
with a password (PASSWORD_ROLE, scram-sha-256) tests credentials; everyone else is
trusted on the socket.

Several test sessions (other worktrees) run clusters at once: each has a directory of
its own (mkdtemp), which holds its socket and lock, so none shares a port or a socket.
The directory is under /tmp unless TMPDIR is short enough for a socket path (108 bytes
with ".s.PGSQL.5432") and open to the postgres user. A session killed before its end
leaves its cluster behind: the next one stops and removes those whose owner (the
process named in the directory's `owner` file) is gone.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote


def _pg_bin() -> Path:
    """The newest installed PostgreSQL's programs (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
PASSWORD_ROLE = "ttd_pw"
PASSWORD = "s3cr3t-Pa55word"
START_LIMIT_S = 60
# Tests trade durability for speed (a crash loses only a throwaway cluster); a benchmark
# measures what a user's server does: its defaults (SERVER_DEFAULTS).
TEST_SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=100 -c max_wal_size=4GB"
)
SERVER_DEFAULTS = ""
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the NUL
SOCKET_NAME = ".s.PGSQL.5432"
OWNER_FILE = "owner"


def available() -> str | None:
    """None when a cluster can be made here, else why not."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"{PG_BIN / tool} is missing (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no 'postgres' user to run the server as"
    return None


class PgCluster:
    """A cluster in its own directory; url() names a database in it."""

    def __init__(self, directory: Path, running: bool = False):
        self.dir = directory
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.running = running

    @classmethod
    def new(cls, prefix: str = "ttd-pg-") -> PgCluster:
        """A cluster in a new directory (not made yet: init())."""
        base = _base_dir()
        reap_orphans(base)
        cluster = cls(Path(tempfile.mkdtemp(prefix=prefix, dir=base)))
        (cluster.dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
        if cluster._owner is not None:
            os.chown(cluster.dir, cluster._owner.pw_uid, cluster._owner.pw_gid)
        os.chmod(cluster.dir, 0o711)  # root and the page server reach the socket
        return cluster

    def _as_owner(self, *argv: str, timeout: float = START_LIMIT_S):
        prefix = ["runuser", "-u", "postgres", "--"] if self._owner is not None else []
        return subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
            check=True,
        )

    def init(self) -> None:
        self._as_owner(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        hba = self.data / "pg_hba.conf"
        rules = f"local all {PASSWORD_ROLE} scram-sha-256\nlocal all all trust\n"
        hba.write_text(rules)  # ours now: root writes, the server only reads
        if self._owner is not None:
            os.chown(hba, self._owner.pw_uid, self._owner.pw_gid)

    def start(self, settings: str = TEST_SETTINGS) -> None:
        opts = f"-c listen_addresses='' -c unix_socket_directories='{self.dir}' {settings}"
        try:
            self._as_owner(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                str(START_LIMIT_S),
                "-o",
                opts,
                "start",
                timeout=START_LIMIT_S + 10,
            )
        except subprocess.CalledProcessError as exc:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"PostgreSQL did not start in {self.dir}: {exc.stderr}\n{log}"
            ) from None
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._as_owner(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "-t",
                str(START_LIMIT_S),
                "stop",
                timeout=START_LIMIT_S + 10,
            )
            self.running = False

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(
        self,
        database: str = "postgres",
        recording: str | None = None,
        user: str = "postgres",
        password: str | None = None,
    ) -> str:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        query = f"host={self.dir}"
        if recording is not None:
            query += f"&recording={recording}"
        return f"postgresql://{auth}@/{database}?{query}"

    def sql(self, statement: str, database: str = "postgres", params=None) -> list[tuple]:
        """Run one statement as the superuser (autocommit); its rows, if any."""
        import psycopg

        with (
            psycopg.connect(
                host=str(self.dir), user="postgres", dbname=database, autocommit=True
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str) -> str:
        """A new database (its URL); the password role may use it."""
        self.sql(f'CREATE DATABASE "{name}"')
        self.sql(f'GRANT ALL ON DATABASE "{name}" TO {PASSWORD_ROLE}')
        self.sql(f"GRANT ALL ON SCHEMA public TO {PASSWORD_ROLE}", database=name)
        return self.url(name)

    def add_password_role(self) -> None:
        self.sql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")


def _base_dir() -> str:
    """Where clusters' directories go: TMPDIR when a socket path fits and the postgres
    user can reach it, else /tmp."""
    base = tempfile.gettempdir()
    fits = len(base) + len("/ttd-pg-stop-12345678/") + len(SOCKET_NAME) <= SOCKET_PATH_MAX
    reachable = all(os.stat(p).st_mode & 0o001 for p in [base, *map(str, Path(base).parents)])
    return base if fits and reachable else "/tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(base: str) -> None:
    """Stop and remove the clusters of test sessions that ended without doing so."""
    for owner in Path(base).glob(f"ttd-pg-*/{OWNER_FILE}"):
        try:
            pid = int(owner.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if _alive(pid):
            continue
        directory = owner.parent
        PgCluster(directory, running=(directory / "data/postmaster.pid").exists()).remove()


@contextlib.contextmanager
def running_cluster(prefix: str = "ttd-pg-", settings: str = TEST_SETTINGS):
    """A started cluster with the password role; stopped and removed at the end."""
    cluster = PgCluster.new(prefix)
    try:
        cluster.init()
        cluster.start(settings)
        cluster.add_password_role()
        yield cluster
    finally:
        cluster.remove()
