"""The ASGI edge: routes for the API, health, the console and the dev-only controls.

No web framework: the API is a single route, and a framework would cost more per request than
everything else trentd does for a cached Encrypt (DESIGN.md, Performance). An API call (``POST /``)
goes through the request pipeline (trentd/pipeline/core.py ``Pipeline.serve``): read the body,
parse and verify SigV4, find the operation, parse and validate the request from the botocore
model, run the handler, serialize the answer, record the audit event, answer.
"""

from __future__ import annotations

import asyncio
import logging
import math
from concurrent.futures import ThreadPoolExecutor

import orjson

from .. import metrics
from ..audit import AuditLog
from ..auth.authenticator import Authenticator
from ..auth.invocation import Invocation
from ..errors import AWSError
from ..kms import api
from ..kms.context_keys import condition_context
from ..pipeline.asgi import CLOSE_AFTER, read_body, respond
from ..pipeline.core import Control, Pipeline
from ..protocol.model import error_body
from ..runtime import Runtime, run_background_jobs
from ..store.errors import StoreUnavailable
from . import tls
from .ready import Readiness

log = logging.getLogger("trentd.http")

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


def _no_request(body: bytes) -> None:
    return None


def clock_answer(out: dict) -> bytes:
    return orjson.dumps({"offset_seconds": out["offsetSeconds"], "now": out["now"]})


# --dev only: empty the store's KMS state; moto_server's path too, for suites written for it.
RESET_PATHS = frozenset({"/_trentd/reset", "/moto-api/reset"})


async def redirect(send, location: bytes) -> None:
    headers = [(b"location", location), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class TrentApp:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.settings = runtime.settings
        self.service = runtime.service
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="trentd")
        self.authenticator = Authenticator(runtime.store, runtime.root_key, dev=self.settings.dev,
                                           default_account=self.settings.account, clock=runtime.clock)
        self._sweeper: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the lifespan started on
        self.audit = AuditLog.for_runtime(runtime)
        self.readiness = Readiness(runtime, self.audit.sink, self.audit.central)  # GET /readyz (http/ready.py)
        self.request_labels = None  # with --metrics-port: what API requests are counted under
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
        # Every API request's steps (trentd/pipeline): the API route, the console, the signed clock.
        self.pipeline = Pipeline(runtime, self.executor, self.authenticator, self.audit,
                                 labels=self.request_labels, access=self.access)

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        if kind != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/" and method == "POST":
            return await self.pipeline.serve(scope, receive, send, self._running_loop())
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

    def _running_loop(self):
        """The event loop the app serves on, as noted at startup: on Python 3.11 every
        ``asyncio.get_running_loop()`` makes a getpid() system call. Checked all the same (a
        dictionary lookup): an app called from another loop gets that loop."""
        loop = self._loop
        if loop is None or asyncio.current_task(loop) is None:
            loop = asyncio.get_running_loop()
        return loop

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
        """Signed for service ``kms``; the method and path say what is asked, and both are signed."""
        post = scope["method"] == "POST"
        control = Control("MoveClock" if post else "GetClock", clock_input if post else _no_request,
                          self._run_clock, clock_answer)
        await self.pipeline.control(scope, receive, send, self._running_loop(), control)

    async def _run_clock(self, caller, request: dict | None) -> dict:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._authorize_clock, caller)
        return await self._clock_operation(request)

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
