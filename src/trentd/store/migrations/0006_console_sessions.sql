-- Web console sessions (issue #11, src/trentd/console/session.py). Server-side, in the store, so
-- a session works on every worker and node. The session id itself never reaches the store: only
-- its SHA-256 (a stolen database dump cannot be replayed as cookies).
CREATE TABLE console_sessions (
    id_hash       TEXT PRIMARY KEY,
    principal_arn TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    account       TEXT NOT NULL,
    region        TEXT NOT NULL,
    csrf_secret   TEXT NOT NULL,
    created       DOUBLE PRECISION NOT NULL,
    last_seen     DOUBLE PRECISION NOT NULL
);
-- Sign-out everywhere when an access key is deleted, and the sweep of expired sessions.
CREATE INDEX console_sessions_by_key ON console_sessions (access_key_id);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen);
