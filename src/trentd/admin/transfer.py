"""``trentd keys transfer-key | export | import``: move keys between trentd instances.

A *bundle* is one JSON file holding keys with everything that belongs to them: the key rows
(metadata, state, key policy, deletion date), every key material with its history (rotations,
imported material), the rotation schedule, aliases and tags. Grants are not carried (they name
principals of the source). Key material is never in the bundle in clear.
The format and the trust model are described in docs/backup.md; in short:

* The payload (all rows, materials included) is encrypted once with AES-256-GCM under a random
  256-bit *bundle key*; the bundle's clear header (format, id, time, summary, recipients) is the
  AAD, so nothing in the file can be changed without the import failing.
* The bundle key is wrapped for one or more *recipients*:
  - ``x25519``: the target instance's transfer key (``trentd keys transfer-key`` prints its
    public half). ECDH with an ephemeral key, HKDF-SHA256, AES-256-GCM. The private half lives
    only in the target's store, wrapped under the target's root key, so only that instance (its
    store *and* its root key) can open the bundle;
  - ``scrypt``: a passphrase (scrypt N=2^17, r=8, p=1 → AES-256-GCM), for offline backups that
    must survive the loss of every instance.
* Import re-wraps every material under the importing instance's root key, with the usual AAD
  (account, key id, material id), so material ids and therefore old ciphertexts keep working.

Rows are copied column by column as the source's tables hold them; the target takes the columns
it knows, so bundles survive schema additions in either direction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..store.rootkey import aad_for
from .common import open_admin_runtime

FORMAT = "trentd-key-bundle"
VERSION = 1
TRANSFER_PRIVATE_META = "transfer_key_private"
TRANSFER_PUBLIC_META = "transfer_key_public"
_TRANSFER_AAD = aad_for("trentd transfer key")
_HKDF_INFO = b"trentd key bundle v1"
_SCRYPT = {"n": 2**17, "r": 8, "p": 1}
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
# Rows that belong to one key (account, region, key_id) and travel with it. Not grants (they name
# the source's principals) and not key_last_usage (the source's history).
PER_KEY_TABLES = ("aliases", "tags", "key_rotation", "material_versions")
# Rows shared by every Region of a key (account, key_id), carried once like the key material.
PER_ACCOUNT_KEY_TABLES = ("multi_region_keys",)


class TransferError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --- the instance's transfer key ---------------------------------------------------------------------

def transfer_key(store, root_key, create: bool = True) -> tuple[X25519PrivateKey, bytes] | None:
    """This instance's X25519 transfer key (private key, raw public key), made once and kept in the
    store with the private half wrapped under the root key; None if absent and not ``create``."""
    with store.write() as tx:
        tx.exclusive("transfer-key")
        wrapped = tx.get_meta(TRANSFER_PRIVATE_META)
        if wrapped is None:
            if not create:
                return None
            private = X25519PrivateKey.generate()
            raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
            tx.set_meta(TRANSFER_PRIVATE_META, _b64(root_key.wrap(raw, _TRANSFER_AAD)))
            tx.set_meta(TRANSFER_PUBLIC_META, _b64(private.public_key().public_bytes(*_RAW)))
            wrapped = tx.get_meta(TRANSFER_PRIVATE_META)
    private = X25519PrivateKey.from_private_bytes(root_key.unwrap(_unb64(wrapped), _TRANSFER_AAD))
    return private, private.public_key().public_bytes(*_RAW)


def public_pem(public_raw: bytes) -> str:
    return X25519PublicKey.from_public_bytes(public_raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(public_raw: bytes) -> str:
    return "SHA256:" + hashlib.sha256(public_raw).hexdigest()


def load_recipient(pem: bytes) -> bytes:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, X25519PublicKey):
        raise TransferError("a recipient must be an X25519 public key from `trentd keys transfer-key`")
    return key.public_bytes(*_RAW)


# --- wrapping the bundle key -------------------------------------------------------------------------

def _seal(kek: bytes, bundle_key: bytes, aad: bytes) -> dict:
    nonce = secrets.token_bytes(12)
    return {"nonce": _b64(nonce), "wrapped_key": _b64(AESGCM(kek).encrypt(nonce, bundle_key, aad))}


def _open(kek: bytes, entry: dict, aad: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return AESGCM(kek).decrypt(_unb64(entry["nonce"]), _unb64(entry["wrapped_key"]), aad)
    except InvalidTag:
        raise TransferError("the bundle key does not unwrap (wrong passphrase or transfer key)") from None


def _x25519_kek(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral_public + recipient_public, info=_HKDF_INFO).derive(shared)


def _for_public_key(recipient_public: bytes, bundle_key: bytes, bundle_id: str) -> dict:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(*_RAW)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    kek = _x25519_kek(shared, ephemeral_public, recipient_public)
    return {"type": "x25519", "recipient": _b64(recipient_public), "fingerprint": fingerprint(recipient_public),
            "ephemeral": _b64(ephemeral_public), **_seal(kek, bundle_key, aad_for("x25519", bundle_id))}


def _scrypt_kek(passphrase: bytes, salt: bytes, params: dict) -> bytes:
    return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(passphrase)


def _for_passphrase(passphrase: bytes, bundle_key: bytes, bundle_id: str) -> dict:
    salt = secrets.token_bytes(16)
    kek = _scrypt_kek(passphrase, salt, _SCRYPT)
    return {"type": "scrypt", "salt": _b64(salt), **_SCRYPT, **_seal(kek, bundle_key, aad_for("scrypt", bundle_id))}


# --- export ------------------------------------------------------------------------------------------

def _rows(tx, sql: str, params=()) -> list[dict]:
    cursor = tx.q(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _jsonable(row: dict) -> dict:
    out = {}
    for name, value in row.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            out[name] = {"base64": _b64(bytes(value))}
        else:
            out[name] = value
    return out


def _from_json(row: dict) -> dict:
    return {k: _unb64(v["base64"]) if isinstance(v, dict) and set(v) == {"base64"} else v for k, v in row.items()}


def export_bundle(service, *, recipients: Sequence[bytes] = (), passphrase: bytes | None = None,
                  account: str | None = None, region: str | None = None, key_ids: Sequence[str] = ()) -> dict:
    """A bundle of the selected keys (default: every key of every account and Region)."""
    if not recipients and not passphrase:
        raise TransferError("name at least one recipient (--recipient PEM) or a passphrase")
    where, params = ["1 = 1"], []
    for column, value in (("account", account), ("region", region)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    keys_out: list[dict[str, Any]] = []
    seen_materials: set[tuple[str, str]] = set()
    with service.store.read() as tx:
        tables = [t for t in PER_KEY_TABLES if _table_exists(tx, t)]
        rows = _rows(tx, f"SELECT * FROM keys WHERE {' AND '.join(where)} ORDER BY account, region, key_id", params)
        if key_ids:
            wanted = set(key_ids)
            rows = [r for r in rows if r["key_id"] in wanted]
            missing = wanted - {r["key_id"] for r in rows}
            if missing:
                raise TransferError(f"no such key: {', '.join(sorted(missing))}")
        external = [r for r in rows if r["origin"] == "EXTERNAL_KEY_STORE"]
        if external and key_ids:
            raise TransferError(f"key {external[0]['key_id']} is in an external key store: its material is not "
                                "trentd's to export")
        for row in rows:
            if row["origin"] == "EXTERNAL_KEY_STORE":
                continue  # its material lives in the external key store, not here
            scope = (row["account"], row["region"], row["key_id"])
            materials, shared = [], {}
            if (row["account"], row["key_id"]) not in seen_materials:  # shared by a multi-Region key's replicas
                seen_materials.add((row["account"], row["key_id"]))
                for m in _rows(tx, "SELECT * FROM key_materials WHERE account = ? AND key_id = ? ORDER BY created",
                               (row["account"], row["key_id"])):
                    wrapped = bytes(m.pop("wrapped"))
                    clear = service.root_key.unwrap(wrapped, aad_for(row["account"], row["key_id"], m["material_id"]))
                    materials.append({"row": _jsonable(m), "material": _b64(clear)})
                shared = {table: [_jsonable(r) for r in _rows(
                    tx, f"SELECT * FROM {table} WHERE account = ? AND key_id = ?", (row["account"], row["key_id"]))]
                    for table in PER_ACCOUNT_KEY_TABLES if _table_exists(tx, table)}
            keys_out.append({"key": _jsonable(row), "materials": materials, **shared, **{
                table: [_jsonable(r) for r in _rows(
                    tx, f"SELECT * FROM {table} WHERE account = ? AND region = ? AND key_id = ?", scope)]
                for table in tables}})
    bundle_id = str(uuid.uuid4())
    header: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "bundle_id": bundle_id, "created": time.time(),
        "summary": {"keys": [f"arn:aws:kms:{k['key']['region']}:{k['key']['account']}:key/{k['key']['key_id']}"
                             for k in keys_out],
                "not_exported": [f"arn:aws:kms:{r['region']}:{r['account']}:key/{r['key_id']}" for r in external],
                    "aliases": sum(len(k["aliases"]) for k in keys_out),
                    "key_materials": sum(len(k["materials"]) for k in keys_out)},
    }
    bundle_key = secrets.token_bytes(32)
    header["recipients"] = [_for_public_key(r, bundle_key, bundle_id) for r in recipients]
    if passphrase:
        header["recipients"].append(_for_passphrase(passphrase, bundle_key, bundle_id))
    nonce = secrets.token_bytes(12)
    payload = json.dumps({"keys": keys_out}, separators=(",", ":")).encode()
    ciphertext = AESGCM(bundle_key).encrypt(nonce, payload, _header_aad(header))
    return {**header, "payload": {"nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}}


def _header_aad(header: dict) -> bytes:
    """Everything but the payload, canonical JSON: tampering with any of it fails the import."""
    clear = {k: v for k, v in header.items() if k != "payload"}
    return json.dumps(clear, sort_keys=True, separators=(",", ":")).encode()


def digest(bundle_text: bytes) -> str:
    """What operators compare out of band: the SHA-256 of the bundle file as written."""
    return "SHA256:" + hashlib.sha256(bundle_text).hexdigest()


# --- import ------------------------------------------------------------------------------------------

def open_bundle(bundle: dict, *, transfer: tuple[X25519PrivateKey, bytes] | None = None,
                passphrase: bytes | None = None) -> dict:
    """The decrypted payload of a bundle."""
    if bundle.get("format") != FORMAT or bundle.get("version") != VERSION:
        raise TransferError(f"not a {FORMAT} version {VERSION} file")
    bundle_id, bundle_key = bundle["bundle_id"], None
    for entry in bundle.get("recipients", []):
        if entry["type"] == "x25519" and transfer is not None and _unb64(entry["recipient"]) == transfer[1]:
            ephemeral = _unb64(entry["ephemeral"])
            shared = transfer[0].exchange(X25519PublicKey.from_public_bytes(ephemeral))
            bundle_key = _open(_x25519_kek(shared, ephemeral, transfer[1]), entry, aad_for("x25519", bundle_id))
            break
        if entry["type"] == "scrypt" and passphrase:
            params = {k: int(entry[k]) for k in ("n", "r", "p")}
            if params["n"] > 2**20 or params["r"] > 32 or params["p"] > 16:
                raise TransferError("scrypt parameters out of range")
            kek = _scrypt_kek(passphrase, _unb64(entry["salt"]), params)
            bundle_key = _open(kek, entry, aad_for("scrypt", bundle_id))
            break
    if bundle_key is None:
        mine = fingerprint(transfer[1]) if transfer else "none"
        names = [e.get("fingerprint", e["type"]) for e in bundle.get("recipients", [])]
        raise TransferError(f"this bundle is not for this instance (its transfer key is {mine}; the bundle is for "
                            f"{', '.join(names) or 'nobody'}){'' if passphrase else '; or pass its passphrase'}")
    from cryptography.exceptions import InvalidTag

    try:
        payload = AESGCM(bundle_key).decrypt(_unb64(bundle["payload"]["nonce"]),
                                             _unb64(bundle["payload"]["ciphertext"]), _header_aad(bundle))
    except InvalidTag:
        raise TransferError("the bundle has been modified: its payload does not authenticate") from None
    return json.loads(payload)


def _table_exists(tx, table: str) -> bool:
    return tx.has_table(table)


def _columns(tx, table: str) -> set[str]:
    return {d[0] for d in tx.q(f"SELECT * FROM {table} WHERE 1 = 0").description}


def _insert(tx, table: str, row: dict, columns: set[str]) -> None:
    names = [n for n in row if n in columns]
    tx.q(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
         [row[n] for n in names])


def import_bundle(service, payload: dict) -> dict:
    """Write a bundle's keys; keys (and aliases) that already exist are left alone and reported."""
    report: dict[str, list] = {"ImportedKeys": [], "SkippedKeys": [], "ImportedAliases": [], "SkippedAliases": []}
    with service.store.write() as tx:
        columns = {t: _columns(tx, t) for t in ("keys", "key_materials", *PER_KEY_TABLES, *PER_ACCOUNT_KEY_TABLES)
                   if _table_exists(tx, t)}
        for item in payload["keys"]:
            key = _from_json(item["key"])
            account, region, key_id = key["account"], key["region"], key["key_id"]
            arn = f"arn:aws:kms:{region}:{account}:key/{key_id}"
            # Material (and what all Regions of a key share) first: a multi-Region key's other
            # Regions may be new here even when this one is not.
            for m in item["materials"]:
                row = _from_json(m["row"])
                if tx.get_material(account, key_id, row["material_id"]) is not None:
                    continue
                row["wrapped"] = service.root_key.wrap(_unb64(m["material"]),
                                                       aad_for(account, key_id, row["material_id"]))
                _insert(tx, "key_materials", row, columns["key_materials"])
            for table in PER_ACCOUNT_KEY_TABLES:
                rows = item.get(table, [])
                if table in columns and rows and not tx.one(
                        f"SELECT count(*) FROM {table} WHERE account = ? AND key_id = ?", (account, key_id))[0]:
                    for row in rows:
                        _insert(tx, table, _from_json(row), columns[table])
            if tx.get_key(account, region, key_id) is not None:
                report["SkippedKeys"].append({"KeyArn": arn, "Reason": "a key with this id already exists"})
            else:
                _insert(tx, "keys", key, columns["keys"])
                tx.count_key_change(account, region, +1)
                for table in PER_KEY_TABLES:
                    if table != "aliases" and table in columns:  # a table the target lacks is left out
                        for row in item.get(table, []):
                            _insert(tx, table, _from_json(row), columns[table])
                report["ImportedKeys"].append({"KeyArn": arn, "KeyMaterials": len(item["materials"])})
            # Also for a key that was there already: a repeated import reports its aliases as skipped.
            _import_aliases(tx, item, account, region, columns["aliases"], report)
    return report


