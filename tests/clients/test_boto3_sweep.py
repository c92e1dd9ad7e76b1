"""boto3, model-driven: every operation in botocore's KMS model, against a real trentd.

For each operation trentd implements (``trentd.kms.api.OPERATIONS``):

* one call with valid input, built from the small per-operation table ``VALID`` below: it must
  succeed, and the *raw* JSON answer must match the model's output shape exactly (no unknown
  members, required members present, timestamps as JSON numbers, blobs as base64, enums in range).
  botocore's parser is lenient (it accepts ISO strings for timestamps), so the raw body is
  checked, not only what boto3 returns;
* invalid input, derived from the model: the first required member missing (sent with
  ``parameter_validation=False``, since botocore would refuse it client-side) and one value
  beyond its modelled bound (botocore never checks ``max``): each must be a 400
  ``ValidationException``, never a 5xx.

Every operation trentd does not implement must answer ``UnsupportedOperationException`` naming it.
An operation that becomes implemented without an entry in ``VALID`` fails here, on purpose.
"""

from __future__ import annotations

import base64
import json
import uuid

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from trentd.kms.api import OPERATIONS
from trentd.testing.xks_proxy import TestCA, XksTestProxy

from .conftest import boto3_client, start_server

MODEL = botocore.session.get_session().get_service_model("kms")
ALL_OPERATIONS = sorted(MODEL.operation_names)
IMPLEMENTED = [op for op in ALL_OPERATIONS if op in OPERATIONS]
UNIMPLEMENTED = [op for op in ALL_OPERATIONS if op not in OPERATIONS]


# --- the world the valid calls need ---------------------------------------------------------------

