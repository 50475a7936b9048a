"""Run the real app with uvicorn in a thread on a free loopback port, for client tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn


@contextmanager
def running_server(
    app, deadline_s: float = 20.0, health_path: str = "/api/v1/health"
) -> Iterator[str]:
    """Yield the base URL of ``app`` served on 127.0.0.1 once its health check answers."""
    # The socket is bound here, so the port is ours before the server starts.
    # Named TCP, so asyncio turns Nagle's algorithm off on accepted connections (it checks
    # the protocol): without it every answer waited ~40 ms for the client's delayed ACK.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + deadline_s
    try:
        while True:
            try:
                if httpx.get(f"{url}{health_path}", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if not thread.is_alive():
                raise RuntimeError("the server thread stopped before answering its health check")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server at {url} did not answer within {deadline_s} s")
            time.sleep(0.02)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=deadline_s)
        listener.close()
