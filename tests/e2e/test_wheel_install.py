"""trentd as a user gets it: the wheel, built from this tree and installed (not editable) in a
fresh virtual environment, serves with ``--workers 2``.

Every other test imports trentd from the source tree. This one guards what only an installed
package shows: strings that name modules (the console script ``trentd.cli:main``, the workers'
app factory ``trentd.http.factory:app_from_env``, the guarded protocol class, the pytest plugin
entry point ``trentd.testing.plugin``) and the package data (store migrations, console templates
and static files), which a module moved without them would break only there.

The wheel is built with pip from a copy of the tree (build isolation fetches the build backend
the way ``pip install -e .`` does); its dependencies are not installed again: the new
environment sees this test's site-packages through a ``.pth`` line, behind its own, and never
the source tree (no PYTHONPATH, and the editable install's own ``.pth`` is not read from there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest

from trentd.testing.server import TrentdServer

ROOT = Path(__file__).resolve().parents[2]
# What the wheel is built from: the project's metadata and its sources, nothing else of the tree.
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in")


class InstalledServer(TrentdServer):
    """A TrentdServer run by the installed ``trentd`` script, in an environment without PYTHONPATH."""

    def __init__(self, venv: Path, **kwargs):
        super().__init__(**kwargs)
        self.venv = venv

    def serve_args(self) -> list[str]:
        args = super().serve_args()
        assert args[:3] == [sys.executable, "-m", "trentd"], args
        return [str(self.venv / "bin" / "trentd"), *args[3:]]

    def process_env(self) -> dict[str, str]:
        return clean_env()


def clean_env() -> dict[str, str]:
    """This process's environment without what would import trentd from elsewhere or configure it."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP") and not k.startswith("TRENTD_")}


def run(args: list, cwd: Path, timeout: float = 300) -> str:
    out = subprocess.run([str(a) for a in args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                         timeout=timeout, check=False)
    assert out.returncode == 0, f"{args} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel of this tree installed in it."""
    work = tmp_path_factory.mktemp("wheel")
    tree = work / "tree"
    tree.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, tree], cwd=work)
    wheels = list(dist.glob("trentd-*.whl"))
    assert len(wheels) == 1, wheels
    env = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", env], cwd=work)
    python = env / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
         wheels[0]], cwd=work)
    # The dependencies: this test's own site-packages, after the environment's (a path line in a
    # .pth file is appended to sys.path; .pth files in that directory are not read).
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work).strip())
    shared = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "trentd_test_dependencies.pth").write_text("".join(f"{path}\n" for path in shared))
    return env


def test_the_installed_package_is_the_one_imported(venv, tmp_path):
    python = venv / "bin" / "python"
    script = ("import importlib.metadata as m, trentd\n"
              "(plugin,) = m.entry_points(group='pytest11', name='trentd')\n"
              "print(trentd.__file__); print(plugin.load().__file__); print(m.version('trentd'))\n")
    package, plugin, version = run([python, "-c", script], cwd=tmp_path).split()
    installed = venv.resolve()
    assert Path(package).resolve().is_relative_to(installed), package
    assert Path(plugin).resolve().is_relative_to(installed), plugin  # trentd.testing.plugin, by its entry point
    assert run([venv / "bin" / "trentd", "--version"], cwd=tmp_path).strip() == f"trentd {version}"


def test_serve_with_two_workers_from_the_wheel(venv, tmp_path):
    with InstalledServer(venv, dev=False, workers=2, test_clock=False, data_dir=tmp_path / "data") as server:
        kms = server.client()  # the administrator, from the credentials file the first start wrote
        key_id = kms.create_key(Description="from the wheel")["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"installed")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"installed"
        with urllib.request.urlopen(server.url + "/console/", timeout=10) as page:  # to the sign-in page
            assert page.status == 200 and page.url.endswith("/console/signin"), page.url
            assert page.headers.get_content_type() == "text/html"
            assert "<h1>Sign in</h1>" in page.read().decode()  # console/templates
        with urllib.request.urlopen(server.url + "/console/static/console.css", timeout=10) as style:
            assert style.status == 200 and style.read()  # console/static
        logs = server.logs()
    assert "trentd: first start." in logs, logs  # the migrations ran: store/migrations
    assert "Traceback" not in logs, logs
