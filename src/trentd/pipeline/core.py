"""The request pipeline: every API request's steps, once, for every service (services.py).

``serve`` answers a request to the API route: read the body (asgi.py: size cap, deadline) →
parse SigV4, which names the service → authenticate → the operation the codec finds in the
request → its row → parse and validate the request from the model → the ``Invocation`` → run
the handler (``run``: on the event loop or the thread pool, one retry with fresh reads: kms/api.py)
→ serialize → ``finish``: the audit record (fail-closed), the metrics and access log, the answer.
Every failure becomes an AWS-shaped answer in the service's codec (``as_aws_error``).

``call`` is the same run for a caller already authenticated (the console's session), and
``control`` serves trentd's own signed requests (the test clock): both share the error mapping
and the audit record; ``record_event`` records an action that is no API call (the console's
sign-in). The ``Exchange`` the audit event, metrics and access log are built from is written
here only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson

from .. import metrics
from ..audit import AuditLog, AuditUnavailable, Exchange
from ..audit.events import event_id
from ..auth import sigv4
from ..auth.authenticator import Authenticator
from ..auth.identity import Caller
from ..auth.invocation import Invocation
from ..errors import AWSError, internal
from ..inline import MustOffload, on_event_loop
from ..kms import api
from ..protocol import query
from ..protocol.codec import Codec
from ..protocol.model import Operation
from ..store.errors import StoreUnavailable
from ..store.rootkey import RootKeyError, RootKeyUnavailable
from .asgi import CLOSE_AFTER, read_body, respond
from .services import SERVICES, UNSCOPED, UNSCOPED_FORM, ApiService, Row

log = logging.getLogger("trentd.http")

AUDIT_UNAVAILABLE = "An internal error occurred: the request could not be recorded in the audit log."
CONTROL_TYPE = b"application/json"


def as_aws_error(exc: Exception, request_id: str) -> AWSError:
    """What a failure is answered with: an AWSError as raised, a store or root key outage as
    AWS words a dependency's, anything else an internal error (logged, never shown)."""
    if isinstance(exc, AWSError):
        return exc
    if isinstance(exc, StoreUnavailable):
        log.warning("store unavailable: %s", exc)
        return AWSError("DependencyTimeoutException", "The database did not answer in time.")
    if isinstance(exc, RootKeyUnavailable):  # an HSM gone: retryable, and never a fallback key
        log.error("root key unavailable: %s", exc)
        return AWSError("KMSInternalException", "The root key is unavailable; retry the request.")
    if isinstance(exc, RootKeyError):
        log.error("root key failure: %s", exc)
    else:
        log.exception("unexpected error in request %s", request_id)
    return internal()


@dataclass(frozen=True)
class Control:
    """One of trentd's own signed operations (the test clock's MoveClock and GetClock): signed
    for service ``kms`` on a path of its own, audited with event source ``trentd``."""

    name: str
    read: Callable[[bytes], dict | None]  # the body -> the request (the audit event shows it)
    run: Callable[[Caller, dict | None], Awaitable[dict]]  # authorizes, acts, returns the result
    answer: Callable[[dict], bytes]  # the result -> the answer's JSON body


