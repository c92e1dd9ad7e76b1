"""The ASGI edge: one POST route for the KMS API, health, and the dev-only clock control.

No web framework: the API is a single route, and a framework would cost more per request than
everything else trentd does for a cached Encrypt (DESIGN.md, Performance). Order of work for an
API call: cap and read the body, parse and verify SigV4, pick the operation from X-Amz-Target,
parse and validate the body from the botocore model, run the handler on a worker thread,
serialize the answer from the model.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor

import orjson

from .. import metrics
from ..audit import AuditLog, AuditUnavailable, Exchange
from ..audit.events import event_id
from ..auth import sigv4
from ..auth.authenticator import Authenticator
from ..auth.invocation import Invocation
from ..errors import AWSError, internal
from ..inline import MustOffload, on_event_loop
from ..kms import api
from ..kms.context_keys import condition_context
from ..protocol import query
from ..protocol.model import error_body, load_service
from ..runtime import Runtime, run_background_jobs
from ..store.rootkey import RootKeyError, RootKeyUnavailable
from ..store.errors import StoreUnavailable
from . import sts, tls
from .limits import Deadlines, read_capped
from .ready import Readiness

log = logging.getLogger("trentd.http")

AUDIT_UNAVAILABLE = "An internal error occurred: the request could not be recorded in the audit log."
MAX_BODY = 512 * 1024  # a legal CreateKey with non-ASCII text reaches ~360 KB
JSON_TYPE = b"application/x-amz-json-1.1"
XML_TYPE = query.CONTENT_TYPE
SWEEP_SECONDS = 1.0
MOVE_CLOCK = "trentd:MoveClock"  # the action that reads or moves the test clock outside --dev
CLOCK_USAGE = 'expected {"advance_seconds": N} or {"offset_seconds": N}'


def clock_input(body: bytes) -> dict:
    """The body of ``POST /_trentd/clock`` as the audit event shows it (lower camel)."""
    try:
        request = orjson.loads(body or b"{}")
        if "offset_seconds" in request:
            out = {"offsetSeconds": float(request["offset_seconds"])}
        else:
            out = {"advanceSeconds": float(request["advance_seconds"])}
    except (KeyError, TypeError, ValueError):
        raise AWSError("ValidationException", CLOCK_USAGE) from None
    if not all(math.isfinite(v) for v in out.values()):
        raise AWSError("ValidationException", CLOCK_USAGE)
    return out


def clock_answer(out: dict) -> bytes:
    return orjson.dumps({"offset_seconds": out["offsetSeconds"], "now": out["now"]})


# --dev only: empty the store's KMS state; moto_server's path too, for suites written for it.
RESET_PATHS = frozenset({"/_trentd/reset", "/moto-api/reset"})


class BodyTooLarge(AWSError):
    def __init__(self):
        super().__init__("RequestEntityTooLargeException",
                         f"Request body exceeds the maximum allowed size of {MAX_BODY} bytes.", 413)


class BodyTimeout(AWSError):
    """The body did not arrive within the body deadline (a stalled or lying client)."""

    def __init__(self):
        super().__init__("RequestTimeoutException", "The request body was not received in time.", 408)


# Answers after which the rest of the request is not read: the connection is closed instead.
CLOSE_AFTER = (BodyTooLarge, BodyTimeout)


_body_deadlines = Deadlines()


async def read_body(scope, receive, timeout: float | None = None, loop=None) -> bytes:
    """The whole body, at most MAX_BODY bytes (413 before reading when Content-Length says more;
    a chunked body is cut off at the cap), received within ``timeout`` seconds (408)."""
    if not timeout:
        return await _read_body(scope, receive)
    try:
        return await _body_deadlines.within(_read_body(scope, receive), timeout, loop)
    except TimeoutError:
        raise BodyTimeout() from None


async def _read_body(scope, receive) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise BodyTooLarge()
    return await read_capped(receive, MAX_BODY, BodyTooLarge)


async def respond(send, status: int, body: bytes, content_type: bytes = JSON_TYPE, request_id: str | None = None,
                  close: bool = False):
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if request_id:
        headers.append((b"x-amzn-requestid", request_id.encode()))
    if close:  # the request was not read to its end: uvicorn closes the connection after this answer
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def redirect(send, location: bytes) -> None:
    headers = [(b"location", location), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class TrentApp:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.settings = runtime.settings
        self.service = runtime.service
        self.kms_model = load_service("kms")
        self.sts_model = load_service("sts")
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="trentd")
        self.authenticator = Authenticator(runtime.store, runtime.root_key, dev=self.settings.dev,
                                           default_account=self.settings.account, clock=runtime.clock)
        self._sweeper: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the lifespan started on
        self.audit = AuditLog.for_runtime(runtime)
        self.readiness = Readiness(runtime, self.audit.sink)  # GET /readyz (http/ready.py)
        self.request_labels = None  # with --metrics-port: what _api's requests are counted under
        if getattr(self.settings, "metrics_port", None):
            from .observe import RequestLabels

            metrics.enable()
            self.request_labels = RequestLabels()
        self.console = None  # the web console (trentd/console), unless --no-console
        if getattr(self.settings, "console", True):
            from ..console import Console

            self.console = Console(self)
        self.access = None  # the access log (http/access.py), when --access-log
        if getattr(self.settings, "access_log", False):
            from .access import AccessLog

            self.access = AccessLog()

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        if kind != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/" and method == "POST":
            return await self._api(scope, receive, send)
        if path == "/healthz" and method == "GET":
            return await respond(send, 200, b'{"status":"ok"}', b"application/json")
        if path == "/readyz" and method == "GET":  # not audited: it reads nobody's keys
            status, body = await self.readiness.answer(self._running_loop(), self.executor)
            return await respond(send, status, body, b"application/json")
        if path == "/_trentd/clock" and self.settings.clock_movable:
            return await self._clock(scope, receive, send)
        if path in RESET_PATHS and self.settings.dev:
            return await self._reset(scope, receive, send)
        if self.console is not None and (path == "/console" or path.startswith("/console/")):
            return await self.console(scope, receive, send)
        if path == "/" and method in ("GET", "HEAD") and self.console is not None:  # a browser at the root
            return await redirect(send, b"/console/")
        await respond(send, 404, b'{"message":"Not Found"}', b"application/json")

    # --- the API: KMS (JSON 1.1) or STS (Query), chosen by the credential scope -----------------
    async def _api(self, scope, receive, send):
        request_id = event_id()  # a version 4 UUID without uuid4()'s syscall per request
        loop = self._running_loop()
        headers = sigv4.normalize_headers(scope["headers"])
        # Until the scope is known, a form-encoded body marks an STS caller expecting XML errors.
        sts_call = sts.is_sts_request(headers)
        # What the audit event of this request is built from (audit/events.py).
        exchange = Exchange(request_id, time.time(), scope, headers,
                            service="sts" if sts_call else "kms", default_region=self.settings.region)
        close, err = False, None
        try:
            body = exchange.body = await read_body(scope, receive, self.settings.body_timeout, loop)
            # The skew check reads the real wall clock, never the service's test clock.
            cred = exchange.cred = sigv4.parse(headers, max_skew_seconds=self.settings.max_clock_skew)
            sts_call = cred.service == "sts"
            exchange.service = "sts" if sts_call else "kms"
            caller = exchange.caller = await self._authenticate(scope, headers, body, cred, request_id)
            if sts_call:
                form = self.sts_model.codec.parse(body)
                exchange.operation = form.get("Action")
                # AssumeRole and GetSessionToken write to the store: off the event loop
                out = await asyncio.get_running_loop().run_in_executor(
                    self.executor, sts.dispatch, self.service, caller, form, exchange)
            else:
                out = await self._kms(caller, headers, body, exchange)
            status = 200
        except ConnectionError:
            return
        except Exception as exc:  # every failure becomes an AWS-shaped answer, never a traceback
            err = exchange.error = self._as_aws_error(exc, request_id)
            close = isinstance(err, CLOSE_AFTER)
            status, out, _ = (self.sts_model if sts_call else self.kms_model).codec.error(err, request_id)
            if sts_call:
                exchange.error_code = self.sts_model.codec.error_code(err.code)
        # Fail-closed: the answer leaves only once its event is durable (group commit).
        try:
            await self.audit.record(exchange, loop)
        except AuditUnavailable:
            err = internal(AUDIT_UNAVAILABLE)
            status, out, _ = (self.sts_model if sts_call else self.kms_model).codec.error(err, request_id)
            exchange.error_code = err.code  # the code the caller sees, for the access log
        if metrics.ACTIVE is not None:  # one check: with metrics off, nothing more per request
            # Counted before the answer leaves: a scrape after it has been received includes it.
            self.request_labels.count(metrics.ACTIVE, exchange, err, time.time() - exchange.received)
        if self.access is not None:
            self.access.record(exchange, status)
        await respond(send, status, out, XML_TYPE if sts_call else JSON_TYPE, request_id, close)

    def _running_loop(self):
        """The event loop the app serves on, as noted at startup: on Python 3.11 every
        ``asyncio.get_running_loop()`` makes a getpid() system call. Checked all the same (a
        dictionary lookup): an app called from another loop gets that loop."""
        loop = self._loop
        if loop is None or asyncio.current_task(loop) is None:
            loop = asyncio.get_running_loop()
        return loop

    @staticmethod
    def _as_aws_error(exc: Exception, request_id: str) -> AWSError:
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

    async def _authenticate(self, scope, headers, body: bytes, cred, request_id: str):
        client = scope.get("client")
        authenticate = lambda: self.authenticator.authenticate(  # noqa: E731
            cred, method=scope["method"], path=scope.get("raw_path") or scope["path"].encode(),
            query=scope.get("query_string", b""), headers=headers, body=body, request_id=request_id,
            source_ip=client[0] if client else None, user_agent=headers.get("user-agent"),
            secure=scope.get("scheme") == "https")
        if self.authenticator.needs_lookup(cred):
            return await asyncio.get_running_loop().run_in_executor(self.executor, authenticate)
        return authenticate()

    async def _kms(self, caller, headers, body: bytes, exchange: Exchange) -> bytes:
        name = self._operation_name(headers.get("x-amz-target", ""))
        operation = self.kms_model.operation(name)
        row = api.OPERATIONS.get(name)
        if operation is None:
            raise AWSError("UnknownOperationException", f"Unknown operation {name or '(none)'}.")
        exchange.operation = name
        if row is None:
            raise AWSError("UnsupportedOperationException", f"{name} is not supported by trentd yet.")
        exchange.audit = row.audit
        request = exchange.request = operation.parse(body)
        call = exchange.invocation = Invocation(caller, name, request)
        exchange.result = result = await self._run(row, call, request)
        return operation.serialize(result)

    async def _run(self, row: api.OperationRow, call: Invocation, request: dict):
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
                return await asyncio.get_running_loop().run_in_executor(
                    self.executor, api.retry_fresh, row.handler, self.service, call, request)
            except MustOffload:
                call.resources.clear()  # the run on the pool records the keys it touches again
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, api.run, row.handler, row.cached, self.service, call, request)

    def _operation_name(self, target: str) -> str:
        prefix, _, name = target.partition(".")
        return name if prefix == self.kms_model.target_prefix else ""

    # --- test clock and background work -------------------------------------------------------
    async def _clock(self, scope, receive, send):
        """``/_trentd/clock`` (only with --test-clock). In --dev unsigned, as test suites use it;
        otherwise a SigV4-signed request (service ``kms``) of a principal whose identity policies
        allow ``trentd:MoveClock``, audited as ``MoveClock``/``GetClock`` from ``trentd``: the
        clock decides when keys are deleted, so moving it is as sensitive as ScheduleKeyDeletion."""
        if not self.settings.dev:
            return await self._signed_clock(scope, receive, send)
        try:
            body = await read_body(scope, receive, self.settings.body_timeout)
            out = await self._clock_operation(clock_input(body) if scope["method"] == "POST" else None)
        except AWSError as err:
            return await respond(send, err.status, error_body(err))
        await respond(send, 200, clock_answer(out), b"application/json")

    async def _signed_clock(self, scope, receive, send):
        request_id = event_id()
        loop = self._running_loop()
        headers = sigv4.normalize_headers(scope["headers"])
        post = scope["method"] == "POST"
        exchange = Exchange(request_id, time.time(), scope, headers, service="trentd",
                            default_region=self.settings.region)
        exchange.operation = "MoveClock" if post else "GetClock"
        status, content_type = 200, b"application/json"
        try:
            body = await read_body(scope, receive, self.settings.body_timeout, loop)
            # The method and path say what is asked, and both are signed: no X-Amz-Target here.
            cred = exchange.cred = sigv4.parse(headers, max_skew_seconds=self.settings.max_clock_skew,
                                               operation_header=False)
            if cred.service != "kms":
                raise AWSError("InvalidSignatureException", "Credential should be scoped to correct service: 'kms'.")
            caller = exchange.caller = await self._authenticate(scope, headers, body, cred, request_id)
            exchange.request = clock_input(body) if post else None
            await loop.run_in_executor(self.executor, self._authorize_clock, caller)
            exchange.result = await self._clock_operation(exchange.request)
            out = clock_answer(exchange.result)
        except ConnectionError:
            return
        except Exception as exc:  # every failure becomes an AWS-shaped answer, never a traceback
            err = exchange.error = self._as_aws_error(exc, request_id)
            status, content_type, out = err.status, JSON_TYPE, error_body(err)
        try:
            await self.audit.record(exchange, loop)
        except AuditUnavailable:
            err = internal(AUDIT_UNAVAILABLE)
            status, content_type, out = err.status, JSON_TYPE, error_body(err)
        await respond(send, status, out, content_type, request_id, isinstance(exchange.error, CLOSE_AFTER))

    def _authorize_clock(self, caller) -> None:
        """Identity policies alone decide, as for KMS operations on no key (the allow-all policy
        of the bootstrap administrator allows it; ``kms:*`` does not)."""
        call = Invocation(caller, "MoveClock", service="trentd")
        resource = f"arn:aws:trentd:{caller.region}:{caller.account}:clock"
        self.service.authorizer.check_account(call, MOVE_CLOCK, resource, condition_context(None, call, MOVE_CLOCK))

    async def _clock_operation(self, request: dict | None) -> dict:
        """Move the clock when ``request`` says so (then run the background jobs, so what fell due
        is done before the answer), and return where it stands."""
        loop = asyncio.get_running_loop()
        clock = self.runtime.clock
        if request is not None:
            offset = request.get("offsetSeconds")
            if offset is None:
                offset = await loop.run_in_executor(self.executor, clock.offset) + request["advanceSeconds"]
            await loop.run_in_executor(self.executor, clock.set_offset, offset)
            await loop.run_in_executor(self.executor, run_background_jobs, self.service)
        return {"offsetSeconds": await loop.run_in_executor(self.executor, clock.offset),
                "now": await loop.run_in_executor(self.executor, clock.now)}

    async def _reset(self, scope, receive, send):
        """POST: every account's keys, aliases, grants, tags, custom key stores and the clock
        offset go; principals and access keys stay (store/reset.py). Every worker and node
        forgets its cached copies within a second, as after any other change."""
        if scope["method"] != "POST":
            body = b'{"message":"Method Not Allowed"}'
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"allow", b"POST")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            return await send({"type": "http.response.body", "body": body})
        try:
            await read_body(scope, receive, self.settings.body_timeout)  # read and ignored
            deleted = await asyncio.get_running_loop().run_in_executor(self.executor, self.service.reset)
        except AWSError as err:  # the body was too large or too slow
            return await respond(send, err.status, orjson.dumps({"message": err.message}), b"application/json",
                                 close=isinstance(err, CLOSE_AFTER))
        except StoreUnavailable as exc:
            log.warning("reset failed, store unavailable: %s", exc)
            return await respond(send, 503, b'{"message":"The store is unavailable; retry the reset."}',
                                 b"application/json")
        log.warning("--dev reset: the store's KMS state was emptied (%d keys)", deleted)
        await respond(send, 200, orjson.dumps({"status": "ok", "deleted_keys": deleted}), b"application/json")

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self.runtime.store.changes.start()  # caches follow other processes' writes
                self._sweeper = asyncio.create_task(self._sweep_forever())
                tls.reload_on_sighup(self._loop)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._sweeper:
                    self._sweeper.cancel()
                try:  # last-use times still in memory (GetKeyLastUsage) reach the store
                    await asyncio.get_running_loop().run_in_executor(None, api.shutdown, self.service)
                except Exception:
                    log.exception("could not write last-use times at shutdown")
                self.executor.shutdown(wait=False, cancel_futures=True)
                await asyncio.get_running_loop().run_in_executor(None, self.audit.close)
                if self.access is not None:  # the last requests' lines are written before the exit
                    await asyncio.get_running_loop().run_in_executor(None, self.access.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _sweep_forever(self):
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await loop.run_in_executor(self.executor, run_background_jobs, self.service)
            except StoreUnavailable as exc:  # an outage: one line a second, no traceback
                log.warning("background job skipped, store unavailable: %s", exc)
            except Exception:
                log.exception("background job failed; will retry")
