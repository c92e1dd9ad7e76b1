"""What the Terraform provider (and `aws iam`) read and delete around users and roles, of things
trentd does not have: answered as AWS answers an account without them — empty lists, and
NoSuchEntity for a login profile. The user or role named must exist, as on AWS."""

from __future__ import annotations

from ..errors import AWSError
from . import common
from .users import caller_user_name

# AWS documents that AllUsers "cannot be specified together with UserName" (its exact error
# wording is not published; this says the same).
ALL_USERS_WITH_NAME = "AllUsers cannot be specified together with UserName."


def _empty_for(kind: str, member: str, named: bool = True):
    """An empty listing for the role named, the user named (or the calling user), or the account."""

    def handler(svc, call, request: dict) -> dict:
        if not named:
            common.authorize(svc, call, common.entity_arn(call.account, kind, "*"))
        else:
            name = request["RoleName"] if kind == "role" else caller_user_name(call, request)
            common.authorized_entity(svc, call, kind, name)
        return common.page([], request, member)

    return handler


def _service_specific_credentials(svc, call, request: dict) -> dict:
    """None, of the user named, the calling user, or (AllUsers) every user of the account."""
    if request.get("AllUsers"):
        if request.get("UserName") is not None:
            raise AWSError("ValidationError", ALL_USERS_WITH_NAME)
        common.authorize(svc, call, common.entity_arn(call.account, "user", "*"))
    else:
        common.authorized_entity(svc, call, "user", caller_user_name(call, request))
    return common.page([], request, "ServiceSpecificCredentials")


def _no_login_profile(svc, call, request: dict) -> dict:
    name = caller_user_name(call, request)
    common.authorized_entity(svc, call, "user", name)
    raise common.no_such_entity(f"Login Profile for User {name} cannot be found.")


HANDLERS = {
    "ListInstanceProfilesForRole": _empty_for("role", "InstanceProfiles"),
    "ListSSHPublicKeys": _empty_for("user", "SSHPublicKeys"),
    "ListMFADevices": _empty_for("user", "MFADevices"),
    "ListVirtualMFADevices": _empty_for("user", "VirtualMFADevices", named=False),
    "ListSigningCertificates": _empty_for("user", "Certificates"),
    "ListServiceSpecificCredentials": _service_specific_credentials,
    "GetLoginProfile": _no_login_profile,
    "DeleteLoginProfile": _no_login_profile,
}
