-- Key lifecycle (issue #5): automatic rotation schedules, the history of every key's material
-- (rotations and imported material), and the last cryptographic use of each key.
-- Kept out of `keys` so that KeyRecord's column list stays as it is.

-- Automatic rotation, one row per key that ever had EnableKeyRotation (or an on-demand rotation).
CREATE TABLE key_rotation (
    account         TEXT NOT NULL,
    region          TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    period_days     INTEGER NOT NULL,
    next_rotation   DOUBLE PRECISION,
    on_demand_count INTEGER NOT NULL,
    PRIMARY KEY (account, region, key_id)
);
CREATE INDEX key_rotation_due ON key_rotation (next_rotation) WHERE enabled = 1;

-- One row per key material a key has (its first, each rotation, each imported material).
-- The wrapped bytes stay in key_materials; `present = 0` means imported material that was
-- deleted or expired (ImportState PENDING_IMPORT); `pending = 1` is material imported with
-- ImportType NEW_KEY_MATERIAL that waits for RotateKeyOnDemand (PENDING_ROTATION).
CREATE TABLE material_versions (
    account          TEXT NOT NULL,
    region           TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    material_id      TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    pending          INTEGER NOT NULL,
    present          INTEGER NOT NULL,
    rotation_date    DOUBLE PRECISION,
    rotation_type    TEXT,
    expiration_model TEXT,
    valid_to         DOUBLE PRECISION,
    description      TEXT,
    created          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, region, key_id, material_id)
);
CREATE UNIQUE INDEX material_versions_seq ON material_versions (account, region, key_id, seq);
CREATE INDEX material_versions_expiry ON material_versions (valid_to) WHERE valid_to IS NOT NULL AND present = 1;

-- Every existing key's material is its first.
INSERT INTO material_versions (account, region, key_id, material_id, seq, pending, present, rotation_date,
                               rotation_type, expiration_model, valid_to, description, created)
SELECT account, region, key_id, current_material, 0, 0, 1, NULL, NULL, NULL, NULL, NULL, created
FROM keys WHERE current_material IS NOT NULL;

-- GetKeyLastUsage: the last successful cryptographic use of each key, flushed from memory.
CREATE TABLE key_last_usage (
    account    TEXT NOT NULL,
    region     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    operation  TEXT NOT NULL,
    used_at    DOUBLE PRECISION NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (account, region, key_id)
);

-- Tracking of last use starts when this schema is applied (TrackingStartDate).
INSERT INTO meta (name, value) VALUES ('last_usage_tracking_start', CAST(CURRENT_TIMESTAMP AS TEXT))
ON CONFLICT (name) DO NOTHING;