def _import_aliases(tx, item: dict, account: str, region: str, columns, report: dict) -> None:
    for alias in map(_from_json, item.get("aliases", [])):
        alias_arn = f"arn:aws:kms:{region}:{account}:{alias['name']}"
        if tx.get_alias(account, region, alias["name"]) is not None:
            report["SkippedAliases"].append({"AliasArn": alias_arn, "Reason": "already exists"})
            continue
        _insert(tx, "aliases", alias, columns)
        report["ImportedAliases"].append({"AliasArn": alias_arn})


def read_passphrase(env_var: str | None, file: str | None) -> bytes | None:
    if env_var:
        text = os.environ.get(env_var)
        if not text:
            raise TransferError(f"the environment variable {env_var} is empty or unset")
        return text.encode()
    if file:
        with open(file, "rb") as f:
            value = f.read().rstrip(b"\r\n")
        if not value:
            raise TransferError(f"{file} is empty")
        return value
    return None


# --- command line ----------------------------------------------------------------------------------

def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("keys", help="export and import keys between trentd instances (docs/backup.md)")
    actions = parser.add_subparsers(dest="action", required=True)
    tk = actions.add_parser("transfer-key", help="this instance's public transfer key (made on first use)")
    tk.add_argument("--out", metavar="FILE", help="also write the public key PEM to FILE")
    export = actions.add_parser("export", help="write a bundle of keys, material encrypted for its recipients")
    export.add_argument("--out", required=True, metavar="FILE", help="the bundle file to write ('-': stdout)")
    export.add_argument("--recipient", action="append", default=[], metavar="PEM",
                        help="a target's transfer key (from `trentd keys transfer-key --out`); repeatable")
    export.add_argument("--account", help="only keys of this account")
    export.add_argument("--region", help="only keys of this Region")
    export.add_argument("--key-id", action="append", default=[], metavar="ID", help="only this key; repeatable")
    imp = actions.add_parser("import", help="import a bundle made for this instance (idempotent)")
    imp.add_argument("file", metavar="FILE")
    for sub in (export, imp):
        group = sub.add_mutually_exclusive_group()
        group.add_argument("--passphrase-env", metavar="VAR", help="read a passphrase from this environment variable")
        group.add_argument("--passphrase-file", metavar="FILE", help="read a passphrase from this file")
    for sub in actions.choices.values():
        data_dir_arg(sub)