class World:
    """Keys and grants created on first use, once per server."""

    def __init__(self, kms, account: str, xks_proxy: XksTestProxy | None = None):
        self.kms = kms
        self.account = account
        self.xks_proxy = xks_proxy
        self._cache: dict[str, object] = {}

    def _once(self, name, make):
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    def key(self, **kwargs) -> str:
        return self.kms.create_key(Description="boto3 sweep", **kwargs)["KeyMetadata"]["KeyId"]

    @property
    def sym(self) -> str:
        return self._once("sym", self.key)

    @property
    def sign(self) -> str:
        return self._once("sign", lambda: self.key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"))

    @property
    def agree(self) -> str:
        return self._once("agree", lambda: self.key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT"))

    @property
    def hmac(self) -> str:
        return self._once("hmac", lambda: self.key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"))

    @property
    def kem(self) -> str:
        return self._once("kem", lambda: self.key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE"))

    @property
    def admin_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/admin"

    def grant(self) -> dict:
        return self.kms.create_grant(KeyId=self.sym, GranteePrincipal=self.admin_arn, RetiringPrincipal=self.admin_arn,
                                     Operations=["Decrypt"])

    def alias(self) -> str:
        name = f"alias/sweep-{uuid.uuid4().hex[:12]}"
        self.kms.create_alias(AliasName=name, TargetKeyId=self.sym)
        return name

    def blob(self) -> bytes:
        return self.kms.encrypt(KeyId=self.sym, Plaintext=b"sweep", EncryptionContext={"a": "b"})["CiphertextBlob"]

    def store_args(self) -> dict:
        """CreateCustomKeyStore input for a new external key store (a path prefix of its own)."""
        prefix = f"/sweep-{uuid.uuid4().hex[:8]}"
        self.xks_proxy.prefixes.add(prefix)
        return {"CustomKeyStoreName": f"sweep-{prefix[7:]}", "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
                "XksProxyUriEndpoint": self.xks_proxy.uri_endpoint, "XksProxyUriPath": f"{prefix}/kms/xks/v1",
                "XksProxyConnectivity": "PUBLIC_ENDPOINT",
                "XksProxyAuthenticationCredential": {"AccessKeyId": self.xks_proxy.access_key_id,
                                                     "RawSecretAccessKey": self.xks_proxy.secret}}

    def new_store(self) -> str:
        return self.kms.create_custom_key_store(**self.store_args())["CustomKeyStoreId"]

    def store(self, state: str | None = None) -> str:
        """The sweep's one long-lived store, CONNECTED or DISCONNECTED as asked (stores are limited
        to 10 per account and Region, so calls share it)."""
        store_id = self._once("store", self.new_store)
        current = self.kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
        if state == "CONNECTED" and current["ConnectionState"] != "CONNECTED":
            self.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        elif state == "DISCONNECTED" and current["ConnectionState"] != "DISCONNECTED":
            self.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        return store_id

    def replicated(self) -> str:
        key_id = _multi_region(self)
        self.kms.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1")
        return key_id

    def peer_public_key(self) -> bytes:
        peer = ec.generate_private_key(ec.SECP256R1())
        return peer.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)

    def external_key_parameters(self) -> dict:
        key_id = self.key(Origin="EXTERNAL")
        params = self.kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                                    WrappingKeySpec="RSA_2048")
        wrapping = serialization.load_der_public_key(params["PublicKey"])
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        return {"KeyId": key_id, "ImportToken": params["ImportToken"],
                "EncryptedKeyMaterial": wrapping.encrypt(bytes(32), oaep),
                "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}


def _scheduled(w: World) -> str:
    key_id = w.key()
    w.kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    return key_id


def _signed(w: World) -> dict:
    out = w.kms.sign(KeyId=w.sign, Message=b"sweep", SigningAlgorithm="ECDSA_SHA_256")
    return {"KeyId": w.sign, "Message": b"sweep", "Signature": out["Signature"], "SigningAlgorithm": "ECDSA_SHA_256"}


def _maced(w: World) -> dict:
    out = w.kms.generate_mac(KeyId=w.hmac, Message=b"sweep", MacAlgorithm="HMAC_SHA_256")
    return {"KeyId": w.hmac, "Message": b"sweep", "Mac": out["Mac"], "MacAlgorithm": "HMAC_SHA_256"}


def _decapsulate(w: World) -> dict:
    out = w.kms.encapsulate(KeyId=w.kem, EncapsulationAlgorithm="ML_KEM")
    return {"KeyId": w.kem, "SharedSecretCiphertextBlob": out["SharedSecretCiphertextBlob"],
            "EncapsulationAlgorithm": "ML_KEM"}


def _imported(w: World) -> dict:
    params = w.external_key_parameters()
    w.kms.import_key_material(**params)
    return {"KeyId": params["KeyId"]}


def _multi_region(w: World) -> str:
    return w.key(MultiRegion=True)


def _policy(account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}]})


