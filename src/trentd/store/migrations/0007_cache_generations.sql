-- Cache invalidation across processes and nodes (docs/design.md, "Caches and invalidation").
-- Every write transaction that changes cached state (keys, aliases, grants, policies, tags, key
-- material, the test clock, ...) bumps one row here in the same transaction, just before it
-- commits: the row of the (account, Region) scope it holds on PostgreSQL (writers of one scope
-- are serialised already, so this adds no contention), '*' otherwise. Each process polls the sum
-- a few times a second and drops its caches when it moves.
CREATE TABLE cache_generations (
    scope      TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
