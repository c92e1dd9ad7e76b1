"""HTTPS: the server's TLS context, and the private CA of ``--tls-self-signed``.

AWS KMS requires TLS 1.2 and recommends 1.3 with forward secrecy; so does trentd: TLS 1.2 and
1.3 only, TLS 1.2 suites ECDHE with AES-GCM or ChaCha20-Poly1305 (every TLS 1.3 suite is
ECDHE already), no compression, no renegotiation. uvicorn builds its own ``SSLContext`` and has no
minimum-version option, so ``server_context`` is handed to it as ``ssl_context_factory``: a
module-level function, so that spawned workers (``--workers N``) build the same context.

A refused handshake (TLS 1.1, no common suite) must end with the TLS alert that says why. asyncio's
SSL transport drops it: on a handshake error it closes the socket without writing what OpenSSL
left in its outgoing buffer (CPython gh-98078, fixed in CPython's main branch in 2026, not in the
Python 3.11 trentd supports; uvloop has the same flaw). ``send_handshake_alerts`` makes the stdlib transport write the
alert first, and the server runs on the stdlib event loop when TLS is on (docs/operations.md).

SIGHUP reloads the certificate and key files without a restart and without touching open
connections (``reload_certificates``): a fresh context is built from the files, and the context the
listener was made with switches each *new* handshake to it from its server-name callback (which
OpenSSL calls for every ClientHello, with or without SNI). Loading the new files into the
listening context itself would not do: OpenSSL keeps one certificate per key type there, so an
RSA certificate replacing an ECDSA one would leave the old one served. Files that do not load
leave the previous certificate in use, with an error in the log.

``--tls-self-signed`` makes, once, an EC P-256 CA and a server certificate signed by it in
``DATA_DIR/tls`` (``ca.pem``, ``server.pem``, ``server-key.pem``) and reuses them on later starts.
The CA's private key is not kept: nothing can be signed with it after the server certificate, so
trusting ``ca.pem`` trusts this one certificate. When the certificate no longer fits (another
``--host``, or less than 30 days left) a new CA and certificate replace both, and clients must
trust the new ``ca.pem``.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import logging
import os
import signal
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("trentd.tls")

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity clients accept for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)
GRACEFUL_SHUTDOWN_SECONDS = 5  # a stop waits this long for requests in flight, then cancels them


def server_context_for(certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str] | None,
                       password: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    ctx.load_cert_chain(certfile, keyfile, password)
    return ctx


def server_context(config, default_factory=None) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: our context from the config's certificate and key."""
    send_handshake_alerts()
    context = server_context_for(config.ssl_certfile, config.ssl_keyfile, config.ssl_keyfile_password)
    _SERVED.append(_Served(context, config.ssl_certfile, config.ssl_keyfile, config.ssl_keyfile_password))
    return context


# --- SIGHUP: reload the certificate -------------------------------------------------------------
@dataclass(frozen=True)
class _Served:
    context: ssl.SSLContext  # the listener's context, made once by uvicorn
    certfile: str
    keyfile: str | None
    password: str | None


_SERVED: list[_Served] = []  # the TLS listeners of this process


def reload_on_sighup(loop) -> None:
    """Reload this process's certificates on SIGHUP, on the event loop that serves them. ``serve``
    blocked SIGHUP until now: a signal that came while this process started is delivered here,
    and reloads files that may have been read before they changed."""
    try:
        loop.add_signal_handler(signal.SIGHUP, reload_certificates)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (an app in a test)
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def reload_certificates() -> None:
    if not _SERVED:
        log.info("SIGHUP: no TLS listener in this process, nothing to reload")
    for served in _SERVED:
        try:
            fresh = server_context_for(served.certfile, served.keyfile, served.password)
        except (OSError, ValueError) as exc:
            log.error("TLS certificate NOT reloaded from %s: %s; still serving the previous one", served.certfile, exc)
            continue
        served.context.sni_callback = functools.partial(_use_context, fresh)
        log.info("TLS certificate reloaded from %s (%s): new connections get it, open ones go on",
                 served.certfile, describe_certificate(served.certfile))


