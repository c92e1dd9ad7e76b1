-- Who manages a key: CUSTOMER (every key a caller creates) or AWS (the AWS managed keys that
-- trentd creates on first use of a predefined alias/aws/<service>, kms/managed.py).
ALTER TABLE keys ADD COLUMN key_manager TEXT NOT NULL DEFAULT 'CUSTOMER';
