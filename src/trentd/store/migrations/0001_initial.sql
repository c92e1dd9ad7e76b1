-- trentd schema v1. Key material and access-key secrets are stored wrapped under the root key only.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE keys (
    account        TEXT NOT NULL,
    region         TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    created        DOUBLE PRECISION NOT NULL,
    description    TEXT NOT NULL,
    key_spec       TEXT NOT NULL,
    key_usage      TEXT NOT NULL,
    origin         TEXT NOT NULL,
    key_state      TEXT NOT NULL,
    deletion_date  DOUBLE PRECISION,
    multi_region   INTEGER NOT NULL,
    policy         TEXT NOT NULL,
    current_material TEXT,
    PRIMARY KEY (account, region, key_id)
);
CREATE INDEX keys_deletion ON keys (deletion_date) WHERE deletion_date IS NOT NULL;

-- One row per backing-key version. Not per region: a multi-Region key's replicas share material.
CREATE TABLE key_materials (
    account     TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    material_id TEXT NOT NULL,
    wrapped     BYTEA NOT NULL,
    created     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, key_id, material_id)
);

CREATE TABLE aliases (
    account  TEXT NOT NULL,
    region   TEXT NOT NULL,
    name     TEXT NOT NULL,
    key_id   TEXT NOT NULL,
    created  DOUBLE PRECISION NOT NULL,
    updated  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE INDEX aliases_key ON aliases (account, region, key_id);

CREATE TABLE tags (
    account   TEXT NOT NULL,
    region    TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (account, region, key_id, tag_key)
);

CREATE TABLE principals (
    arn      TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    name     TEXT NOT NULL,
    kind     TEXT NOT NULL,
    created  DOUBLE PRECISION NOT NULL
);

CREATE TABLE identity_policies (
    principal_arn TEXT NOT NULL,
    name          TEXT NOT NULL,
    document      TEXT NOT NULL,
    PRIMARY KEY (principal_arn, name)
);

CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY,
    principal_arn  TEXT NOT NULL,
    wrapped_secret BYTEA NOT NULL,
    created        DOUBLE PRECISION NOT NULL
);
