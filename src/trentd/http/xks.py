"""The XKS proxy listener (``trentd serve --xks-proxy-port``): its own HTTPS listener, bound by the
parent process and served by every worker (http/listeners.py), on the worker's event loop beside
the API. What it serves is xksproxy/ (the XKS Proxy API v1); this module is the edge.

- **TLS 1.2+** with the API's settings (http/tls.py); the certificate of ``--xks-proxy-tls-cert/
  --xks-proxy-tls-key``, else the API's, else the self-signed CA's (chosen by ``trentd serve``).
- **Mutual TLS** with ``--xks-proxy-client-ca`` and ``--xks-proxy-client-cn``: a client without a
  certificate, or whose certificate does not chain to the CA, fails the handshake; one whose
  subject common name is not listed is disconnected as soon as the handshake completes, before
  any byte of a request is read (Python's ssl module offers no hook inside the handshake).
- ``GET /healthz``: 200, unauthenticated, for load balancers. GET (or any method but POST) on one
  of the four API URIs: 405, as the spec requires.
- The certificate files are read when the server starts (SIGHUP reloads the API's certificate,
  not this listener's: restart to change it).
- More than ``--limit-concurrency`` requests in progress on a worker's listener: ThrottlingException
  (429), as the spec words "unable to keep up".
- A store or root-key outage is DependencyTimeoutException (503, retryable); anything unexpected
  InternalException (500), logged.
- Every POST is audited (xksproxy/events.py) before it is answered (fail-closed, as the API) and
  counted in the metrics under service ``kms-xks-proxy``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid

import orjson
from uvicorn import Config
from uvicorn.server import ServerState

from .. import metrics
from ..audit import AuditUnavailable
from ..pipeline.asgi import BodyTimeout, BodyTooLarge, read_body, respond
from ..store.errors import StoreUnavailable
from ..store.rootkey import RootKeyUnavailable
from ..xksproxy import events
from ..xksproxy.api import Call, XksProxy, route
from ..xksproxy.errors import XksError
from .limits import GuardedHttpToolsProtocol
from .tls import GRACEFUL_SHUTDOWN_SECONDS, send_handshake_alerts, server_context_for

log = logging.getLogger("trentd.xks")
LISTENER = "xks-proxy"  # its name in http/listeners.py
JSON = b"application/json"


def tls_context(cert: str, key: str | None, client_ca: str | None) -> ssl.SSLContext:
    context = server_context_for(cert, key)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


def peer_common_names(transport) -> list[str]:
    ssl_object = transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    return [value for rdn in (cert or {}).get("subject", ()) for name, value in rdn if name == "commonName"]


class XksProtocol(GuardedHttpToolsProtocol):
    """The API's HTTP protocol (limits and deadlines), refusing clients whose certificate names
    no allowed subject when mutual TLS is on (``allowed_names``, set per listener)."""

    allowed_names: frozenset[str] = frozenset()

    def connection_made(self, transport) -> None:
        if self.allowed_names and not set(peer_common_names(transport)) & self.allowed_names:
            log.warning("XKS proxy: refused a client certificate naming %s", peer_common_names(transport) or "nobody")
            transport.abort()
            return
        super().connection_made(transport)


class XksApp:
    """The ASGI app of the listener; ``owner`` is the worker's TrentApp (runtime, pool, audit)."""

    def __init__(self, owner):
        runtime = owner.runtime
        settings = runtime.settings
        self.settings = settings
        self.executor = owner.executor
        self.audit = owner.audit
        provider = getattr(runtime.root_key, "name", "file")
        # Requests in progress on this worker's listener, at most --limit-concurrency: beyond it the
        # spec's ThrottlingException (429) rather than uvicorn's plain-text 503, which AWS KMS would
        # take for a malformed answer.
        self.limit = settings.limit_concurrency
        self.in_flight = 0
        self.proxy = XksProxy(runtime.store, runtime.root_key, fleet_size=settings.workers,
                              max_skew_seconds=settings.max_clock_skew,
                              root_key_model=f"trentd root key ({provider} provider)", version=metrics.version())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz" and method == "GET":
            return await respond(send, 200, b'{"status":"ok"}', JSON)
        if method != "POST":
            if route(path) is not None:
                return await _answer(send, 405, b"", [(b"allow", b"POST")])
            return await respond(send, 404, XksError("InvalidUriPathException", "Not Found").body(), JSON)
        self.in_flight += 1
        try:
            await self._post(scope, receive, send, throttled=self.limit is not None and self.in_flight > self.limit)
        finally:
            self.in_flight -= 1

    async def _post(self, scope, receive, send, throttled: bool):
        received = time.time()
        loop = asyncio.get_running_loop()
        call = Call(request_id=str(uuid.uuid4()), path=scope.get("raw_path", b"").decode("latin-1") or scope["path"])
        headers = [(k, v) for k, v in scope["headers"]]
        error: XksError | None = None
        close = False
        try:
            if throttled:
                raise XksError("ThrottlingException", "The proxy has too many requests in progress; retry later.")
            body = await read_body(scope, receive, self.settings.body_timeout, loop)
            answer = await loop.run_in_executor(self.executor, self.proxy.handle, call, headers, body)
            status, payload = 200, orjson.dumps(answer)
        except XksError as err:
            error = err
        except (BodyTooLarge, BodyTimeout) as err:
            close = True
            error = (XksError("UnsupportedOperationException", err.message or "") if isinstance(err, BodyTooLarge)
                     else XksError("ValidationException", err.message or ""))
        except (StoreUnavailable, RootKeyUnavailable) as exc:  # an outage: retryable, one line, no traceback
            log.warning("XKS proxy request %s: %s", call.request_id, exc)
            error = XksError("DependencyTimeoutException", "The proxy's store or root key did not answer in time; "
                                                           "retry the request.")
        except Exception:  # noqa: BLE001 - a bug, or a root key that cannot unwrap: logged, answered 500
            log.exception("XKS proxy request %s failed", call.request_id)
            error = XksError("InternalException", "The proxy could not complete the request.")
        if error is not None:
            status, payload = error.status, error.body()
        try:
            await self._record(call, received, error, scope)
        except AuditUnavailable:
            error = XksError("InternalException", "The request could not be audited.")
            status, payload = error.status, error.body()
        if metrics.ACTIVE is not None:
            metrics.ACTIVE.request(events.SOURCE, call.operation or "Unknown", error.name if error else "ok",
                                   time.time() - received)
        extra = [(b"x-amzn-requestid", call.request_id.encode())] + ([(b"connection", b"close")] if close else [])
        await _answer(send, status, payload, extra)

    async def _record(self, call: Call, received: float, error: XksError | None, scope) -> None:
        user_agent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"user-agent"), None)
        event = events.build_event(call, received=received, error=error, client=(scope.get("client") or (None,))[0],
                                   user_agent=user_agent, default_region=self.settings.region)
        try:
            await self.audit.sink.record(event)
        except AuditUnavailable:
            if not self.audit.fail_open:
                raise


