"""The benchmark driver behind ``bench/run`` (bench/README.md).

SigV4-signed KMS requests are built and signed by botocore, written out as raw HTTP/1.1 bytes,
checked once against the endpoint, and replayed by wrk over keep-alive connections.
"""
