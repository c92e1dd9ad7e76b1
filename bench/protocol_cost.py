"""CPU cost per request of trentd's guarded HTTP protocol (http/limits.py) against uvicorn's
httptools protocol as shipped: both parse and answer the same signed-looking request through a
fake transport, so neither the network nor the machine's load enters the figure
(docs/operations.md, "Limits and deadlines"). Run: ``python bench/protocol_cost.py``."""

import asyncio
import time

from uvicorn.config import Config
from uvicorn.server import ServerState
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from trentd.http.limits import GuardedHttpToolsProtocol

async def app(scope, receive, send):
    if scope["type"] != "http": return
    m = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

class T(asyncio.Transport):
    def __init__(self): super().__init__(); self.out = 0; self.closing = False
    def write(self, d): self.out += len(d)
    def close(self): self.closing = True
    def is_closing(self): return self.closing
    def get_extra_info(self, name, default=None): return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)
    def pause_reading(self): pass
    def resume_reading(self): pass

REQ = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1:4599\r\nContent-Type: application/x-amz-json-1.1\r\n"
       b"X-Amz-Target: TrentService.Encrypt\r\nX-Amz-Date: 20260101T000000Z\r\n"
       b"Authorization: AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + b"a"*64 + b"\r\n"
       b"Content-Length: 20\r\n\r\n" + b"x"*20)

async def run(cls, n):
    config = Config(app=app, http=cls, lifespan="off", log_level="warning", access_log=False); config.load()
    state = ServerState()
    p = cls(config=config, server_state=state, app_state={})
    t = T(); p.connection_made(t)
    for _ in range(200):
        p.data_received(REQ); await asyncio.sleep(0); await asyncio.sleep(0)
    t0 = time.process_time()
    for _ in range(n):
        p.data_received(REQ); await asyncio.sleep(0); await asyncio.sleep(0)
    return (time.process_time() - t0) / n * 1e6

async def main():
    res = {"stock": [], "guarded": []}
    for _ in range(5):
        res["stock"].append(await run(HttpToolsProtocol, 20000))
        res["guarded"].append(await run(GuardedHttpToolsProtocol, 20000))
    for k, v in res.items(): print(k, "µs/request CPU: min %.2f median %.2f" % (min(v), sorted(v)[2]))
if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