# Valid input per operation: a function of the World. Custom key stores use the test XKS proxy.
VALID = {
    "ConnectCustomKeyStore": lambda w: {"CustomKeyStoreId": w.store("DISCONNECTED")},
    "CreateCustomKeyStore": lambda w: w.store_args(),
    "DeleteCustomKeyStore": lambda w: {"CustomKeyStoreId": w.new_store()},
    "DescribeCustomKeyStores": lambda w: {"CustomKeyStoreId": w.store()},
    "DisconnectCustomKeyStore": lambda w: {"CustomKeyStoreId": w.store("CONNECTED")},
    "UpdateCustomKeyStore": lambda w: {"CustomKeyStoreId": w.store(),
                                       "NewCustomKeyStoreName": f"sweep-{uuid.uuid4().hex[:8]}"},
    "CancelKeyDeletion": lambda w: {"KeyId": _scheduled(w)},
    "CreateAlias": lambda w: {"AliasName": f"alias/sweep-{uuid.uuid4().hex[:12]}", "TargetKeyId": w.sym},
    "CreateGrant": lambda w: {"KeyId": w.sym, "GranteePrincipal": w.admin_arn, "Operations": ["Encrypt", "Decrypt"],
                              "Constraints": {"EncryptionContextSubset": {"a": "b"}}, "Name": "sweep"},
    "CreateKey": lambda w: {"Description": "sweep", "Tags": [{"TagKey": "team", "TagValue": "sweep"}]},
    "Decapsulate": _decapsulate,
    "Decrypt": lambda w: {"CiphertextBlob": w.blob(), "EncryptionContext": {"a": "b"}},
    "DeleteAlias": lambda w: {"AliasName": w.alias()},
    "DeleteImportedKeyMaterial": _imported,
    "DeriveSharedSecret": lambda w: {"KeyId": w.agree, "KeyAgreementAlgorithm": "ECDH",
                                     "PublicKey": w.peer_public_key()},
    "DescribeKey": lambda w: {"KeyId": w.sym},
    "DisableKey": lambda w: {"KeyId": w.key()},
    "DisableKeyRotation": lambda w: {"KeyId": w.sym},
    "EnableKey": lambda w: {"KeyId": w.key()},
    "EnableKeyRotation": lambda w: {"KeyId": w.sym, "RotationPeriodInDays": 90},
    "Encapsulate": lambda w: {"KeyId": w.kem, "EncapsulationAlgorithm": "ML_KEM"},
    "Encrypt": lambda w: {"KeyId": w.sym, "Plaintext": b"sweep", "EncryptionContext": {"a": "b"}},
    "GenerateDataKey": lambda w: {"KeyId": w.sym, "NumberOfBytes": 32},
    "GenerateDataKeyPair": lambda w: {"KeyId": w.sym, "KeyPairSpec": "ECC_NIST_P256"},
    "GenerateDataKeyPairWithoutPlaintext": lambda w: {"KeyId": w.sym, "KeyPairSpec": "ECC_NIST_P256"},
    "GenerateDataKeyWithoutPlaintext": lambda w: {"KeyId": w.sym, "KeySpec": "AES_256"},
    "GenerateMac": lambda w: {"KeyId": w.hmac, "Message": b"sweep", "MacAlgorithm": "HMAC_SHA_256"},
    "GenerateRandom": lambda w: {"NumberOfBytes": 16},
    "GetKeyLastUsage": lambda w: {"KeyId": w.sym},
    "GetKeyPolicy": lambda w: {"KeyId": w.sym, "PolicyName": "default"},
    "GetKeyRotationStatus": lambda w: {"KeyId": w.sym},
    "GetParametersForImport": lambda w: {"KeyId": w.key(Origin="EXTERNAL"), "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                                         "WrappingKeySpec": "RSA_2048"},
    "GetPublicKey": lambda w: {"KeyId": w.sign},
    "ImportKeyMaterial": lambda w: w.external_key_parameters(),
    "ListAliases": lambda w: {"Limit": 10},
    "ListGrants": lambda w: {"KeyId": w.sym},
    "ListKeyPolicies": lambda w: {"KeyId": w.sym},
    "ListKeyRotations": lambda w: {"KeyId": w.sym},
    "ListKeys": lambda w: {"Limit": 10},
    "ListResourceTags": lambda w: {"KeyId": w.sym},
    "ListRetirableGrants": lambda w: {"RetiringPrincipal": w.admin_arn},
    "PutKeyPolicy": lambda w: {"KeyId": w.key(), "PolicyName": "default", "Policy": _policy(w.account)},
    "ReEncrypt": lambda w: {"CiphertextBlob": w.blob(), "SourceEncryptionContext": {"a": "b"},
                            "DestinationKeyId": w.sym},
    "ReplicateKey": lambda w: {"KeyId": _multi_region(w), "ReplicaRegion": "eu-west-1"},
    "RetireGrant": lambda w: {"GrantToken": w.grant()["GrantToken"]},
    "RevokeGrant": lambda w: {"KeyId": w.sym, "GrantId": w.grant()["GrantId"]},
    "RotateKeyOnDemand": lambda w: {"KeyId": w.key()},
    "ScheduleKeyDeletion": lambda w: {"KeyId": w.key(), "PendingWindowInDays": 7},
    "Sign": lambda w: {"KeyId": w.sign, "Message": b"sweep", "SigningAlgorithm": "ECDSA_SHA_256"},
    "TagResource": lambda w: {"KeyId": w.sym, "Tags": [{"TagKey": "env", "TagValue": "test"}]},
    "UntagResource": lambda w: {"KeyId": w.sym, "TagKeys": ["env"]},
    "UpdateAlias": lambda w: {"AliasName": w.alias(), "TargetKeyId": w.key()},
    "UpdateKeyDescription": lambda w: {"KeyId": w.sym, "Description": "updated by the sweep"},
    "UpdatePrimaryRegion": lambda w: {"KeyId": w.replicated(), "PrimaryRegion": "eu-west-1"},
    "Verify": _signed,
    "VerifyMac": _maced,
}


# --- raw output against the model ------------------------------------------------------------------

def check_output(shape, value, path: str = "$") -> list[str]:
    """Every difference between a raw JSON value and its output shape (empty: it matches)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        problems = [f"{path}.{name}: not in the model" for name in value if name not in shape.members]
        problems += [f"{path}.{name}: required but missing" for name in shape.required_members if name not in value]
        for name, member in shape.members.items():
            if name in value:
                problems += check_output(member, value[name], f"{path}.{name}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, item in enumerate(value) for p in check_output(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map"]
        return [p for k, v in value.items() for p in check_output(shape.value, v, f"{path}.{k}")]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {value!r}"]
        if shape.enum and value not in shape.enum:
            return [f"{path}: {value!r} is not one of the model's values"]
        return []
    if kind == "blob":
        try:
            base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            return [f"{path}: expected base64, got {value!r:.40}"]
        return []
    if kind in ("integer", "long"):
        return [] if type(value) is int else [f"{path}: expected an integer, got {value!r}"]
    if kind == "boolean":
        return [] if type(value) is bool else [f"{path}: expected a boolean, got {value!r}"]
    if kind == "timestamp":  # JSON 1.1: epoch seconds as a JSON number (the JS and Go SDKs insist)
        ok = type(value) in (int, float)
        return [] if ok else [f"{path}: expected epoch seconds as a JSON number, got {value!r}"]
    if kind in ("double", "float"):
        return [] if type(value) in (int, float) else [f"{path}: expected a number, got {value!r}"]
    return [f"{path}: unexpected shape type {kind}"]


# --- invalid input from the model ------------------------------------------------------------------

def beyond_bound(op_name: str, params: dict) -> tuple[str, object] | None:
    """One member of ``params`` set beyond its modelled bound: (member, value), or None."""
    shape = MODEL.operation_model(op_name).input_shape
    if shape is None:
        return None
    for name, member in shape.members.items():
        meta = member.metadata
        if member.type_name == "string" and "max" in meta and meta["max"] < 200_000:
            return name, "a" * (meta["max"] + 1)
        if member.type_name == "blob" and "max" in meta:
            return name, b"\0" * (meta["max"] + 1)
        if member.type_name in ("integer", "long") and "max" in meta:
            return name, meta["max"] + 1
        if member.type_name == "string" and member.enum:
            return name, "NOT_A_MODELLED_VALUE"
    return None


def placeholder(op_name: str) -> dict:
    """Minimal input with every required member present (values need not make sense)."""
    shape = MODEL.operation_model(op_name).input_shape
    out = {}
    for name in (shape.required_members if shape else []):
        member = shape.members[name]
        kind = member.type_name
        if kind == "string":
            out[name] = member.enum[0] if member.enum else "x" * max(1, member.metadata.get("min", 1))
        elif kind == "blob":
            out[name] = b"x"
        elif kind == "list":
            out[name] = []
        elif kind in ("integer", "long"):
            out[name] = member.metadata.get("min", 1)
        else:
            out[name] = {}
    return out


# --- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xks_proxy(tmp_path_factory):
    ca = TestCA(tmp_path_factory.mktemp("xks-ca"))
    with XksTestProxy(ca, "xks.sweep.test") as proxy:
        yield proxy


@pytest.fixture(scope="module")
def server(xks_proxy):
    srv = start_server(extra_args=("--xks-resolve", xks_proxy.resolve_arg, "--xks-ca-bundle", str(xks_proxy.ca.path)))
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def raw_bodies(server):
    """boto3 client whose raw response bodies are kept (the last one in ``bodies[-1]``)."""
    kms = boto3_client(server)
    bodies: list[bytes] = []
    kms.meta.events.register("after-call.kms", lambda http_response, **_: bodies.append(http_response.content))
    return kms, bodies


@pytest.fixture(scope="module")
def world(server, xks_proxy):
    return World(boto3_client(server), server.account, xks_proxy)


@pytest.fixture(scope="module")
def lax(server):
    """No client-side validation: the server's own checks are under test."""
    return boto3_client(server, parameter_validation=False)


def _call(client, op_name: str, params: dict):
    return getattr(client, botocore.xform_name(op_name))(**params)


def _expect_validation_error(client, op_name: str, params: dict, what: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        _call(client, op_name, params)
    response = excinfo.value.response
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    assert status < 500, f"{op_name} with {what}: HTTP {status} {response['Error']}"
    assert (response["Error"]["Code"], status) == ("ValidationException", 400), f"{op_name} with {what}: {response['Error']}"


# --- tests ------------------------------------------------------------------------------------------

def test_model_is_the_one_trentd_is_built_for():
    assert len(ALL_OPERATIONS) == 56
    assert set(OPERATIONS) <= set(ALL_OPERATIONS), set(OPERATIONS) - set(ALL_OPERATIONS)


@pytest.mark.parametrize("op_name", IMPLEMENTED)
def test_valid_call_succeeds_and_answer_matches_the_model(op_name, world, raw_bodies):
    if op_name not in VALID:
        pytest.fail(f"{op_name} is implemented but the sweep has no valid input for it: add it to VALID")
    kms, bodies = raw_bodies
    params = VALID[op_name](world)
    bodies.clear()
    parsed = _call(kms, op_name, params)
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 200
    raw = bodies[-1]
    output_shape = MODEL.operation_model(op_name).output_shape
    if output_shape is None:
        assert raw in (b"", b"{}"), f"{op_name} has no output in the model but answered {raw[:200]!r}"
        return
    problems = check_output(output_shape, json.loads(raw))
    assert not problems, f"{op_name} answer differs from the model:\n" + "\n".join(problems)


@pytest.mark.parametrize("op_name", IMPLEMENTED)
def test_invalid_input_is_a_validation_error(op_name, world, lax):
    params = VALID[op_name](world) if op_name in VALID else placeholder(op_name)
    shape = MODEL.operation_model(op_name).input_shape
    tried = 0
    if shape is not None and shape.required_members:
        missing = shape.required_members[0]
        _expect_validation_error(lax, op_name, {k: v for k, v in params.items() if k != missing},
                                 f"required member {missing} missing")
        tried += 1
    bound = beyond_bound(op_name, params)
    if bound is not None:
        name, value = bound
        _expect_validation_error(lax, op_name, {**params, name: value}, f"{name} beyond its bound")
        tried += 1
    assert tried, f"the model gives no way to make {op_name}'s input invalid"


@pytest.mark.parametrize("op_name", UNIMPLEMENTED)
def test_unimplemented_operation_says_so(op_name, lax):
    with pytest.raises(ClientError) as excinfo:
        _call(lax, op_name, placeholder(op_name))
    error = excinfo.value.response["Error"]
    assert error["Code"] == "UnsupportedOperationException", error
    assert op_name in error["Message"], error
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_https_with_the_servers_own_ca():
    """boto3 over HTTPS: trusting trentd's CA works; without it the handshake is refused."""
    from botocore.exceptions import SSLError

    srv = start_server("https")
    try:
        kms = boto3_client(srv)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"over tls")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over tls"
        # verify=True: the default trust store (or this machine's AWS_CA_BUNDLE), without trentd's CA.
        untrusting = boto3.client("kms", endpoint_url=srv.url, region_name=srv.region, verify=True,
                                  aws_access_key_id="x", aws_secret_access_key="y")
        with pytest.raises(SSLError):
            untrusting.list_keys()
    finally:
        srv.cleanup()

