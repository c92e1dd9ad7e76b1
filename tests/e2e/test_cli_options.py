"""The command line and its environment variables, through the real ``trentd`` command.

A flag on the command line wins and its variable is then not even read; a variable of the form
Kubernetes injects for a Service named trentd (``TRENTD_PORT=tcp://…``) is ignored with a warning;
any other bad value is one line naming the variable, exit 2, no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from trentd.testing.server import TrentdServer

K8S_LINKS = {"TRENTD_PORT": "tcp://10.0.0.1:4599", "TRENTD_SERVICE_HOST": "10.0.0.1",
             "TRENTD_SERVICE_PORT": "4599", "TRENTD_PORT_4599_TCP": "tcp://10.0.0.1:4599",
             "TRENTD_PORT_4599_TCP_PROTO": "tcp", "TRENTD_PORT_4599_TCP_PORT": "4599",
             "TRENTD_PORT_4599_TCP_ADDR": "10.0.0.1"}


def trentd(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRENTD_")}
    return subprocess.run([sys.executable, "-m", "trentd", *args], capture_output=True, text=True, timeout=timeout,
                          env={**clean, **(env or {})})


def test_version():
    from importlib.metadata import version

    result = trentd("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"trentd {version('trentd')}")


def test_serve_help_shows_defaults_and_variables():
    words = " ".join(trentd("serve", "--help").stdout.split())
    assert "--port PORT listen port (default: 4599; environment: TRENTD_PORT)" in words
    assert "(default: ./trentd-data; environment: TRENTD_DATA_DIR)" in words
    assert "--dev accept ANY access key without checking signatures (never expose it) (default: off; " \
           "environment: TRENTD_DEV)" in words


def test_a_typo_in_a_serve_flag_prints_serves_usage():
    result = trentd("serve", "--prot", "4600")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: trentd serve ")
    assert result.stderr.strip().endswith("trentd serve: error: unrecognized arguments: --prot 4600")


@pytest.mark.parametrize("variable, value, reason", [
    ("TRENTD_WORKERS", "two", "expected a whole number"),
    ("TRENTD_DEV", "maybe", "expected 1, true, yes, 0, false, no or nothing"),
    ("TRENTD_BODY_TIMEOUT", "10s", "expected a number"),
])
def test_a_bad_variable_is_one_line_naming_it(tmp_path, variable, value, reason):
    result = trentd("serve", "--data-dir", str(tmp_path / "d"), env={variable: value})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"trentd: {variable}={value!r}: {reason}"]
    assert not (tmp_path / "d").exists()  # refused before anything was made


def test_kubernetes_service_links_are_ignored_with_a_warning(tmp_path):
    # The warning, then the next variable's own error proves the start went on past TRENTD_PORT.
    result = trentd("serve", "--data-dir", str(tmp_path / "d"), env={**K8S_LINKS, "TRENTD_WORKERS": "x"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "trentd: ignoring TRENTD_PORT=tcp://10.0.0.1:4599 (a service link Kubernetes injects, not a trentd setting)",
        "trentd: TRENTD_WORKERS='x': expected a whole number"]


def test_admin_commands_run_beside_kubernetes_service_links(tmp_path):
    with TrentdServer(dev=False) as server:
        result = trentd("principals", "list", "--data-dir", str(server.data_dir), env=K8S_LINKS)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr and "TRENTD_PORT" not in result.stderr


def test_a_flag_wins_and_its_variable_is_not_read():
    """TrentdServer passes --port and --data-dir: their variables are garbage and never parsed."""
    env = {"TRENTD_PORT": "not a port", "TRENTD_DATA_DIR": "/nonexistent/never/used", "TRENTD_DEV": "yes"}
    with TrentdServer(dev=False, env=env) as server:
        kms = server.client(access_key="111122223333", secret_key="anything")  # TRENTD_DEV=yes: any key works
        assert kms.list_keys()["Keys"] == []
        assert "Traceback" not in server.logs()


@pytest.mark.parametrize("value, dev", [("1", True), ("true", True), ("YES", True), ("0", False), ("no", False),
                                        ("", False), ("false", False)])
def test_boolean_variables(value, dev):
    with TrentdServer(dev=False, env={"TRENTD_DEV": value}) as server:
        assert ("--dev mode" in server.logs()) is dev


# --- the config file --------------------------------------------------------------------------------
def test_serve_reads_a_config_file_below_flags_and_variables(tmp_path):
    """The file says port 1 (the flag TrentdServer passes wins), dev on (the variable may turn it
    off) and a [tls]-style table for a two-word flag."""
    config = tmp_path / "trentd.toml"
    config.write_text('port = 1\ndev = true\nmax-clock-skew = 60\n[audit]\nmax-bytes = 1048576\n')
    with TrentdServer(dev=False, extra_args=("--config", str(config))) as server:
        assert "--dev mode" in server.logs()  # from the file
        assert server.client(access_key="222233334444", secret_key="x").list_keys()["Keys"] == []
    with TrentdServer(dev=False, extra_args=("--config", str(config)), env={"TRENTD_DEV": "false"}) as server:
        assert "--dev mode" not in server.logs()  # the variable beats the file


@pytest.mark.parametrize("text, message", [
    ("prot = 1\n", "unknown key 'prot'"),
    ("port = \"4599\"\n", "'port': expected a whole number"),
    ("dev = 1\n", "'dev': expected true or false"),
    ("xks-resolve = \"a=b:1\"\n", "'xks-resolve': expected an array, e.g. [\"a\", \"b\"]"),
    ("tls-cert = \"a.pem\"\n[tls]\ncert = \"b.pem\"\n", "'[tls] cert' is given twice (as a key and in a table)"),
    ("[tls]\ncolour = \"blue\"\n", "unknown key '[tls] colour'"),
    ("port = \n", "not TOML: "),
])
def test_a_bad_config_file_is_one_line_naming_the_key(tmp_path, text, message):
    config = tmp_path / "trentd.toml"
    config.write_text(text)
    for command in (["serve", "--data-dir", str(tmp_path / "d")], ["config", "show"]):
        result = trentd(*command, "--config", str(config))
        assert result.returncode == 2, (command, result.stderr)
        [line] = result.stderr.splitlines()
        assert line.startswith(f"trentd: {config}: {message}")
    assert not (tmp_path / "d").exists()


def test_config_show_gives_every_value_its_source_and_masks_passwords(tmp_path):
    import json

    config = tmp_path / "trentd.toml"
    config.write_text('port = 4700\ndatabase = "postgresql://app:s3cret-pw@db.internal:5432/trentd"\n'
                      '[tls]\nself-signed = true\n')
    result = subprocess.run([sys.executable, "-m", "trentd", "config", "show", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("TRENTD_")},
                                 "TRENTD_WORKERS": "3"})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["port"] == {"Value": 4700, "Source": "file"}
    assert shown["workers"] == {"Value": 3, "Source": "environment"}
    assert shown["host"] == {"Value": "127.0.0.1", "Source": "default"}
    assert shown["tls-self-signed"] == {"Value": True, "Source": "file"}
    assert shown["database"] == {"Value": "postgresql://app@db.internal:5432/trentd", "Source": "file"}
    assert "s3cret-pw" not in result.stdout
    assert list(tmp_path.iterdir()) == [config]  # no store, no data dir


def test_admin_commands_take_the_config_file_too(tmp_path):
    with TrentdServer(dev=False) as server:
        config = tmp_path / "admin.toml"
        config.write_text(f'data-dir = "{server.data_dir}"\n')
        result = trentd("principals", "list", "--config", str(config))
        assert result.returncode == 0, result.stderr
        assert "arn:aws:iam::000000000000:user/admin" in result.stdout
