"""A SoftHSM2 token in a temporary directory, for tests of the ``pkcs11`` root-key provider.

    token = SoftHsmToken.create(tmp_path)          # softhsm2-util --init-token in tmp_path/tokens
    server = TrentdServer(pkcs11=token)             # --pkcs11-module/-token/-pin-env, SOFTHSM2_CONF

``SOFTHSM2_CONF`` points at a config of the token's own whose ``directories.tokendir`` is the
temporary directory, so nothing outside it is touched. Needs Debian's ``softhsm2`` package.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
PIN_ENV = "TRENTD_TEST_PKCS11_PIN"


def find_module() -> str | None:
    for path in MODULE_CANDIDATES:
        if os.path.exists(path):
            return path
    return None


def available() -> bool:
    return find_module() is not None and shutil.which("softhsm2-util") is not None


def require_softhsm() -> None:
    """Skip the calling test when python-pkcs11 or SoftHSM2 is missing — or fail it when ``CI``
    is set (scripts/test installs softhsm2), where a silent skip would hide a broken setup."""
    import pytest

    pytest.importorskip("pkcs11", reason="python-pkcs11 (the pkcs11 extra) is not installed")
    if not available():
        if os.environ.get("CI"):
            pytest.fail("CI is set and SoftHSM2 is not installed (scripts/test installs softhsm2)", pytrace=False)
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")


@dataclass
class SoftHsmToken:
    directory: Path
    token: str
    pin: str
    so_pin: str
    module: str = field(default_factory=lambda: find_module() or MODULE_CANDIDATES[0])
    label: str = "trentd-root"
    pin_env: str = PIN_ENV

    @classmethod
    def create(cls, directory: str | os.PathLike, token: str = "trentd-test") -> "SoftHsmToken":
        directory = Path(directory)
        (directory / "tokens").mkdir(parents=True, exist_ok=True)
        self = cls(directory, token, pin=secrets.token_hex(8), so_pin=secrets.token_hex(8))
        self.conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n"
                             "log.level = ERROR\nslots.removable = false\n")
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", token, "--so-pin", self.so_pin,
                        "--pin", self.pin], check=True, capture_output=True, env=self.env())
        return self

    @property
    def conf(self) -> Path:
        return self.directory / "softhsm2.conf"

    @property
    def tokendir(self) -> Path:
        return self.directory / "tokens"

    def env(self, pin: str | None = None) -> dict[str, str]:
        """What a trentd process needs in its environment: SOFTHSM2_CONF and the PIN variable."""
        return {"SOFTHSM2_CONF": str(self.conf), self.pin_env: self.pin if pin is None else pin}

    def args(self) -> list[str]:
        return ["--pkcs11-module", self.module, "--pkcs11-token", self.token, "--pkcs11-pin-env", self.pin_env]
