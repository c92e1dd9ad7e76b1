"""``trentd seed import FILE``: load a local-kms seed file as it is.

local-kms (the Go emulator) seeds keys from YAML. Three layouts exist and all are read:

* the documented one::

    Keys:
      Symmetric:
        Aes:  [{Metadata: {KeyId, Description, Origin}, BackingKeys: [hex, …], NextKeyRotation}]
        Hmac: [{Metadata: {KeyId, KeySpec: HMAC_256, …}, BackingKeys: [hex, …]}]
      Asymmetric:
        Rsa:  [{Metadata: {KeyId, KeyUsage, Description}, PrivateKeyPem: "-----BEGIN PRIVATE KEY-----…"}]
        Ecc:  [{Metadata: {KeyId, KeyUsage}, PrivateKeyPem: … | PrivateKeyHex: … (secp256k1)}]
    Aliases: [{AliasName: alias/x, TargetKeyId: <key id or key ARN>}]

* the legacy one, ``Keys: [<Aes key>, …]``;
* the newer ``Version: 2`` one, ``Keys: [{KeyId, Metadata: {KeySpec, KeyUsage, Description},
  Material: {BackingKeys | PrivateKeyPem}}]``.

Every key keeps its key id; its backing keys become key materials, wrapped under the root key
like any other (several backing keys = a rotated key: all decrypt, the last is current; for
HMAC keys only the first is kept, since local-kms computes MACs with it). ``NextKeyRotation``
turns automatic rotation on, next due at that date. Key specs of
asymmetric keys are read from the PEM. The file carries no account or Region: they come from
``--account``/``--region``, else from key ARNs in the file, else trentd's defaults.

Import is idempotent, as local-kms seeding is: a key or alias that already exists is left as it
is and reported as skipped. The whole file is checked before anything is written; one bad entry
fails the import with every problem listed, and nothing is written.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..crypto import specs
from ..keydomain.materials import AUTOMATIC
from ..keydomain.policy import default_policy
from ..kms.rotation import DEFAULT_PERIOD_DAYS
from ..store.records import AliasRecord, KeyRecord, MaterialVersion, RotationRecord
from .common import open_admin_runtime

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/(?P<key_id>.+)")
_ALIAS_NAME = re.compile(r"alias/[a-zA-Z0-9:/_-]{1,250}")
_CURVES = {"secp256r1": "ECC_NIST_P256", "secp384r1": "ECC_NIST_P384", "secp521r1": "ECC_NIST_P521",
           "secp256k1": "ECC_SECG_P256K1"}
_DER, _PKCS8, _NONE = serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()


class SeedError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the seed file cannot be imported:\n  " + "\n  ".join(problems))


@dataclass
class SeedKey:
    key_id: str
    key_spec: str
    key_usage: str
    description: str = ""
    origin: str = "AWS_KMS"
    materials: list[bytes] = field(default_factory=list)  # oldest first
    current: int = -1  # index of the current material
    next_rotation: str | None = None
    account: str | None = None  # from a key ARN in the file, if any
    region: str | None = None


@dataclass
class SeedAlias:
    name: str
    target: str  # a key id
    account: str | None = None
    region: str | None = None


@dataclass
class Seed:
    keys: list[SeedKey]
    aliases: list[SeedAlias]
    layout: str
    problems: list[str] = field(default_factory=list)  # what the file alone shows to be wrong


# --- reading ---------------------------------------------------------------------------------------

def _text_loader():
    """YAML's safe loader, but numbers stay the text they were written as: a key id or backing
    key that looks like a number (``0xdeadbeef``, ``1e10``, all digits) must not become one."""
    import yaml

    class TextNumbers(yaml.SafeLoader):
        pass

    numeric = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
    TextNumbers.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in numeric]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return TextNumbers


def parse(text: str) -> Seed:
    """Parse and check a seed file; raises SeedError listing every problem the file alone shows
    (``import_seed`` adds what needs the store: aliases whose key is nowhere)."""
    seed = read(text)
    if seed.problems:
        raise SeedError(seed.problems)
    return seed


def read(text: str) -> Seed:
    """Parse a seed file; its problems are collected in ``Seed.problems``, not raised (a file
    that is not even a mapping of keys raises SeedError at once)."""
    import yaml

    try:
        doc = yaml.load(text, Loader=_text_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SeedError([f"not YAML: {exc}"]) from None
    if not isinstance(doc, dict):
        raise SeedError(["expected a mapping with Keys and Aliases at the top"])
    problems: list[str] = []
    keys: list[SeedKey] = []
    raw_keys = doc.get("Keys") or {}
    if doc.get("Version") == 2 or isinstance(raw_keys, list) and any(
            isinstance(k, dict) and "Material" in k for k in raw_keys):
        layout = "local-kms v2"
        for i, entry in enumerate(_as_list(raw_keys, "Keys", problems)):
            keys += _key(_v2_entry(entry), "v2", f"Keys[{i}]", problems)
    elif isinstance(raw_keys, list):
        layout = "local-kms legacy"
        for i, entry in enumerate(raw_keys):
            keys += _key(entry, "Aes", f"Keys[{i}]", problems)
    elif isinstance(raw_keys, dict):
        layout = "local-kms"
        for group, kinds in (("Symmetric", ("Aes", "Hmac")), ("Asymmetric", ("Rsa", "Ecc"))):
            section = raw_keys.get(group) or {}
            if not isinstance(section, dict):
                problems.append(f"Keys.{group}: expected a mapping")
                continue
            for kind in kinds:
                for i, entry in enumerate(_as_list(section.get(kind) or [], f"Keys.{group}.{kind}", problems)):
                    keys += _key(entry, kind, f"Keys.{group}.{kind}[{i}]", problems)
    else:
        raise SeedError(["Keys: expected a mapping (Symmetric/Asymmetric) or a list"])

    seen: set[str] = set()
    for key in keys:
        if key.key_id in seen:
            problems.append(f"key {key.key_id} appears twice")
        seen.add(key.key_id)

    aliases = []
    for i, entry in enumerate(_as_list(doc.get("Aliases") or [], "Aliases", problems)):
        where = f"Aliases[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping with AliasName and TargetKeyId")
            continue
        name, target = str(entry.get("AliasName") or ""), str(entry.get("TargetKeyId") or "")
        if name and not name.startswith("alias/"):
            name = "alias/" + name  # local-kms v2 adds the prefix itself
        if not _ALIAS_NAME.fullmatch(name) or name.startswith("alias/aws/"):
            problems.append(f"{where}: {name!r} is not a valid alias name for a customer key")
            continue
        alias = SeedAlias(name, target)
        match = _KEY_ARN.fullmatch(target)
        if match:
            alias.target, alias.account, alias.region = match["key_id"], match["account"], match["region"]
        if not _UUID.fullmatch(alias.target):
            problems.append(f"{where}: TargetKeyId {target!r} must be a key id or key ARN")
            continue
        aliases.append(alias)
    return Seed(keys, aliases, layout, problems)


def _as_list(value, where: str, problems: list[str]) -> list:
    if isinstance(value, list):
        return value
    problems.append(f"{where}: expected a list")
    return []


def _v2_entry(entry) -> dict:
    """A v2 entry in the v1 shape: KeyId into Metadata, Material's fields beside it."""
    if not isinstance(entry, dict):
        return entry
    metadata = dict(entry.get("Metadata") or {})
    metadata.setdefault("KeyId", entry.get("KeyId"))
    return {"Metadata": metadata, "NextKeyRotation": entry.get("NextKeyRotation"), **(entry.get("Material") or {})}


