"""The first start's output: the administrator's secret goes to a terminal only.

Under systemd or in a container, standard output is a pipe or a file that a log collector keeps;
there trentd prints where the credentials file is and never the secret. On a terminal (a person
running ``trentd serve`` by hand) it prints the key once, as before.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

from trentd.testing.server import TrentdServer


def test_first_start_to_a_file_prints_where_the_credentials_are_not_the_secret(tmp_path):
    # TrentdServer sends the server's stdout and stderr to a file, as a service manager would
    with TrentdServer(dev=False, data_dir=tmp_path / "data") as server:
        access_key, secret = server.admin_credentials()
        assert server.client().list_keys()["Keys"] == []  # the file's key works
        output = server.logs()
    path = str(tmp_path / "data" / "admin-credentials")
    assert f"trentd: first start. Administrator arn:aws:iam::000000000000:user/admin; its access key is in {path}" \
        in output, output
    assert secret not in output and secret[:8] not in output
    assert "aws_secret_access_key" not in output


def test_first_start_on_a_terminal_prints_the_secret_once(tmp_path):
    server = TrentdServer(dev=False, data_dir=tmp_path / "data")
    leader, follower = pty.openpty()
    process = subprocess.Popen(server.serve_args(), stdout=follower, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"this is the only time it is printed" not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    seen += os.read(leader, 4096)
                except OSError:  # the server exited: its output is all there is
                    break
        _, secret = server.admin_credentials()
    finally:
        process.terminate()
        process.wait(10)
        os.close(leader)
    text = seen.decode(errors="replace")
    assert f"aws_secret_access_key = {secret}" in text, text
    assert str(tmp_path / "data" / "admin-credentials") in text
