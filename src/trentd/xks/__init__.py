"""Outbound: trentd as a client of External Key Store (XKS) proxies (kms/keystores.py uses it)."""