def _key(entry, kind: str, where: str, problems: list[str]) -> list[SeedKey]:
    before = len(problems)
    if not isinstance(entry, dict) or not isinstance(entry.get("Metadata"), dict):
        problems.append(f"{where}: expected a mapping with Metadata")
        return []
    meta = entry["Metadata"]
    raw_id = str(meta.get("KeyId") or "")
    key = SeedKey(key_id=raw_id, key_spec="", key_usage="", description=str(meta.get("Description") or ""),
                  origin=str(meta.get("Origin") or "AWS_KMS"))
    match = _KEY_ARN.fullmatch(raw_id)
    if match:
        key.key_id, key.account, key.region = match["key_id"], match["account"], match["region"]
    where = f"{where} ({raw_id or 'no KeyId'})"
    if not _UUID.fullmatch(key.key_id):
        problems.append(f"{where}: KeyId must be a key id like 1234abcd-12ab-34cd-56ef-1234567890ab "
                        "(trentd resolves keys by UUID)")
    if key.origin not in ("AWS_KMS", "EXTERNAL"):
        problems.append(f"{where}: Origin {key.origin} cannot be seeded")
    rotation = entry.get("NextKeyRotation")
    if rotation:
        key.next_rotation = rotation.isoformat() if isinstance(rotation, datetime) else str(rotation)

    if kind == "v2":
        spec_name = str(meta.get("KeySpec") or "SYMMETRIC_DEFAULT")
        if spec_name.startswith("HMAC_"):
            kind = "Hmac"
        elif spec_name == "SYMMETRIC_DEFAULT":
            kind = "Aes"
        else:
            kind = "Pem"
    if kind in ("Aes", "Hmac"):
        spec_name = "SYMMETRIC_DEFAULT" if kind == "Aes" else str(meta.get("KeySpec") or "HMAC_256")
        spec = specs.KEY_SPECS.get(spec_name)
        if spec is None or spec.family not in ("symmetric", "hmac"):
            problems.append(f"{where}: KeySpec {spec_name} is not a symmetric or HMAC key spec")
            return []
        key.key_spec, key.key_usage = spec.name, next(iter(spec.algorithms))
        backing = entry.get("BackingKeys") or []
        if not isinstance(backing, list):
            problems.append(f"{where}: BackingKeys must be a list of hex strings")
            backing = []
        size = spec.details["key_bytes"]
        for j, text in enumerate(backing):
            try:
                material = bytes.fromhex(str(text))
            except ValueError:
                problems.append(f"{where}: BackingKeys[{j}] is not hex")
                continue
            if len(material) != size:
                problems.append(f"{where}: BackingKeys[{j}] must be {size} bytes, not {len(material)}")
            key.materials.append(material)
        if not backing and key.origin != "EXTERNAL":
            problems.append(f"{where}: at least one backing key is required")
        if key.origin == "EXTERNAL" and len(backing) > 1:
            problems.append(f"{where}: an EXTERNAL key takes at most one backing key")
        key.current = 0 if kind == "Hmac" else len(key.materials) - 1
    else:
        private = _private_key(entry, where, problems)
        if private is not None:
            key.key_spec = _spec_of(private, where, problems)
            key.materials = [private.private_bytes(_DER, _PKCS8, _NONE)]
            key.current = 0
        usage = str(meta.get("KeyUsage") or "")
        spec = specs.KEY_SPECS.get(key.key_spec)
        if spec is not None:
            if not usage and spec.family in ("ecc", "ed25519"):
                usage = specs.SIGN_VERIFY  # local-kms's only usage for EC keys
            if usage not in spec.algorithms:
                problems.append(f"{where}: KeyUsage {usage or '(none)'} is not valid for {spec.name} "
                                f"(one of {', '.join(spec.algorithms)})")
        key.key_usage = usage
    if key.key_spec and not specs.KEY_SPECS[key.key_spec].supported:
        problems.append(f"{where}: KeySpec {key.key_spec} is not supported by trentd")
    return [key] if len(problems) == before else []


