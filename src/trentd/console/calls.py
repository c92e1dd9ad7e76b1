"""The console's only way to KMS: the request pipeline's ``call`` (trentd/pipeline/core.py).

A console action is a KMS request made on behalf of the signed-in principal: the request is
built in its wire form (blobs in base64) and parsed by the botocore model exactly as an API body
is, the Caller is the one the API would build for that principal, the handler runs as an API
call's does, and the audit event is recorded (fail-closed) before the page is answered. The
answer comes back in its wire form too (blobs base64, times as epoch seconds), so pages show
exactly what an SDK would see. Only the userAgent (``trentd-console``) tells the events apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

from ..audit import Exchange
from ..audit.redact import HIDDEN
from ..auth.identity import Caller
from ..errors import AWSError
from .session import Session
from .web import Request

USER_AGENT = "trentd-console"


def status_of(err: AWSError) -> int:
    """The page's status for a failed call: 403 for AccessDenied (a browser-level "forbidden"),
    else the API's own status."""
    return 403 if err.code == "AccessDeniedException" else err.status


def describe(err: AWSError) -> str:
    """An error as a person reads it: AWS's own message, or the code when there is none."""
    return f"{err.code}: {err.message}" if err.message else err.code


class KmsBridge:
    def __init__(self, app):
        self.app = app  # the TrentApp: its request pipeline and audit log

    def caller(self, request: Request, session: Session, request_id: str) -> Caller:
        """The Caller the API builds for this principal (auth/authenticator.py)."""
        return Caller(account=session.account, region=session.region, principal_arn=session.principal_arn,
                      access_key_id=session.access_key_id, request_id=request_id, source_ip=request.client_ip,
                      user_agent=USER_AGENT, secure=request.secure, principal_id=session.principal_id)

    def exchange(self, request: Request, region: str) -> Exchange:
        request_id = str(uuid.uuid4())
        headers = {"user-agent": USER_AGENT, "host": request.headers.get("host", "")}
        return Exchange(request_id, datetime.now(timezone.utc), request.scope, headers, service="kms",
                        default_region=region)

    async def call(self, request: Request, session: Session, name: str, params: dict | None = None) -> dict:
        """Run the KMS operation ``name`` as the session's principal; its answer in wire form, or
        the AWSError the API would have answered with."""
        exchange = self.exchange(request, session.region)
        caller = self.caller(request, session, exchange.request_id)
        return await self.app.pipeline.call(caller, "kms", name, params, exchange)

    async def record_console_event(self, request: Request, name: str, *, source: str = "signin.amazonaws.com",
                                   session: Session | None = None, access_key_id: str = "", region: str,
                                   error: AWSError | None = None, failure: str | None = None) -> None:
        """An event for a console action that is no KMS call, shaped as CloudTrail records the
        AWS console's own (sign-in: eventSource signin.amazonaws.com, eventType AwsConsoleSignIn;
        reading the trail: cloudtrail.amazonaws.com LookupEvents), in the same hash chain."""
        exchange = self.exchange(request, region)
        caller, cred = None, None
        if session is not None:
            caller = self.caller(request, session, exchange.request_id)
        else:  # not signed in: only the access key id the person typed is known
            cred = SimpleNamespace(access_key_id=access_key_id, region=region)

        def shape(event: dict) -> None:
            event.update(eventSource=source, readOnly=name == "LookupEvents")
            if event["userIdentity"].get("accessKeyId") == HIDDEN:  # a secret typed as the key id: as
                event["userIdentity"]["userName"] = HIDDEN  # AWS shows a mistyped user name at sign-in
            if source == "signin.amazonaws.com":
                event.update(eventType="AwsConsoleSignIn", responseElements={name: "Failure" if failure else "Success"})
            if failure:
                event["errorMessage"] = failure

        await self.app.pipeline.record_event(exchange, name, caller=caller, cred=cred, error=error, shape=shape)
