-- Failed console sign-ins (src/trentd/console/throttle.py), in the store so that every worker and
-- node counts the same failures. One row per failure and subject; a subject is the HMAC-SHA256 of
-- an access key id or of a source address, never the id or the address itself. Rows are only
-- inserted, and removed once older than the throttle looks back.
CREATE TABLE console_signin_failures (
    subject   TEXT NOT NULL,
    failed_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX console_signin_failures_by_subject ON console_signin_failures (subject, failed_at);
CREATE INDEX console_signin_failures_by_time ON console_signin_failures (failed_at);