class Pipeline:
    def __init__(self, runtime, executor, authenticator: Authenticator, audit: AuditLog, *,
                 labels=None, access=None, services: dict[str, ApiService] = SERVICES):
        self.settings = runtime.settings
        self.service = runtime.service  # what handlers receive as ``svc``
        self.executor = executor
        self.authenticator = authenticator
        self.audit = audit
        self.labels = labels  # http/observe.py RequestLabels, when metrics are on
        self.access = access  # http/access.py AccessLog, when --access-log
        self.services = services

    # --- the API route ----------------------------------------------------------------------
    async def serve(self, scope, receive, send, loop: asyncio.AbstractEventLoop) -> None:
        request_id = event_id()  # a version 4 UUID without uuid4()'s syscall per request
        headers = sigv4.normalize_headers(scope["headers"])
        service: ApiService | None = None  # until the credential scope names it
        exchange = Exchange(request_id, time.time(), scope, headers, service=UNSCOPED.name,
                            default_region=self.settings.region)
        close, err = False, None
        try:
            body = exchange.body = await read_body(scope, receive, self.settings.body_timeout, loop)
            # The skew check reads the real wall clock, never the service's test clock.
            cred = exchange.cred = sigv4.parse(headers, max_skew_seconds=self.settings.max_clock_skew)
            service = self.services.get(cred.service, UNSCOPED)
            exchange.service = service.name
            caller = exchange.caller = await self.authenticate(scope, headers, body, cred, request_id, loop)
            name, located = service.codec.locate(headers, body)
            operation, result = await self._operate(service, caller, name, located, exchange, loop)
            out = operation.serialize(result, request_id)
            status = 200
        except ConnectionError:
            return
        except Exception as exc:  # every failure becomes an AWS-shaped answer, never a traceback
            if service is None:  # no scope (yet): a form-encoded body is a Query caller expecting XML
                service = UNSCOPED_FORM if query.is_form(headers) else UNSCOPED
                exchange.service = service.name
            err = exchange.error = as_aws_error(exc, request_id)
            close = isinstance(err, CLOSE_AFTER)
            status, out, _ = service.codec.error(err, request_id)
            exchange.error_code = service.codec.error_code(err.code)  # as the caller sees it
        await self.finish(exchange, send, status, out, service.codec.content_type, service.codec, err, close, loop)

    async def authenticate(self, scope, headers, body: bytes, cred, request_id: str, loop) -> Caller:
        """The caller the request's signature proves; on the pool when the credentials must be
        looked up in the store, else right here (a cached secret: a few µs)."""
        client = scope.get("client")
        authenticate = lambda: self.authenticator.authenticate(  # noqa: E731
            cred, method=scope["method"], path=scope.get("raw_path") or scope["path"].encode(),
            query=scope.get("query_string", b""), headers=headers, body=body, request_id=request_id,
            source_ip=client[0] if client else None, user_agent=headers.get("user-agent"),
            secure=scope.get("scheme") == "https")
        if self.authenticator.needs_lookup(cred):
            return await loop.run_in_executor(self.executor, authenticate)
        return authenticate()

    # --- the operation -----------------------------------------------------------------------
    async def _operate(self, service: ApiService, caller: Caller, name: str, located: Any, exchange: Exchange,
                       loop) -> tuple[Operation, dict]:
        """The operation ``name`` of ``service`` run as ``caller``; ``located``: what the codec
        decoded to find the name (the request's body or fields)."""
        operation = service.model.operation(name)
        if operation is None:
            raise service.codec.unknown_operation(name, located)
        exchange.operation = name
        row = service.operations.get(name)
        if row is None:
            raise service.unsupported(name)
        exchange.audit = row.audit
        request = exchange.request = operation.read(located)
        call = exchange.invocation = Invocation(caller, name, request, service=service.name)
        exchange.result = result = await self.run(row, call, request, loop)
        return operation, result

    async def run(self, row: Row, call: Invocation, request: dict, loop):
        """Run a handler once (api.run: plus one retry with fresh reads when cached state may
        have misled it): a cryptographic call on the event loop while it needs no blocking work
        (a cached key, symmetric crypto: a few µs, less than the hop to a thread costs), else on
        the thread pool (trentd/inline.py). A run that met blocking work is abandoned before any
        effect and continues on the pool: that is no second run of a completed one."""
        if row.inline:
            try:
                with on_event_loop():
                    return api.run(row.handler, row.cached, self.service, call, request)
            except api.RetryFresh:  # the first run failed on cached state: only the retry is left
                return await loop.run_in_executor(self.executor, api.retry_fresh, row.handler, self.service,
                                                  call, request)
            except MustOffload:
                call.resources.clear()  # the run on the pool records the keys it touches again
        return await loop.run_in_executor(self.executor, api.run, row.handler, row.cached, self.service, call,
                                          request)

    # --- the tail ----------------------------------------------------------------------------
    async def finish(self, exchange: Exchange, send, status: int, out: bytes, content_type: bytes, codec: Codec,
                     err: AWSError | None, close: bool, loop, observed: bool = True) -> None:
        """Record the audit event, count and log the request (``observed``), answer."""
        # Fail-closed: the answer leaves only once its event is durable (group commit).
        try:
            await self.audit.record(exchange, loop)
        except AuditUnavailable:
            err = internal(AUDIT_UNAVAILABLE)
            status, out, content_type = codec.error(err, exchange.request_id)
            exchange.error_code = err.code  # the code the caller sees, for the access log
        if observed:
            if metrics.ACTIVE is not None:  # one check: with metrics off, nothing more per request
                # Counted before the answer leaves: a scrape after it has been received includes it.
                self.labels.count(metrics.ACTIVE, exchange, err, time.time() - cast(float, exchange.received))
            if self.access is not None:
                self.access.record(exchange, status)
        await respond(send, status, out, content_type, exchange.request_id, close)

    # --- callers already authenticated: the console ---------------------------------------------
    async def call(self, caller: Caller, service_name: str, name: str, params: dict | None,
                   exchange: Exchange) -> dict:
        """Run ``name`` of a JSON service as ``caller`` (a console session: no signature to check),
        ``params`` in its wire form (blobs base64); the answer in wire form too, or the AWSError
        the API would have answered with, after the audit event is recorded (fail-closed)."""
        service = self.services[service_name]
        exchange.caller = caller
        out: dict = {}
        try:
            operation, result = await self._operate(service, caller, name, orjson.dumps(params or {}), exchange,
                                                     asyncio.get_running_loop())
            out = orjson.loads(operation.serialize(result))
        except Exception as exc:  # the API's mapping: an AWS-shaped error, never a traceback
            exchange.error = as_aws_error(exc, exchange.request_id)
        try:
            await self.audit.record(exchange)
        except AuditUnavailable:
            raise internal(AUDIT_UNAVAILABLE) from None
        if exchange.error is not None:
            raise exchange.error
        return out

    async def record_event(self, exchange: Exchange, name: str, *, caller: Caller | None = None, cred=None,
                           error: AWSError | None = None, shape: Callable[[dict], None] | None = None) -> None:
        """The audit event of an action that is no API call (the console's sign-in and sign-out,
        its reading of the trail), in the same hash chain: ``shape(event)`` words it as
        CloudTrail records that action; ``cred``: what is known of a caller not authenticated."""
        exchange.operation = name
        exchange.error = error
        exchange.caller = caller
        exchange.cred = cred
        event = self.audit.event(exchange)
        if shape is not None:
            shape(event)
        try:
            await self.audit.sink.record(event)
        except AuditUnavailable:
            if not self.audit.fail_open:
                raise internal(AUDIT_UNAVAILABLE) from None

    # --- trentd's own signed requests: the test clock -------------------------------------------
    async def control(self, scope, receive, send, loop, control: Control) -> None:
        """A request signed for service ``kms`` whose signed method and path name the operation
        (no X-Amz-Target): not counted in the metrics nor the access log, as ever."""
        request_id = event_id()
        headers = sigv4.normalize_headers(scope["headers"])
        exchange = Exchange(request_id, time.time(), scope, headers, service="trentd",
                            default_region=self.settings.region)
        exchange.operation = control.name
        status, content_type, err = 200, CONTROL_TYPE, None
        codec = UNSCOPED.codec  # errors as KMS words them
        try:
            body = await read_body(scope, receive, self.settings.body_timeout, loop)
            cred = exchange.cred = sigv4.parse(headers, max_skew_seconds=self.settings.max_clock_skew,
                                               operation_header=False)
            if cred.service != "kms":
                raise AWSError("InvalidSignatureException", "Credential should be scoped to correct service: 'kms'.")
            caller = exchange.caller = await self.authenticate(scope, headers, body, cred, request_id, loop)
            request = exchange.request = control.read(body)
            exchange.result = result = await control.run(caller, request)
            out = control.answer(result)
        except ConnectionError:
            return
        except Exception as exc:  # every failure becomes an AWS-shaped answer, never a traceback
            err = exchange.error = as_aws_error(exc, request_id)
            status, out, content_type = codec.error(err, request_id)
        await self.finish(exchange, send, status, out, content_type, codec, err, isinstance(err, CLOSE_AFTER),
                          loop, observed=False)
