-- Temporary credentials (issue #10): STS sessions, role trust policies and managed policies.

-- One row per set of temporary credentials (GetSessionToken, AssumeRole). The session token is
-- never stored, only its SHA-256; the secret access key is wrapped under the root key (AAD binds
-- the access key id, as for long-term access keys). principal_arn is the principal policies see
-- (the role, or the user of a GetSessionToken session); session_arn is the one callers are shown
-- (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION). Rows are swept a while after they expire.
CREATE TABLE sts_sessions (
    access_key_id  TEXT PRIMARY KEY,
    token_hash     TEXT NOT NULL,
    wrapped_secret BYTEA NOT NULL,
    account        TEXT NOT NULL,
    principal_arn  TEXT NOT NULL,
    session_arn    TEXT NOT NULL,
    kind           TEXT NOT NULL,
    session_name   TEXT,
    policies       TEXT,
    tags           TEXT,
    created        DOUBLE PRECISION NOT NULL,
    expires        DOUBLE PRECISION NOT NULL
);
CREATE INDEX sts_sessions_expires ON sts_sessions (expires);

-- Who may assume a role (`trentd principals put-trust-policy`): a resource policy on the role.
CREATE TABLE role_trust_policies (
    role_arn TEXT PRIMARY KEY,
    document TEXT NOT NULL
);

-- Customer managed policies (`trentd policies create`), usable as AssumeRole PolicyArns.
CREATE TABLE managed_policies (
    arn      TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    name     TEXT NOT NULL,
    document TEXT NOT NULL,
    created  DOUBLE PRECISION NOT NULL
);