def _private_key(entry: dict, where: str, problems: list[str]):
    pem, hex_scalar = entry.get("PrivateKeyPem"), entry.get("PrivateKeyHex")
    try:
        if pem:
            return serialization.load_pem_private_key(str(pem).encode(), password=None)
        if hex_scalar:  # local-kms: a raw secp256k1 scalar (Ethereum-style keys)
            return ec.derive_private_key(int(str(hex_scalar).removeprefix("0x"), 16), ec.SECP256K1())
    except (ValueError, TypeError) as exc:
        problems.append(f"{where}: the private key does not load: {exc}")
        return None
    problems.append(f"{where}: PrivateKeyPem (or PrivateKeyHex) is required")
    return None


def _spec_of(private, where: str, problems: list[str]) -> str:
    if isinstance(private, rsa.RSAPrivateKey):
        name = f"RSA_{private.key_size}"
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        name = _CURVES.get(private.curve.name, f"curve {private.curve.name}")
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        name = "ECC_NIST_EDWARDS25519"
    else:
        name = type(private).__name__
    if name not in specs.KEY_SPECS:
        problems.append(f"{where}: {name} is not a KMS key spec")
        return ""
    return name


# --- writing ---------------------------------------------------------------------------------------

def scope_of(seed: Seed, account: str | None, region: str | None, default_account: str,
             default_region: str) -> tuple[str, str]:
    """Account and Region: the flags, else the one named by ARNs in the file, else the defaults."""
    entries: list[SeedKey | SeedAlias] = [*seed.keys, *seed.aliases]
    named_accounts = {x.account for x in entries if x.account}
    named_regions = {x.region for x in entries if x.region}
    problems = []
    if account is None and len(named_accounts) > 1:
        problems.append(f"key ARNs name several accounts ({', '.join(sorted(named_accounts))}): pass --account")
    if region is None and len(named_regions) > 1:
        problems.append(f"key ARNs name several Regions ({', '.join(sorted(named_regions))}): pass --region")
    if problems:
        raise SeedError(problems)
    account = account or next(iter(named_accounts), default_account)
    region = region or next(iter(named_regions), default_region)
    if not re.fullmatch(r"\d{12}", account):
        raise SeedError([f"account {account!r} is not 12 digits"])
    return account, region