def check_certificate(certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str] | None,
                      password: str | None = None) -> bool:
    """Whether the files load (the ``--workers`` supervisor asks before telling the workers)."""
    try:
        server_context_for(certfile, keyfile, password)
    except (OSError, ValueError) as exc:
        log.error("TLS certificate NOT reloaded from %s: %s; still serving the previous one", certfile, exc)
        return False
    return True


def _use_context(fresh: ssl.SSLContext, ssl_object, server_name, context) -> None:
    ssl_object.context = fresh  # this handshake goes on with the reloaded certificate


def describe_certificate(certfile: str) -> str:
    """Serial number and end of validity of the file's first certificate, for the log."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(certfile).read_bytes())
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"
    return f"serial {cert.serial_number:x}, valid until {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"


def send_handshake_alerts() -> None:
    """Make asyncio's SSL transport send the fatal alert of a failed handshake before closing."""
    from asyncio import sslproto

    cls = sslproto.SSLProtocol
    if getattr(cls, "_trentd_sends_alerts", False) or not hasattr(cls, "_process_outgoing"):
        return
    on_handshake_complete = cls._on_handshake_complete

    def _on_handshake_complete(self, handshake_exc):
        if handshake_exc is not None:
            try:
                self._process_outgoing()  # the alert OpenSSL wrote for the peer
            except Exception:  # noqa: BLE001 - closing anyway; the alert is best effort
                pass
        return on_handshake_complete(self, handshake_exc)

    # patching asyncio's class, once per process: typeshed does not know these private names
    cls._on_handshake_complete = _on_handshake_complete  # type: ignore[method-assign]
    cls._trentd_sends_alerts = True  # type: ignore[attr-defined]


# --- --tls-self-signed ------------------------------------------------------------------------
@dataclass(frozen=True)
class SelfSigned:
    ca: Path
    cert: Path
    key: Path


def names_for(host: str) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """Subject alternative names: localhost, 127.0.0.1, ::1 and the listen address (for a
    wildcard address, this machine's host name instead)."""
    dns, ips = ["localhost"], [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        host, address = socket.gethostname(), None
    if address is not None:
        if address not in ips:
            ips.append(address)
    elif host and host not in dns:
        dns.append(host)
    return dns, ips


def _fits(cert_path: Path, key_path: Path, ca_path: Path, host: str) -> bool:
    from cryptography import x509

    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    except (OSError, ValueError, TypeError):
        return False
    if key.public_key() != cert.public_key():  # a crash between writes
        return False
    if cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) < RENEW_BEFORE or cert.issuer != ca.subject:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    dns, ips = names_for(host)
    return set(dns) <= set(san.get_values_for_type(x509.DNSName)) and \
        set(ips) <= set(san.get_values_for_type(x509.IPAddress))


def ensure_self_signed(directory: Path, host: str) -> SelfSigned:
    """The private CA and server certificate in ``directory``, made if missing or unfit."""
    paths = SelfSigned(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    if not _fits(paths.cert, paths.key, paths.ca, host):
        _make(paths, host)
    return paths


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _make(paths: SelfSigned, host: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    paths.ca.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.ca.parent, 0o700)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trentd"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"trentd private CA {os.urandom(4).hex()}")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = names_for(host)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[-1] if len(dns) > 1 else "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns] + [x509.IPAddress(i) for i in ips]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Key first: a crash between writes leaves a pair that does not fit, and is made again.
    _write(paths.key, key_pem, 0o600)
    # The certificates are public, but every file of the data dir is 0600 (trentd/datadir.py).
    _write(paths.cert, cert.public_bytes(pem) + ca.public_bytes(pem), 0o600)
    _write(paths.ca, ca.public_bytes(pem), 0o600)
