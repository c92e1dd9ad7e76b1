"""STS on the KMS endpoint: GetCallerIdentity, GetSessionToken and AssumeRole (issue #10).

The operations and their rows are operations.py; the request pipeline (trentd/pipeline) runs
them like KMS operations, from requests whose SigV4 scope names service ``sts`` (Query protocol:
form-encoded requests, XML answers, protocol/query.py). Credentials they issue are checked on
every later call by auth/temporary.py.
"""