def import_seed(service, seed: Seed, account: str, region: str) -> dict:
    """Write the seed's keys and aliases (one transaction); returns a JSON-able report."""
    report: dict = {"Account": account, "Region": region, "Layout": seed.layout, "ImportedKeys": [],
                    "SkippedKeys": [], "ImportedAliases": [], "SkippedAliases": [], "Warnings": []}
    now = service.clock.now()
    with service.store.write() as tx:
        in_file = {key.key_id for key in seed.keys}
        problems = seed.problems + [
            f"alias {alias.name}: target key {alias.target} is neither in the file nor in account {account}, "
            f"Region {region}" for alias in seed.aliases
            if alias.target not in in_file and tx.get_key(account, region, alias.target) is None
            and tx.get_alias(account, region, alias.name) is None]
        if problems:  # every problem at once, and nothing written
            raise SeedError(problems)
        for key in seed.keys:
            record = KeyRecord(
                account=account, region=region, key_id=key.key_id, created=now, description=key.description,
                key_spec=key.key_spec, key_usage=key.key_usage, origin=key.origin,
                key_state="Enabled" if key.materials else "PendingImport", deletion_date=None, multi_region=False,
                policy=default_policy(account), current_material=None)
            if tx.get_key(account, region, key.key_id) is not None:
                report["SkippedKeys"].append({"KeyArn": record.arn, "Reason": "a key with this id already exists"})
                continue
            materials = key.materials
            if key.key_spec.startswith("HMAC_") and len(materials) > 1:
                # local-kms makes MACs with the first backing key only; trentd keeps one HMAC material.
                report["Warnings"].append(f"{record.arn}: only the first of {len(materials)} backing keys imported "
                                          "(the one local-kms computes MACs with)")
                materials = materials[:1]
            material_ids = [service.new_material(tx, account, key.key_id, m) for m in materials]
            if material_ids:
                record.current_material = material_ids[key.current if len(materials) == len(key.materials) else 0]
            tx.insert_key(record)
            _record_history(tx, record, material_ids, now)
            if key.next_rotation:
                _schedule_rotation(tx, record, key.next_rotation, report)
            report["ImportedKeys"].append({"KeyArn": record.arn, "KeySpec": key.key_spec, "KeyUsage": key.key_usage,
                                           "KeyMaterials": len(material_ids), "KeyState": record.key_state})
        for alias in seed.aliases:
            arn = f"arn:aws:kms:{region}:{account}:{alias.name}"
            existing = tx.get_alias(account, region, alias.name)
            if existing is not None:
                same = existing.key_id == alias.target
                report["SkippedAliases"].append({"AliasArn": arn, "Reason": "already exists" + (
                    "" if same else f" and points at {existing.key_id}, not {alias.target}")})
                continue
            tx.insert_alias(AliasRecord(account, region, alias.name, alias.target, now, now))
            report["ImportedAliases"].append({"AliasArn": arn, "TargetKeyId": alias.target})
    return report


