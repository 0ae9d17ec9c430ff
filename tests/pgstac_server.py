"""A throwaway STAC API for the tests: PostgreSQL + PostGIS + pgstac + stac-fastapi-pgstac on loopback.

`pgstac_api` (session scope) starts a fresh cluster in a temp dir on a free port (as the `postgres` user when
running as root: initdb refuses root), migrates pgstac into it, serves stac-fastapi-pgstac with the
Transactions extension behind a bearer-token write guard (`pgstac_app.py`), and removes everything at the end.
Without PostgreSQL/PostGIS the tests skip, unless MLMKIT_REQUIRE_SERVICES=1 (then they fail).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conftest import require_services

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
WRITE_TOKEN = "mlmkit-test-token"
STARTUP_TIMEOUT_S = 60


@dataclass(frozen=True)
class PgstacApi:
    url: str
    token: str
    stop_database: Callable[[], object]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin() -> Path | None:
    for bin_dir in PG_BIN_DIRS:
        version = bin_dir.parent.name
        postgis = Path(f"/usr/share/postgresql/{version}/extension/postgis.control")
        if (bin_dir / "initdb").exists() and postgis.exists():
            return bin_dir
    return None


def _as_db_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` system user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _unavailable(reason: str) -> None:
    if require_services():
        pytest.fail(f"STAC API test server unavailable: {reason}")
    pytest.skip(f"STAC API test server unavailable: {reason}")


def _wait_http(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stac-fastapi-pgstac exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"stac-fastapi-pgstac not ready after {STARTUP_TIMEOUT_S}s: {log.read_text()[-2000:]}")


@contextmanager
def running_pgstac() -> Iterator[PgstacApi]:
    """A fresh cluster + API for as long as the context lasts."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL with PostGIS is not installed (run scripts/services/postgres.sh)")
    workdir = Path(tempfile.mkdtemp(prefix="mlmkit-pgstac-"))
    workdir.chmod(0o777)
    pgdata, log = workdir / "pgdata", workdir / "postgres.log"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
    pg_port, api_port = free_port(), free_port()
    dsn = f"postgresql://postgres:unused@127.0.0.1:{pg_port}/postgres"
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(pgdata)]
    server = None
    try:
        try:
            subprocess.run(_as_db_user([str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres", "-A", "trust",
                                        "-E", "UTF8"]), check=True, capture_output=True, env=env)
            subprocess.run(_as_db_user([*pg_ctl, "-l", str(log), "-w", "start",
                                        "-o", f"-h 127.0.0.1 -p {pg_port} -k {workdir} -c fsync=off "
                                              "-c synchronous_commit=off -c full_page_writes=off"]),
                           check=True, capture_output=True, env=env)
            subprocess.run([sys.executable, "-m", "pypgstac.pypgstac", "migrate", f"--dsn={dsn}"],
                           check=True, capture_output=True, env=env)
            api_env = {**env, "PGUSER": "postgres", "PGPASSWORD": "unused", "PGHOST": "127.0.0.1",
                       "PGPORT": str(pg_port), "PGDATABASE": "postgres", "ENABLE_TRANSACTIONS_EXTENSIONS": "TRUE",
                       "MLMKIT_TEST_WRITE_TOKEN": WRITE_TOKEN, "DB_MIN_CONN_SIZE": "1", "DB_MAX_CONN_SIZE": "4"}
            api_log = workdir / "api.log"
            with open(api_log, "wb") as stream:
                server = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "pgstac_app:create_app", "--factory", "--app-dir",
                     str(Path(__file__).parent), "--host", "127.0.0.1", "--port", str(api_port), "--log-level",
                     "warning"], env=api_env, stdout=stream, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{api_port}"
            _wait_http(f"{url}/_mgmt/ping", server, api_log)
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            _unavailable(f"{exc} {detail.decode(errors='replace')[-1500:]}")
        yield PgstacApi(url=url, token=WRITE_TOKEN,
                        stop_database=lambda: subprocess.run(_as_db_user([*pg_ctl, "-m", "fast", "stop"]),
                                                             capture_output=True, check=True))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if (pgdata / "postmaster.pid").exists():
            subprocess.run(_as_db_user([*pg_ctl, "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def pgstac_api() -> Iterator[PgstacApi]:
    with running_pgstac() as api:
        yield api
