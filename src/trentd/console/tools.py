"""The tools page: try Encrypt, Decrypt, Sign and Verify on a key.

Text the person types is sent as UTF-8; ciphertexts and signatures travel base64, as on the wire.
Nothing secret comes back to the browser that the person did not type: Decrypt shows the
plaintext they encrypted, and no data key or key material is ever produced here.
"""

from __future__ import annotations

import base64
import binascii
import json

from ..crypto.specs import KEY_SPECS
from ..errors import AWSError
from .calls import describe, status_of
from .web import Form, Response

OPERATIONS = ("Encrypt", "Decrypt", "Sign", "Verify")
FIELDS = ("key_id", "text", "blob", "algorithm", "context", "signature")


def _algorithms(usage: str) -> list[str]:
    """Every algorithm of a usage over all key specs, from the key-spec table, in table order."""
    seen: dict[str, None] = {}
    for spec in KEY_SPECS.values():
        for name in spec.algorithms.get(usage, ()):
            seen[name] = None
    return list(seen)


def _context(operation: str = "Encrypt", values: dict | None = None, **extra) -> dict:
    context = dict(operation=operation, values={name: "" for name in FIELDS} | (values or {}), result=None,
                   error=None, field_errors={}, operations=OPERATIONS,
                   encryption_algorithms=_algorithms("ENCRYPT_DECRYPT"),
                   signing_algorithms=_algorithms("SIGN_VERIFY"))
    return context | extra


async def show(ctx) -> Response:
    operation = ctx.request.query["op"] if ctx.request.query["op"] in OPERATIONS else "Encrypt"
    values = {"key_id": ctx.request.query["key"]}
    return ctx.render("tools.html", **_context(operation, values))


class FieldError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _encryption_context(form: Form) -> dict | None:
    text = form["context"].strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise FieldError("context", 'The encryption context must be a JSON object of strings, '
                                    'such as {"purpose": "test"}.')
    return value


def _b64(form: Form, name: str, label: str) -> str:
    """A base64 field, checked here so that the message can name the field."""
    text = "".join(form[name].split())
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FieldError(name, f"The {label} must be base64.") from None
    if not text:
        raise FieldError(name, f"Enter the {label}.")
    return text


def _utf8_b64(form: Form, name: str) -> str:
    return base64.b64encode(form[name].encode("utf-8", "surrogateescape")).decode()


def _request(operation: str, form: Form) -> dict:
    key_id = form["key_id"].strip()
    algorithm = form["algorithm"].strip() or None
    if operation == "Encrypt":
        params = {"KeyId": key_id, "Plaintext": _utf8_b64(form, "text"), "EncryptionAlgorithm": algorithm,
                  "EncryptionContext": _encryption_context(form)}
    elif operation == "Decrypt":
        params = {"CiphertextBlob": _b64(form, "blob", "ciphertext"), "KeyId": key_id or None,
                  "EncryptionAlgorithm": algorithm, "EncryptionContext": _encryption_context(form)}
    elif operation == "Sign":
        params = {"KeyId": key_id, "Message": _utf8_b64(form, "text"), "MessageType": "RAW",
                  "SigningAlgorithm": algorithm}
    else:
        params = {"KeyId": key_id, "Message": _utf8_b64(form, "text"), "MessageType": "RAW",
                  "Signature": _b64(form, "signature", "signature"), "SigningAlgorithm": algorithm}
    return {k: v for k, v in params.items() if v is not None}


def _result(operation: str, out: dict) -> dict:
    """What the page shows of an answer: never more than the person typed or a public artefact."""
    if operation == "Encrypt":
        return {"label": "Ciphertext (base64)", "value": out["CiphertextBlob"], "key": out.get("KeyId")}
    if operation == "Decrypt":
        plaintext = base64.b64decode(out["Plaintext"])
        try:
            shown, label = plaintext.decode("utf-8"), "Plaintext"
        except UnicodeDecodeError:
            shown, label = out["Plaintext"], "Plaintext (base64: not UTF-8 text)"
        return {"label": label, "value": shown, "key": out.get("KeyId")}
    if operation == "Sign":
        return {"label": "Signature (base64)", "value": out["Signature"], "key": out.get("KeyId")}
    return {"label": "Signature", "value": "Valid: the signature matches the message.", "key": out.get("KeyId")}


async def run(ctx) -> Response:
    form = ctx.request.form
    operation = form["operation"] if form["operation"] in OPERATIONS else "Encrypt"
    values = {name: form[name] for name in FIELDS}
    try:
        params = _request(operation, form)
    except FieldError as exc:
        return ctx.render("tools.html", 400, **_context(operation, values, field_errors={exc.field: str(exc)}))
    try:
        out = await ctx.call(operation, params)
    except AWSError as err:
        if operation == "Verify" and err.code == "KMSInvalidSignatureException":
            result = {"label": "Signature", "value": "Not valid: the signature does not match the message.",
                      "key": None}
            return ctx.render("tools.html", **_context(operation, values) | {"result": result})
        return ctx.render("tools.html", status_of(err), **_context(operation, values) | {"error": describe(err)})
    return ctx.render("tools.html", **_context(operation, values) | {"result": _result(operation, out)})