def _record_history(tx, record: KeyRecord, material_ids: list[str], now: float) -> None:
    """One material version per backing key, oldest first: the first is the key's original
    material, each later one a rotation (local-kms's way of saying the key was rotated)."""
    external = record.origin == "EXTERNAL"
    for seq, material_id in enumerate(material_ids):
        tx.insert_material_version(MaterialVersion(
            record.account, record.region, record.key_id, material_id, seq, pending=False, present=True,
            rotation_date=now if seq else None, rotation_type=AUTOMATIC if seq else None,
            expiration_model="KEY_MATERIAL_DOES_NOT_EXPIRE" if external else None, valid_to=None, description=None,
            created=now))


def _schedule_rotation(tx, record: KeyRecord, when: str, report: dict) -> None:
    """NextKeyRotation: automatic rotation on, next rotation at that date (a past date rotates the
    key at the first background run, as local-kms rotates it at first use)."""

    if record.origin != "AWS_KMS" or record.key_spec != "SYMMETRIC_DEFAULT":
        report["Warnings"].append(f"{record.arn}: NextKeyRotation ignored (only AWS_KMS symmetric keys rotate)")
        return
    try:
        next_rotation = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    except ValueError:
        report["Warnings"].append(f"{record.arn}: NextKeyRotation {when!r} is not an ISO 8601 date; rotation left off")
        return
    tx.put_rotation(RotationRecord(record.account, record.region, record.key_id, enabled=True,
                                   period_days=DEFAULT_PERIOD_DAYS, next_rotation=next_rotation, on_demand_count=0))


# --- command line ----------------------------------------------------------------------------------

def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("seed", help="import keys and aliases from a local-kms seed file")
    actions = parser.add_subparsers(dest="action", required=True)
    imp = actions.add_parser("import", help="import a local-kms seed YAML file (idempotent)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--account", default=None,
                     help="account of the keys (default: from key ARNs in the file, else TRENTD_ACCOUNT or "
                          "000000000000)")
    imp.add_argument("--region", default=None,
                     help="Region of the keys (default: from key ARNs in the file, else TRENTD_REGION or us-east-1)")
    data_dir_arg(imp)


def run(args) -> int:
    try:
        seed = read(Path(args.file).read_text())
        account, region = scope_of(seed, args.account, args.region, os.environ.get("TRENTD_ACCOUNT", "000000000000"),
                                   os.environ.get("TRENTD_REGION", "us-east-1"))
        runtime = open_admin_runtime(args)
        try:
            report = import_seed(runtime.service, seed, account, region)
        finally:
            runtime.store.close()
    except SeedError as exc:
        print(f"trentd: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0
