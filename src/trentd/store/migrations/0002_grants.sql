-- Grants: delegated permissions on one key (CreateGrant). Operations and constraints are JSON.
CREATE TABLE grants (
    account           TEXT NOT NULL,
    region            TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    grant_id          TEXT NOT NULL,
    name              TEXT,
    grantee           TEXT,
    retiring          TEXT,
    grantee_service   TEXT,
    retiring_service  TEXT,
    operations        TEXT NOT NULL,
    grant_constraints TEXT,
    issuing_account   TEXT NOT NULL,
    created           DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, region, key_id, grant_id)
);
CREATE INDEX grants_grantee ON grants (account, region, key_id, grantee);
CREATE INDEX grants_retiring ON grants (retiring);
CREATE UNIQUE INDEX grants_id ON grants (grant_id);
