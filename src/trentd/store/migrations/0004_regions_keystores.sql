-- Multi-Region keys and external key stores (issue #5, part B). Kept out of `keys` so that
-- KeyRecord's column list stays as it is.

-- A multi-Region key has one `keys` row per Region, all with the same key id and sharing the
-- key material (key_materials is per account and key id). This row says which Region holds the
-- primary, and, while a primary scheduled for deletion waits for its replicas to go
-- (PendingReplicaDeletion), the waiting period it will then start.
CREATE TABLE multi_region_keys (
    account        TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    primary_region TEXT NOT NULL,
    pending_window INTEGER,
    PRIMARY KEY (account, key_id)
);
CREATE INDEX keys_by_id ON keys (account, key_id);

-- Custom key stores of type EXTERNAL_KEY_STORE. The proxy's secret access key is stored wrapped
-- under the root key (AAD: account, Region, store id, access key id), never in clear.
CREATE TABLE custom_key_stores (
    account          TEXT NOT NULL,
    region           TEXT NOT NULL,
    store_id         TEXT NOT NULL,
    name             TEXT NOT NULL,
    store_type       TEXT NOT NULL,
    uri_endpoint     TEXT NOT NULL,
    uri_path         TEXT NOT NULL,
    connectivity     TEXT NOT NULL,
    access_key_id    TEXT NOT NULL,
    wrapped_secret   BYTEA NOT NULL,
    connection_state TEXT NOT NULL,
    connection_error TEXT,
    created          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, region, store_id)
);
CREATE UNIQUE INDEX custom_key_stores_name ON custom_key_stores (account, region, name);
CREATE UNIQUE INDEX custom_key_stores_uri ON custom_key_stores (account, region, uri_endpoint, uri_path);

-- The external key behind each KMS key in an external key store; one KMS key per external key
-- and store.
CREATE TABLE xks_keys (
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    store_id   TEXT NOT NULL,
    xks_key_id TEXT NOT NULL,
    PRIMARY KEY (account, region, key_id)
);
CREATE UNIQUE INDEX xks_keys_external ON xks_keys (account, region, store_id, xks_key_id);
