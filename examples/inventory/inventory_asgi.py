"""The inventory service as a plain ASGI app, for uvicorn: same endpoints, same answers.

Run it with ``python inventory_asgi.py --port 0 --host 127.0.0.1``; like
``inventory_service.py``, the first line it prints on stdout is the port it bound. Or serve
``inventory_asgi:app`` with any ASGI server (each process has its own in-memory data).

Routing, validation and data come from ``inventory_service.py`` (:func:`route`), so both
servers answer alike; the one difference is a method neither serves (PUT, HEAD, ...), which
the stdlib server answers with its own 501 page and this one with a 501 JSON error.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inventory_service import Inventory, metrics_text, parse_json_body, route

SERVED = {"GET", "POST", "PATCH", "DELETE"}
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def make_app(inventory: Inventory | None = None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app over ``inventory`` (a fresh, empty one by default)."""
    inv = inventory if inventory is not None else Inventory()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method = scope["method"]
        chunks = []
        more = True
        while more:  # the whole body, before answering (the stdlib server reads it the same way)
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if method == "GET" and scope["path"] == "/metrics":
            data = metrics_text(inv)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain; version=0.0.4"),
                                    (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})
            return
        if method in SERVED:
            body_bytes = b"".join(chunks)
            status, body = route(inv, method, scope["path"], scope["query_string"].decode("latin-1"),
                                 lambda: parse_json_body(body_bytes))
        else:
            status, body = 501, {"error": "unsupported_method", "details": [method]}
        data = b"" if body is None else json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return app


app = make_app()


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    args = parser.parse_args(argv)
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every keep-alive answer waits ~40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)  # connections that come before uvicorn is up wait in the backlog
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, workers=1, log_level="warning", access_log=False,
                            lifespan="on", backlog=2048)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
