"""Outbound: trentd as a client of External Key Store (XKS) proxies (used by keydomain/external.py for
the cryptography of keys in an external key store, and by kms/keystores.py for the store operations)."""
