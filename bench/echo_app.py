"""A bare ASGI app on trentd's server stack: the ceiling for trentd's throughput.

It reads the request body, parses it as JSON and answers a small JSON body with HTTP 200 —
no signature check, no key, no crypto, no audit. It is served by uvicorn exactly as
``trentd serve`` serves trentd (src/trentd/admin/serve.py): trentd's guarded httptools protocol,
uvloop, no access log, no server header, the same keep-alive timeout and concurrency limit, and
``--workers N`` processes. So ``bench/run --endpoint ECHO --b-endpoint TRENTD`` measures what
trentd's own work costs on top of the HTTP stack (the issue's "≥ 60% of the echo app").

Any signed request bench/run sends is answered 200: CreateKey and Encrypt answers carry no key
and no ciphertext, and bench/run then uses placeholders of the same size.

Run: ``python bench/echo_app.py --port 4600 --workers 2`` (from the project's .venv).
"""

from __future__ import annotations

import argparse
import json
import sys

try:  # trentd parses with orjson; so does the echo app when it is there
    from orjson import loads as parse_json
except ImportError:
    parse_json = json.loads

ANSWER_HEADERS = [(b"content-type", b"application/x-amz-json-1.1")]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    try:
        request = parse_json(body) if body else {}
    except ValueError:
        request = None
    answer = b'{"echo":%d,"fields":%d}' % (len(body), len(request) if isinstance(request, dict) else -1)
    await send({"type": "http.response.start", "status": 200,
                "headers": ANSWER_HEADERS + [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _http_protocol() -> str:
    try:
        from trentd.http.limits import PROTOCOL
    except ImportError:
        print("echo_app: trentd is not importable; serving with uvicorn's stock httptools protocol", file=sys.stderr)
        return "httptools"
    return PROTOCOL


def main() -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4600)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The options of trentd serve (admin/serve.py: _prepare and _edge_options) without TLS. Workers are spawned
    # processes that import the app by name: this file's directory is on their sys.path too.
    uvicorn.run("echo_app:app", host=args.host, port=args.port, workers=args.workers if args.workers > 1 else None,
                http=_http_protocol(), log_level="warning", access_log=False, server_header=False,
                timeout_keep_alive=5, lifespan="on", limit_concurrency=1000, proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
