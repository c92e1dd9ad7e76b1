"""trentd as an External Key Store proxy (issue #26, docs/xks.md): the server side of the XKS Proxy
API v1 (aws/aws-kms-xksproxy-api-spec), on a listener of its own (http/xks.py).

``keystores.py`` and ``keys.py`` are what the admin commands do (``trentd xks …``), ``auth.py`` SigV4
for service ``kms-xks-proxy`` and secondary authorization, ``api.py`` the four operations,
``events.py`` their audit events, ``errors.py`` the spec's errors. The KMS side (trentd calling
proxies) is xks/client.py and keydomain/external.py.
"""
