"""The request pipeline, above the API services (kms, sts) and below the HTTP edge and the console.

- services.py: the API services keyed by the SigV4 credential scope's service name, each with its
  botocore model, codec and operation table;
- core.py: ``Pipeline``, the steps of a request, once (``serve`` for the API route, ``call`` for
  the console's already-authenticated calls, ``control`` for trentd's own signed requests);
- asgi.py: the body read within its cap and deadline, and the answer.

docs/design.md, "The request pipeline", walks a request through it.
"""
