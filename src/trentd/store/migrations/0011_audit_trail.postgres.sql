-- The central audit trail (docs/audit.md, "The central trail"): every process's hash chain copied
-- into the store by audit/central.py, in order and idempotent on (chain, seq). ``body`` holds the
-- exact canonical bytes the chain's hash covers (chain.canonical), never re-serialised JSON, so
-- every node's chain can be verified from here as from the files. The other columns are lookup
-- attributes (CloudTrail's LookupEvents, ``trentd audit search``), copied out of the event.
CREATE TABLE audit_trail (
    chain        TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    prev         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    body         BYTEA   NOT NULL,
    event_time   BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    region       TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    event_source TEXT NOT NULL,
    read_only    INTEGER,
    username     TEXT,
    access_key_id TEXT,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_trail_by_time ON audit_trail (event_time, event_id);
CREATE INDEX audit_trail_by_event_id ON audit_trail (event_id);
CREATE INDEX audit_trail_by_event_name ON audit_trail (event_name, event_time);
CREATE INDEX audit_trail_by_username ON audit_trail (username, event_time);
CREATE INDEX audit_trail_by_access_key ON audit_trail (access_key_id, event_time);
CREATE INDEX audit_trail_by_event_source ON audit_trail (event_source, event_time);
CREATE INDEX audit_trail_by_read_only ON audit_trail (read_only, event_time);

-- Who sees an event: the caller's account, and for an allowed call on another account's key the
-- key owner's account too (AWS logs it in both trails; a refused one only in the caller's).
CREATE TABLE audit_trail_visibility (
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    event_id   TEXT NOT NULL,
    chain      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (account, chain, seq)
);
CREATE INDEX audit_trail_visibility_by_time ON audit_trail_visibility (account, region, event_time, event_id);
CREATE INDEX audit_trail_visibility_by_event ON audit_trail_visibility (chain, seq);

-- The resources an event names (resources[].type and ARN), for the ResourceType/ResourceName lookups.
CREATE TABLE audit_trail_resources (
    chain         TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    PRIMARY KEY (chain, seq, resource_type, resource_name)
);
CREATE INDEX audit_trail_resources_by_name ON audit_trail_resources (resource_name);
CREATE INDEX audit_trail_resources_by_type ON audit_trail_resources (resource_type);

-- Per chain, the last line retention purged (seq and hash): `trentd audit verify` starts from it.
CREATE TABLE audit_trail_checkpoints (
    chain TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);

-- When a central-trail job last ran (microseconds, service clock): retention runs once across
-- nodes, the node that claims it in a transaction holding the job's lock records it here.
CREATE TABLE audit_trail_jobs (
    name     TEXT PRIMARY KEY,
    last_run BIGINT NOT NULL
);