def run(args) -> int:
    runtime = open_admin_runtime(args)
    out: dict[str, Any]
    try:
        if args.action == "transfer-key":
            made = transfer_key(runtime.store, runtime.root_key)
            assert made is not None  # made on first use
            _, public = made
            pem = public_pem(public)
            if args.out:
                Path(args.out).write_text(pem)
            out = {"PublicKeyPem": pem, "Fingerprint": fingerprint(public)}
        elif args.action == "export":
            recipients = [load_recipient(Path(p).read_bytes()) for p in args.recipient]
            bundle = export_bundle(runtime.service, recipients=recipients,
                                   passphrase=read_passphrase(args.passphrase_env, args.passphrase_file),
                                   account=args.account, region=args.region, key_ids=args.key_id)
            text = (json.dumps(bundle, indent=1) + "\n").encode()
            if args.out == "-":
                sys.stdout.buffer.write(text)
                sys.stdout.flush()
                print(json.dumps({"Digest": digest(text)}), file=sys.stderr)
                return 0
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(text)
            out = {"Bundle": args.out, "Digest": digest(text), "Keys": len(bundle["summary"]["keys"]),
                   "KeyMaterials": bundle["summary"]["key_materials"], "Aliases": bundle["summary"]["aliases"],
                   "Recipients": [r.get("fingerprint", r["type"]) for r in bundle["recipients"]]}
        else:
            text = Path(args.file).read_bytes()
            try:
                bundle = json.loads(text)
            except ValueError:
                raise TransferError(f"{args.file} is not a key bundle (not JSON)") from None
            passphrase = read_passphrase(args.passphrase_env, args.passphrase_file)
            mine = transfer_key(runtime.store, runtime.root_key, create=False)
            payload = open_bundle(bundle, transfer=mine, passphrase=passphrase)
            out = {"Digest": digest(text), **import_bundle(runtime.service, payload)}
    finally:
        runtime.store.close()
    print(json.dumps(out, indent=2))
    return 0
