"""An endpoint under test and the credentials that sign requests for it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore.credentials import Credentials

# Any credentials do for --dev trentd, moto_server and the echo app; a 12-digit access key makes
# --dev trentd use it as the account id, so this one lands in trentd's default account.
FALLBACK_ACCESS_KEY = "000000000000"
FALLBACK_SECRET_KEY = "bench-secret"


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    region: str
    credentials: Credentials

    @property
    def host(self) -> str:
        """The Host header: what botocore signs and what wrk must send unchanged."""
        return urlsplit(self.url).netloc

    def client(self, service: str = "kms"):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service, endpoint_url=self.url, region_name=self.region,
            aws_access_key_id=self.credentials.access_key, aws_secret_access_key=self.credentials.secret_key,
            aws_session_token=self.credentials.token,
            config=Config(retries={"max_attempts": 1}, max_pool_connections=64, read_timeout=120),
            verify=False if self.url.startswith("https") else None)


def resolve_credentials(*, access_key: str | None, secret_key: str | None, profile: str | None,
                        credentials_file: str | None) -> tuple[Credentials, str]:
    """Credentials by precedence: explicit keys, then a shared-credentials file (trentd's
    DATA_DIR/admin-credentials is one), then boto3's chain (env, profile). Returns them with a
    note on where they came from, printed so a wrong choice is visible before any numbers."""
    if access_key or secret_key:
        if not (access_key and secret_key):
            raise SystemExit("bench: --access-key and --secret-key go together")
        return Credentials(access_key, secret_key), "command line"
    if credentials_file:
        return _from_shared_file(credentials_file, profile or "default"), f"credentials file {credentials_file}"
    import boto3

    found = boto3.Session(profile_name=profile).get_credentials()
    if found is None:
        return (Credentials(FALLBACK_ACCESS_KEY, FALLBACK_SECRET_KEY),
                "placeholder (none configured: fine for --dev trentd, moto_server and the echo app)")
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token), f"profile {profile}" if profile else "boto3 default chain"


def _from_shared_file(path: str, profile: str) -> Credentials:
    # Read directly rather than through AWS_SHARED_CREDENTIALS_FILE: A and B of an A/B run may
    # each have a file of their own, and a process-wide variable would leak one into the other.
    import configparser

    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise SystemExit(f"bench: cannot read credentials file {path}")
    if profile not in parser:
        raise SystemExit(f"bench: no profile [{profile}] in {path}")
    section = parser[profile]
    return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"],
                       section.get("aws_session_token"))
