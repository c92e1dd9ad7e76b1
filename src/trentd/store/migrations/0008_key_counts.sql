-- Keys per account and Region, kept in the same transaction as every key insert and delete, so
-- CreateKey's quota check (100,000 keys) reads one row instead of counting every key in the scope.
CREATE TABLE key_counts (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (account, region)
);
INSERT INTO key_counts (account, region, n) SELECT account, region, count(*) FROM keys GROUP BY account, region;
