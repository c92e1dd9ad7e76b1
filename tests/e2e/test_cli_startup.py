"""Starting and stopping ``trentd`` through the real command: one-line errors that name the data dir
or DSN, refused starts that leave the store as they found it, admin commands that never create a
store, a port in use, SIGTERM with idle keep-alive clients, and ``GET /`` (docs/configuration.md)."""

from __future__ import annotations

import http.client
import signal
import socket
import os
import subprocess
import sys
import time

import pytest

from trentd.testing.postgres import ThrowawayDatabase, require_postgres
from trentd.testing.server import TrentdServer, write_root_key

SECRET = "s3cr3t-pw"  # a password in DSNs that must never be printed


def trentd(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trentd", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def serve(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """``trentd serve`` on port 1 (never reached: every start here is refused before serving)."""
    return trentd("serve", "--port", "1", *args, timeout=timeout)


def one_line(out: subprocess.CompletedProcess) -> str:
    """The single line a refused command prints (stderr), with no traceback and nothing on stdout."""
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert out.stdout == "", out.stdout
    return lines[0]


@pytest.fixture
def database():
    require_postgres()
    db = ThrowawayDatabase()
    try:
        yield db
    finally:
        db.drop()


def query(dsn: str, sql: str) -> list:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def tables(dsn: str) -> list[str]:
    return [r[0] for r in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]


def with_password(dsn: str, **params: str) -> str:
    """``dsn`` with a password (which trust authentication ignores) and any other ``params``."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, password=SECRET, **params)


def named(dsn: str) -> str:
    """How trentd names a DSN in messages: postgresql://user@host:port/dbname, no password."""
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    return f"postgresql://{p['user']}@{p['host']}:{p['port']}/{p['dbname']}"


# --- the data dir -------------------------------------------------------------------------------

def test_unwritable_data_dir_is_one_line_exit_2():
    out = serve("--data-dir", "/proc/trentd-x")
    assert out.returncode == 2
    assert one_line(out) == "trentd: cannot use the data dir /proc/trentd-x: No such file or directory"
    out = serve("--data-dir", "/proc")  # exists, but no file can be made in it
    assert out.returncode == 2
    assert one_line(out) == "trentd: cannot open the store: /proc/trentd.db: No such file or directory"


def test_data_dir_that_is_a_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a directory\n")
    out = serve("--data-dir", str(path))
    assert out.returncode == 2
    assert one_line(out) == f"trentd: cannot use the data dir {path}: it is not a directory"
    assert path.read_text() == "not a directory\n"


def test_corrupt_sqlite_file_is_one_line_exit_2_and_left_alone(tmp_path):
    garbage = bytes(range(256)) * 20
    (tmp_path / "trentd.db").write_bytes(garbage)
    os.chmod(tmp_path, 0o700)  # private already: nothing to tighten (that would be a line of its own)
    os.chmod(tmp_path / "trentd.db", 0o600)
    out = serve("--data-dir", str(tmp_path))
    assert out.returncode == 2
    assert one_line(out) == f"trentd: cannot open the store: {tmp_path / 'trentd.db'}: file is not a database"
    assert (tmp_path / "trentd.db").read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trentd.db"]


# --- the DSN and the database server ------------------------------------------------------------

def test_dsn_that_does_not_parse_is_one_line_exit_2(tmp_path):
    out = serve("--database", f"not a dsn password={SECRET}", "--root-key-file", str(write_root_key(tmp_path / "rk")),
                "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    line = one_line(out)
    assert line == 'trentd: not a PostgreSQL DSN: not a dsn password=***: missing "=" after "not" in connection info string', line
    assert SECRET not in out.stderr


def test_url_dsn_that_does_not_parse_has_its_password_masked(tmp_path):
    out = serve("--database", f"postgresql://u:{SECRET}@db.example/kms?bogus=1",
                "--root-key-file", str(write_root_key(tmp_path / "rk")), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    assert one_line(out) == ('trentd: not a PostgreSQL DSN: postgresql://u:***@db.example/kms?bogus=1: '
                             'invalid URI query parameter: "bogus"')


def test_role_that_may_not_create_tables_is_one_line_exit_2(tmp_path, database):
    import secrets

    role = f"trentd_norights_{secrets.token_hex(4)}"
    query(database.dsn, f'CREATE ROLE "{role}" LOGIN')  # PostgreSQL 15: no CREATE on schema public
    try:
        dsn = with_password(database.dsn, user=role)
        out = serve("--database", dsn, "--root-key-file", str(write_root_key(tmp_path / "rk")),
                    "--data-dir", str(tmp_path / "d"))
    finally:
        query(database.dsn, f'DROP ROLE "{role}"')
    assert out.returncode == 2
    assert one_line(out) == f"trentd: cannot migrate the store: {named(dsn)}: permission denied for schema public"
    assert tables(database.dsn) == []


def test_unknown_role_is_one_line_exit_2_with_the_password_masked(tmp_path):
    require_postgres()
    rk = str(write_root_key(tmp_path / "rk"))
    out = serve("--database", "postgresql://x:y@", "--root-key-file", rk, "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    assert one_line(out) == 'trentd: cannot open the store: postgresql://x@/: role "x" does not exist'
    out = serve("--database", f"postgresql://nosuchrole:{SECRET}@127.0.0.1:5432/test", "--root-key-file", rk,
                "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    assert one_line(out) == ('trentd: cannot open the store: postgresql://nosuchrole@127.0.0.1:5432/test: '
                             'role "nosuchrole" does not exist')


def test_database_that_does_not_exist_says_so_at_once(tmp_path, database):
    name = database.name + "_nosuch"
    dsn = with_password(database.dsn, dbname=name)
    started = time.monotonic()
    out = serve("--database", dsn, "--root-key-file", str(write_root_key(tmp_path / "rk")),
                "--data-dir", str(tmp_path / "d"))
    took = time.monotonic() - started
    assert out.returncode == 2
    line = one_line(out)  # no psycopg.pool warnings before it
    assert line == f'trentd: cannot open the store: {named(dsn)}: database "{name}" does not exist', line
    assert SECRET not in out.stderr
    assert took < 6, f"took {took:.1f}s"  # ~3 s asked for; slack for a loaded machine


def test_database_server_down_is_retried_for_30_seconds_then_exit_1(tmp_path):
    started = time.monotonic()
    out = serve("--database", f"postgresql://postgres:{SECRET}@127.0.0.1:1/test",
                "--root-key-file", str(write_root_key(tmp_path / "rk")), "--data-dir", str(tmp_path / "d"))
    took = time.monotonic() - started
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "psycopg.pool" not in out.stderr and SECRET not in out.stderr
    lines = out.stderr.strip().splitlines()
    reason = "Connection refused Is the server running on that host and accepting TCP/IP connections?"
    assert len(lines) == 2, out.stderr  # a notice that it waits, then the error
    assert lines[0].endswith(f" WARNING trentd.store: the database postgresql://postgres@127.0.0.1:1/test does not "
                             f"answer ({reason}); trying again for up to 30 s"), out.stderr
    assert lines[1] == (f"trentd: cannot open the store: postgresql://postgres@127.0.0.1:1/test: no answer within "
                        f"30 s: {reason}"), out.stderr
    assert 29 < took < 45, f"took {took:.1f}s"


# --- refused starts leave the database as they found it -----------------------------------------

def test_no_root_key_for_an_empty_database_leaves_it_empty(tmp_path, database):
    out = serve("--database", database.dsn, "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    assert one_line(out).startswith("trentd: refusing to start: with --database the root key must be supplied")
    assert tables(database.dsn) == []


def test_wrong_root_key_leaves_an_older_database_unchanged(tmp_path, database):
    with TrentdServer(database=database.dsn, data_dir=tmp_path / "node", root_key_file=write_root_key(tmp_path / "rk")):
        pass
    # Make it a database of the release before migration 8: its table gone, its version not recorded.
    query(database.dsn, "DROP TABLE key_counts")
    query(database.dsn, "DELETE FROM schema_migrations WHERE version = 8")
    before = tables(database.dsn), query(database.dsn, "SELECT version FROM schema_migrations ORDER BY 1")
    out = serve("--database", with_password(database.dsn), "--root-key-file", str(write_root_key(tmp_path / "other")),
                "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    assert one_line(out) == (f"trentd: refusing to start: this root key does not match the store ({named(database.dsn)}): "
                             "it cannot unwrap the store's canary")
    assert (tables(database.dsn), query(database.dsn, "SELECT version FROM schema_migrations ORDER BY 1")) == before
    assert 8 not in [v for (v,) in before[1]]


def test_wrong_root_key_for_a_sqlite_store_says_it_does_not_match(tmp_path):
    with TrentdServer(data_dir=tmp_path / "node"):
        pass
    (tmp_path / "node" / "root.key").unlink()
    write_root_key(tmp_path / "node" / "root.key")
    out = serve("--data-dir", str(tmp_path / "node"))
    assert out.returncode == 2
    assert one_line(out) == (f"trentd: refusing to start: this root key does not match the store "
                             f"({tmp_path / 'node' / 'trentd.db'}): it cannot unwrap the store's canary")


# --- admin commands never create a store --------------------------------------------------------

ADMIN_COMMANDS = [
    ("principals", "list"),
    ("principals", "create", "--account", "111122223333", "--name", "ops"),
    ("access-keys", "list"),
    ("policies", "list"),
    ("keys", "transfer-key"),
    ("keys", "import", "{file}"),
    ("seed", "import", "{file}"),
    ("audit", "hash", "value"),
    ("root-key", "rotate", "--grace", "0"),
]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_admin_command_on_a_data_dir_without_a_store_refuses(tmp_path, command):
    seed = tmp_path / "seed.yaml"
    seed.write_text("Keys:\n  Symmetric:\n    Aes: []\n")
    typo = tmp_path / "trentd-datx"
    out = trentd(*[part.format(file=seed) for part in command], "--data-dir", str(typo))
    assert out.returncode == 2, out.stderr
    assert one_line(out) == (f"trentd: no trentd store in {typo} (trentd.db does not exist); "
                             f"`trentd serve --data-dir {typo}` creates one")
    assert not typo.exists()


def test_admin_command_on_an_empty_data_dir_leaves_it_empty(tmp_path):
    out = trentd("access-keys", "list", "--data-dir", str(tmp_path))
    assert out.returncode == 2
    assert "no trentd store in" in one_line(out)
    assert list(tmp_path.iterdir()) == []


def test_admin_commands_refuse_an_empty_database_and_migrate_prepares_it(tmp_path, database):
    rk = str(write_root_key(tmp_path / "rk"))
    store = ("--database", with_password(database.dsn), "--root-key-file", rk, "--data-dir", str(tmp_path / "d"))
    expected = (f"trentd: no trentd store in {named(database.dsn)} (the database is not initialised); "
                f"`trentd serve --database DSN --root-key-file FILE` initialises it")
    out = trentd("principals", "list", *store)
    assert out.returncode == 2 and one_line(out) == expected
    assert tables(database.dsn) == [] and not (tmp_path / "d").exists()
    migrated = trentd("migrate", "--database", database.dsn)  # a migration job before a rollout
    assert migrated.returncode == 0, migrated.stderr
    assert '"Store": "postgres"' in migrated.stdout and '"Applied": [\n    1,' in migrated.stdout
    def state():
        return (query(database.dsn, "SELECT version FROM schema_migrations ORDER BY 1"),
                query(database.dsn, "SELECT name, value FROM meta ORDER BY 1"))

    before = state()
    out = trentd("principals", "list", *store)
    assert out.returncode == 2 and one_line(out) == expected
    assert state() == before and "initialized" not in [name for name, _ in before[1]]


# --- the port -----------------------------------------------------------------------------------

def test_port_in_use_is_said_first_and_prints_no_secret(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = trentd("serve", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 1
    assert one_line(out) == f"trentd: cannot listen on 127.0.0.1:{port}: address already in use"
    assert "aws_secret_access_key" not in out.stdout + out.stderr
    assert not (tmp_path / "d").exists()  # nothing was initialised for a server that never served


def test_tls_certificate_that_does_not_load_is_said_before_the_first_start(tmp_path):
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    out = trentd("serve", "--port", "1", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(tmp_path / "cert.pem"),
                 "--tls-key", str(tmp_path / "cert.pem"))
    assert out.returncode == 2
    assert one_line(out).startswith("trentd: cannot set up TLS: ")
    assert "aws_secret_access_key" not in out.stdout + out.stderr
    assert not (tmp_path / "d").exists()


# --- stopping -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [None, "self-signed"], ids=["http", "https"])
def test_sigterm_with_idle_keep_alive_clients_stops_at_once(tmp_path, tls):
    server = TrentdServer(tls=tls, data_dir=tmp_path / "data")
    server.start()
    clients = []
    try:
        for _ in range(3):
            conn = (http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=10)
                    if tls else http.client.HTTPConnection("127.0.0.1", server.port, timeout=10))
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b'{"status":"ok"}'
            clients.append(conn)  # kept open and idle: keep-alive
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        returncode = server.process.wait(30)
        took = time.monotonic() - started
    finally:
        for conn in clients:
            conn.close()
        server.stop()
    logs = server.logs()
    print(f"stopped in {took:.2f}s")
    # uvicorn ends by raising the signal again once it has shut down cleanly
    assert returncode == -signal.SIGTERM and "Application shutdown complete." in logs, logs
    assert took < 3, f"took {took:.2f}s:\n{logs}"  # within a second asked for; slack for a loaded machine
    assert "ERROR" not in logs and "Traceback" not in logs, logs


# --- GET / and the banner -------------------------------------------------------------------------

def _get(server: TrentdServer, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_get_root_redirects_to_the_console_and_the_banner_names_it(tmp_path):
    with TrentdServer(data_dir=tmp_path / "data") as server:
        response = _get(server, "/")
        assert response.status == 302
        assert response.getheader("Location") == "/console/"
        assert f"trentd: serving the AWS KMS API on http://127.0.0.1:{server.port}; " \
               f"web console: http://127.0.0.1:{server.port}/console/" in server.logs()


def test_get_root_without_the_console_is_not_found(tmp_path):
    with TrentdServer(data_dir=tmp_path / "data", extra_args=("--no-console",)) as server:
        assert _get(server, "/").status == 404
        logs = server.logs()
        assert f"trentd: serving the AWS KMS API on http://127.0.0.1:{server.port} (web console off)" in logs
        assert "/console/" not in logs

