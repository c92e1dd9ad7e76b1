"""Key rotation over HTTP: Enable/DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
ListKeyRotations, and automatic rotation when the (moved) service clock passes NextRotationDate.

Every old ciphertext must keep decrypting after a rotation and report the material it was sealed
under; new ciphertext uses the new material (kms-api.md §3.8, Traps 11)."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from trentd.testing.postgres import require_postgres
from trentd.testing.server import TrentdServer

from ..helpers import error_of, fails, new_account, server_now

DAY = 86_400
HEX64 = re.compile(r"[0-9a-f]{64}")
LIMIT_MESSAGE = ("The on-demand rotations limit has been reached for the given keyId. "
                 "No more on-demand rotations can be performed for this key: {arn}")


def meta(kms, key_id: str) -> dict:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]


def rotations(kms, key_id: str, **kwargs) -> list[dict]:
    return kms.list_key_rotations(KeyId=key_id, **kwargs)["Rotations"]




# --- status, enable, disable ----------------------------------------------------------------
def test_status_enable_disable(kms, key_id, trentd_server):
    arn = meta(kms, key_id)["Arn"]
    status = kms.get_key_rotation_status(KeyId=key_id)
    status.pop("ResponseMetadata")
    assert status == {"KeyRotationEnabled": False, "KeyId": arn}

    before = server_now(trentd_server)
    kms.enable_key_rotation(KeyId=key_id)
    status = kms.get_key_rotation_status(KeyId=arn)
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    assert abs(status["NextRotationDate"].timestamp() - (before + 365 * DAY)) < 10
    assert "OnDemandRotationStartDate" not in status  # on-demand rotation is synchronous

    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)  # a new period keeps the start
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["RotationPeriodInDays"] == 90
    assert abs(status["NextRotationDate"].timestamp() - (before + 90 * DAY)) < 10
    kms.enable_key_rotation(KeyId=key_id)  # already enabled, no period: unchanged
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == 90

    kms.disable_key_rotation(KeyId=key_id)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False
    assert "RotationPeriodInDays" not in status and "NextRotationDate" not in status
    assert fails(kms.get_key_rotation_status, KeyId="alias/nope") == (
        "InvalidArnException", "Key Aliases are not supported for this operation.")


@pytest.mark.parametrize("period, phrase", [(89, "greater than or equal to 90"), (2561, "less than or equal to 2560")])
def test_rotation_period_is_validated(raw_kms, key_id, period, phrase):
    assert fails(raw_kms.enable_key_rotation, KeyId=key_id, RotationPeriodInDays=period) == (
        "ValidationException",
        f"1 validation error detected: Value '{period}' at 'rotationPeriodInDays' failed to satisfy constraint: "
        f"Member must have value {phrase}")
    assert raw_kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


@pytest.mark.parametrize("period", [90, 2560])
def test_rotation_period_bounds_are_accepted(kms, key_id, period):
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=period)
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == period


@pytest.mark.parametrize("spec, usage", [("HMAC_256", "GENERATE_VERIFY_MAC"), ("ECC_NIST_P256", "SIGN_VERIFY")])
def test_only_symmetric_keys_rotate(kms, spec, usage):
    key = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
    for call, kwargs in [(kms.enable_key_rotation, {}), (kms.disable_key_rotation, {}),
                         (kms.get_key_rotation_status, {}), (kms.rotate_key_on_demand, {}),
                         (kms.list_key_rotations, {})]:
        assert fails(call, KeyId=key, **kwargs) == ("UnsupportedOperationException", ""), call


def test_external_keys_have_no_automatic_rotation(kms):
    key = meta(kms, kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"])
    message = f"{key['Arn']} origin is EXTERNAL which is not valid for this operation."
    for call in (kms.enable_key_rotation, kms.disable_key_rotation, kms.get_key_rotation_status):
        assert fails(call, KeyId=key["KeyId"]) == ("UnsupportedOperationException", message)
    assert fails(kms.rotate_key_on_demand, KeyId=key["KeyId"]) == (
        "KMSInvalidStateException", f"{key['Arn']} is pending import.")


def test_disabled_and_pending_deletion_keys(kms, key_id):
    arn = meta(kms, key_id)["Arn"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=100)
    kms.disable_key(KeyId=key_id)
    disabled = ("DisabledException", f"{arn} is disabled.")
    assert fails(kms.enable_key_rotation, KeyId=key_id) == disabled
    assert fails(kms.disable_key_rotation, KeyId=key_id) == disabled
    assert fails(kms.rotate_key_on_demand, KeyId=key_id) == disabled
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True  # status unchanged

    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    pending = ("KMSInvalidStateException", f"{arn} is pending deletion.")
    assert fails(kms.enable_key_rotation, KeyId=key_id) == pending
    assert fails(kms.rotate_key_on_demand, KeyId=key_id) == pending
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False and "NextRotationDate" not in status
    kms.cancel_key_deletion(KeyId=key_id)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 100)


# --- on demand ------------------------------------------------------------------------------
def test_on_demand_rotation_keeps_old_ciphertext_and_has_a_limit(kms, key_id):
    arn = meta(kms, key_id)["Arn"]
    blobs = {}  # material id -> ciphertext sealed under it
    for _ in range(11):
        current = meta(kms, key_id)["CurrentKeyMaterialId"]
        data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        assert data_key["KeyMaterialId"] == current
        blobs[current] = (kms.encrypt(KeyId=key_id, Plaintext=current.encode())["CiphertextBlob"], data_key)
        if len(blobs) <= 10:
            assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == arn
            assert meta(kms, key_id)["CurrentKeyMaterialId"] != current
    assert len(blobs) == 11 and all(HEX64.fullmatch(m) for m in blobs)
    assert fails(kms.rotate_key_on_demand, KeyId=key_id) == ("LimitExceededException", LIMIT_MESSAGE.format(arn=arn))

    for material_id, (blob, data_key) in blobs.items():
        out = kms.decrypt(CiphertextBlob=blob)
        assert (out["Plaintext"], out["KeyMaterialId"]) == (material_id.encode(), material_id)
        out = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])
        assert (out["Plaintext"], out["KeyMaterialId"]) == (data_key["Plaintext"], material_id)

    first = list(blobs)[0]
    reencrypted = kms.re_encrypt(CiphertextBlob=blobs[first][0], DestinationKeyId=key_id)
    assert reencrypted["SourceKeyMaterialId"] == first
    assert reencrypted["DestinationKeyMaterialId"] == list(blobs)[-1]

    done = rotations(kms, key_id)
    assert [r["KeyMaterialId"] for r in done] == list(blobs)[1:]
    assert {r["RotationType"] for r in done} == {"ON_DEMAND"}
    assert [r["KeyMaterialState"] for r in done] == ["NON_CURRENT"] * 9 + ["CURRENT"]
    everything = rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [r["KeyMaterialId"] for r in everything] == list(blobs)
    assert everything[0] == {"KeyId": key_id, "KeyMaterialId": first, "KeyMaterialState": "NON_CURRENT"}


def test_list_key_rotations_pages_and_fields(kms, key_id, trentd_server):
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []
    start = server_now(trentd_server)
    for _ in range(5):
        kms.rotate_key_on_demand(KeyId=key_id)
    seen, marker, pages = [], None, 0
    while True:
        page = kms.list_key_rotations(KeyId=key_id, Limit=2, **({"Marker": marker} if marker else {}))
        pages += 1
        seen += page["Rotations"]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert pages == 3 and len(seen) == 5
    for entry in seen:
        assert set(entry) == {"KeyId", "KeyMaterialId", "KeyMaterialState", "RotationDate", "RotationType"}
        assert entry["KeyId"] == key_id and entry["RotationType"] == "ON_DEMAND"
        assert start - 5 <= entry["RotationDate"].timestamp() <= server_now(trentd_server) + 5
    assert [e["RotationDate"] for e in seen] == sorted(e["RotationDate"] for e in seen)
    assert seen[-1]["KeyMaterialId"] == meta(kms, key_id)["CurrentKeyMaterialId"]
    everything = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL", Limit=1000)
    assert len(everything["Rotations"]) == 6 and everything["Truncated"] is False
    assert fails(kms.list_key_rotations, KeyId=key_id, Marker="!!!") == ("InvalidMarkerException", "Invalid marker")
    assert fails(kms.list_key_rotations, KeyId=key_id, Marker="YWJj") == ("InvalidMarkerException", "Invalid marker")


# --- automatic rotation (moved clock) -------------------------------------------------------
def test_automatic_rotation_when_the_date_passes(clock_server, clock_kms):
    kms = clock_kms
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    first = meta(kms, key_id)["CurrentKeyMaterialId"]
    old_blob = kms.encrypt(KeyId=key_id, Plaintext=b"sealed before", EncryptionContext={"a": "b"})["CiphertextBlob"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    next_date = kms.get_key_rotation_status(KeyId=key_id)["NextRotationDate"].timestamp()

    clock_server.move_clock(advance_seconds=90 * DAY - 3600)
    assert meta(kms, key_id)["CurrentKeyMaterialId"] == first
    assert rotations(kms, key_id) == []

    clock_server.move_clock(advance_seconds=2 * 3600)
    rotated_at = server_now(clock_server)
    second = meta(kms, key_id)["CurrentKeyMaterialId"]
    assert second != first and HEX64.fullmatch(second)
    [entry] = rotations(kms, key_id)
    assert (entry["KeyMaterialId"], entry["RotationType"], entry["KeyMaterialState"]) == (second, "AUTOMATIC", "CURRENT")
    assert next_date <= entry["RotationDate"].timestamp() <= rotated_at + 1
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert abs(status["NextRotationDate"].timestamp() - (entry["RotationDate"].timestamp() + 90 * DAY)) < 2

    out = kms.decrypt(CiphertextBlob=old_blob, EncryptionContext={"a": "b"})
    assert (out["Plaintext"], out["KeyMaterialId"]) == (b"sealed before", first)
    new_blob = kms.encrypt(KeyId=key_id, Plaintext=b"sealed after")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=new_blob)["KeyMaterialId"] == second
    assert kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=8)["KeyMaterialId"] == second

    # Jumping several periods at once rotates once, then a full period later again.
    clock_server.move_clock(advance_seconds=400 * DAY)
    assert len(rotations(kms, key_id)) == 2
    clock_server.move_clock(advance_seconds=1)
    assert len(rotations(kms, key_id)) == 2
    out = kms.decrypt(CiphertextBlob=old_blob, EncryptionContext={"a": "b"})
    assert out["KeyMaterialId"] == first


def test_disabled_key_rotates_when_enabled_again(clock_server, clock_kms):
    kms = clock_kms
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    kms.disable_key(KeyId=key_id)
    clock_server.move_clock(advance_seconds=200 * DAY)
    assert rotations(kms, key_id) == []
    kms.enable_key(KeyId=key_id)
    now = server_now(clock_server)  # the next job run rotates the overdue key at once
    [entry] = rotations(kms, key_id)
    assert entry["RotationType"] == "AUTOMATIC"
    next_date = kms.get_key_rotation_status(KeyId=key_id)["NextRotationDate"].timestamp()
    assert now + 90 * DAY - 5 <= next_date <= now + 90 * DAY + 5


def test_pending_deletion_key_does_not_rotate(clock_server, clock_kms):
    kms = clock_kms
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    clock_server.move_clock(advance_seconds=80 * DAY)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=30)
    clock_server.move_clock(advance_seconds=15 * DAY)  # past NextRotationDate, inside the window
    assert rotations(kms, key_id) == []
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.cancel_key_deletion(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    server_now(clock_server)
    assert rotations(kms, key_id) == []  # Disabled after the cancel: still waiting
    kms.enable_key(KeyId=key_id)
    server_now(clock_server)
    assert [r["RotationType"] for r in rotations(kms, key_id)] == ["AUTOMATIC"]


def test_on_demand_rotation_conflicts_with_imminent_automatic_one(clock_server, clock_kms):
    kms = clock_kms
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    clock_server.move_clock(advance_seconds=90 * DAY - 600)
    code, message = fails(kms.rotate_key_on_demand, KeyId=key_id)
    assert code == "ConflictException" and "20 minutes" in message
    clock_server.move_clock(advance_seconds=1200)  # the automatic rotation happened
    kms.rotate_key_on_demand(KeyId=key_id)
    assert [r["RotationType"] for r in rotations(kms, key_id)] == ["AUTOMATIC", "ON_DEMAND"]


def test_rotation_survives_a_restart(clock_server, clock_kms):
    kms = clock_kms
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=key_id)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    before = (kms.get_key_rotation_status(KeyId=key_id), rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL"))
    clock_server.restart()
    after = (kms.get_key_rotation_status(KeyId=key_id), rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL"))
    for status in (before[0], after[0]):
        status.pop("ResponseMetadata")
    assert after == before
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


# --- several nodes / workers: each due key rotates exactly once -----------------------------
def _cluster(layout: str) -> list[TrentdServer]:
    if layout == "workers-sqlite":
        return [TrentdServer(workers=2)]
    require_postgres()
    first = TrentdServer(store="postgres")
    return [first, TrentdServer(database=first.database, root_key_file=first.root_key_file)]


@pytest.mark.parametrize("layout", ["two-nodes-postgres", "workers-sqlite"])
def test_automatic_rotation_runs_once_per_key_across_nodes(layout):
    nodes = _cluster(layout)
    try:
        for node in nodes:  # one after the other: the first start makes the schema
            node.start()
        account = new_account()
        kms = nodes[0].client(access_key=account, secret_key="x")
        keys = []
        for i in range(20):
            key_id = kms.create_key()["KeyMetadata"]["KeyId"]
            kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
            keys.append((key_id, kms.encrypt(KeyId=key_id, Plaintext=b"old")["CiphertextBlob"]))
        offset = nodes[0].move_clock(advance_seconds=0)["offset_seconds"] + 91 * DAY
        # Every node and worker runs the job by itself each second; moving the clock through
        # every endpoint several times at once makes them run it at the same moment too.
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda node: node.move_clock(offset_seconds=offset), nodes * 2))
        time.sleep(2.5)  # and let each worker's own once-a-second run pass as well
        other = nodes[-1].client(access_key=account, secret_key="x")
        for key_id, blob in keys:
            done = rotations(other, key_id)
            assert [r["RotationType"] for r in done] == ["AUTOMATIC"], (key_id, done)
            assert other.decrypt(CiphertextBlob=blob)["Plaintext"] == b"old"
            assert meta(other, key_id)["CurrentKeyMaterialId"] == done[0]["KeyMaterialId"]
        for node in nodes:
            assert "Traceback" not in node.logs(), node.logs()[-3000:]
    finally:
        for node in reversed(nodes):
            node.cleanup()


@pytest.mark.parametrize("spec", ["SYMMETRIC_DEFAULT", "RSA_2048"])
def test_rotate_on_demand_checks_the_key_state_first(kms, spec):
    """A disabled key is DisabledException, even when its spec could not rotate at all."""
    meta = kms.create_key(KeySpec=spec, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    kms.disable_key(KeyId=meta["KeyId"])
    with pytest.raises(kms.exceptions.DisabledException) as excinfo:
        kms.rotate_key_on_demand(KeyId=meta["KeyId"])
    assert error_of(excinfo) == ("DisabledException", f"{meta['Arn']} is disabled.")
