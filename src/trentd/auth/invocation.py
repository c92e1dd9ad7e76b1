"""One call of one operation: who calls (the ``Caller``), what is called, with which request.

An ``Invocation`` is made once per request by the request pipeline (trentd/pipeline/core.py:
the API's KMS and STS calls, the console's) after the operation is known and the request
validated. It holds the per-request facts the identity must not carry: the operation, the
validated request (its grant tokens and the members condition keys read), and the ``resources``
the call touched (ARNs appended by key resolution, shown in the audit event). Handlers receive it as ``call``; the
properties below hand them what they used to read from the caller, so ``call.account``,
``call.key_arn(id)`` and ``call.shown_arn`` read as before.
"""

from __future__ import annotations

from .identity import Caller


class Invocation:
    __slots__ = ("caller", "operation", "request", "resources", "service")

    def __init__(self, caller: Caller, operation: str, request: dict | None = None, *, service: str = "kms",
                 resources: list | None = None):
        self.caller = caller
        self.operation = operation  # its IAM action is <service>:<operation>
        self.request = request  # the validated request, for grant tokens and policy condition keys
        self.service = service
        # ARNs of the keys this call touched, for the audit event's ``resources`` (appended by
        # Service.resolve() and open_blob(); shared with a derived invocation, see ``acting``).
        self.resources: list = resources if resources is not None else []

    def acting(self, operation: str, *, region: str | None = None) -> Invocation:
        """The same request checked as another operation (ReplicateKey's kms:CreateKey in the
        replica Region): same request, same touched resources."""
        caller = self.caller
        if region is not None and region != caller.region:
            caller = caller.in_region(region)
        return Invocation(caller, operation, self.request, service=self.service, resources=self.resources)

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"

    @property
    def grant_tokens(self) -> list | None:
        request = self.request
        return request.get("GrantTokens") if request else None

    # --- what handlers and policy evaluation read of the caller ---------------------------------
    @property
    def account(self) -> str:
        return self.caller.account

    @property
    def region(self) -> str:
        return self.caller.region

    @property
    def principal_arn(self) -> str:
        return self.caller.principal_arn

    @property
    def access_key_id(self) -> str:
        return self.caller.access_key_id

    @property
    def request_id(self) -> str:
        return self.caller.request_id

    @property
    def source_ip(self) -> str | None:
        return self.caller.source_ip

    @property
    def user_agent(self) -> str | None:
        return self.caller.user_agent

    @property
    def secure(self) -> bool:
        return self.caller.secure

    @property
    def session(self):
        return self.caller.session

    @property
    def shown_arn(self) -> str:
        return self.caller.shown_arn

    @property
    def principal_id(self) -> str:
        return self.caller.principal_id

    @property
    def unique_id(self) -> str:
        return self.caller.unique_id

    def key_arn(self, key_id: str) -> str:
        return self.caller.key_arn(key_id)

    def alias_arn(self, alias_name: str) -> str:
        return self.caller.alias_arn(alias_name)

    def __repr__(self) -> str:
        return f"Invocation({self.action} by {self.caller.principal_arn} in {self.caller.region})"
