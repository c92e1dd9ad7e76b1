"""The examples a newcomer copies first, run as written against a running trentd.

README's "First start" shell and Python blocks, and the quick start's `~/.aws/config` profile
recipe: the install lines are skipped, trentd is started by the test on a free port (put in place
of 4599), in a fresh directory whose `trentd-data` it serves, and the AWS CLI is the one of the
test extras. The environment is a new shell's: no AWS variable, and HOME a directory of its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trentd.testing.server import TrentdServer

ROOT = Path(__file__).resolve().parents[2]


def blocks(path: Path, after: str, language: str) -> list[str]:
    """The fenced blocks of ``language`` that follow the line starting with ``after``."""
    text = path.read_text()
    start = text.index(after)
    return re.findall(rf"```{language}\n(.*?)```", text[start:], re.S)


@pytest.fixture
def fresh_shell(tmp_path):
    """A directory holding trentd-data, a server serving it, and a new shell's environment."""
    home = tmp_path / "home"
    home.mkdir()
    with TrentdServer(dev=False, data_dir=tmp_path / "trentd-data") as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
        yield server, tmp_path, env


def run(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return result


def test_readme_first_start_examples_work_as_written(fresh_shell):
    server, cwd, env = fresh_shell
    shell = blocks(ROOT / "README.md", "## First start", "sh")[0]
    python = blocks(ROOT / "README.md", "## First start", "python")[0]
    assert "4599" in shell and "4599" in python
    port = str(server.port)
    script = (shell.replace("4599", port) + "cd / && \"$PYTHON\" - <<'EOF_PY'\n" + python.replace("4599", port) + "EOF_PY\n")
    out = run(script, cwd, {**env, "PYTHON": sys.executable}).stdout
    assert '"KeyId"' in out  # the CLI's create-key answer
    keys = server.client().list_keys()["Keys"]
    assert len(keys) == 2  # one key from the shell block, one from the Python block


def test_quickstart_profile_recipe_works_with_the_credentials_trentd_wrote(fresh_shell):
    server, cwd, env = fresh_shell
    recipe = next(b for b in blocks(ROOT / "docs" / "quickstart.md", "A profile whose KMS calls", "sh")
                  if "[profile trent]" in b)
    out = run(recipe.replace("4599", str(server.port)), cwd, env).stdout
    assert '"Keys"' in out
