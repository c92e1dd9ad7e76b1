"""AWS SDK for JavaScript v3 (``@aws-sdk/client-kms`` from npm, installed by scripts/test into
tests/clients/js from the committed lock file): a round trip from ``js/roundtrip.mjs``.

The JS SDK is strict where botocore is lenient: timestamps must be JSON numbers (an ISO string
fails to parse), and it signs ``content-length`` and ``x-amz-content-sha256``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .conftest import client_env, require

JS_DIR = Path(__file__).parent / "js"


def test_round_trip(server, home):
    node = require(shutil.which("node"), "node")
    require(JS_DIR / "node_modules" / "@aws-sdk" / "client-kms", "@aws-sdk/client-kms",
            "run scripts/test, or npm ci in tests/clients/js")
    result = subprocess.run([node, "roundtrip.mjs"], cwd=JS_DIR, env=client_env(server, home), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["createdIsDate"] and 2020 < out["createdYear"] < 2100, out
    assert out["aliasDatesAreDates"] and out["deletionIsDate"], out
    assert out["describedKeyId"] in out["keyArn"] and out["aliasNames"] == [f"alias/js-{out['describedKeyId'][:8]}"]
    assert out["decrypted"] == "hello from node \u00e9"
    assert out["decryptKeyId"] == out["keyArn"]
    assert (out["wrongContext"], out["wrongContextStatus"]) == ("InvalidCiphertextException", 400)
    assert out["dataKeyBytes"] == 32 and out["listed"]
    assert out["deletionDays"] == 7