async def _answer(send, status: int, body: bytes, extra: list) -> None:
    headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class XksListener:
    """Serves an XksApp on a listening socket with the listener's TLS context."""

    def __init__(self, owner, sock):
        settings = owner.settings
        self.sock = sock
        send_handshake_alerts()  # a refused client learns why (http/tls.py)
        self.context = tls_context(settings.xks_proxy_tls_cert, settings.xks_proxy_tls_key,
                                   settings.xks_proxy_client_ca)
        protocol = type("XksListenerProtocol", (XksProtocol,),
                        {"allowed_names": frozenset(settings.xks_proxy_client_cn or ())})
        self.config = Config(XksApp(owner), http=protocol, lifespan="off", log_config=None, access_log=False,
                             server_header=False, proxy_headers=False, timeout_keep_alive=settings.keep_alive_timeout,
                             limit_concurrency=None)  # XksApp answers the limit in the spec's words
        self.config.load()
        self.state = ServerState()
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config, state = self.config, self.state

        def protocol():
            return config.http_protocol_class(config=config, server_state=state, app_state={}, _loop=loop)

        self.server = await loop.create_server(protocol, sock=self.sock, ssl=self.context, backlog=config.backlog)

    async def stop(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for connection in list(self.state.connections):
            connection.shutdown()
        deadline = time.monotonic() + GRACEFUL_SHUTDOWN_SECONDS
        while self.state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.server = None
