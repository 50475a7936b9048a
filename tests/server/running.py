"""Run the real app with uvicorn in a thread on a free loopback port, for client tests, or
an ``opsloop`` command as a process of its own on one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_server(
    app, deadline_s: float = 20.0, health_path: str = "/api/v1/health", port: int = 0
) -> Iterator[str]:
    """Yield the base URL of ``app`` served on 127.0.0.1 once its health check answers, on
    a free port or on ``port`` (a server stopped there comes back at the same address)."""
    # The socket is bound here, so the port is ours before the server starts.
    # Named TCP, so asyncio turns Nagle's algorithm off on accepted connections (it checks
    # the protocol): without it every answer waited ~40 ms for the client's delayed ACK.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", proxy_headers=False)
    )
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


def started_process(
    *arguments: str, health: str = "/v2/health/live", deadline_s: float = 90.0
) -> tuple[subprocess.Popen, str]:
    """``python -m opsloop ARGUMENTS --port P`` on a free loopback port, once its health
    check answers: the process (its output piped) and its base URL. This checkout's code
    and the tests' modules are importable there (pickled test models refer to them)."""
    process, url = launched_process(*arguments)
    wait_answering(process, url, health, deadline_s)
    return process, url


def launched_process(*arguments: str) -> tuple[subprocess.Popen, str]:
    """:func:`started_process` without waiting for its health check, so that several
    processes start at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    process = subprocess.Popen(
        [sys.executable, "-m", "opsloop", *arguments, "--port", str(port)],
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_answering(
    process: subprocess.Popen, url: str, health: str = "/v2/health/live", deadline_s: float = 90.0
) -> None:
    """Wait until ``url``'s health check answers; a process that ended fails with its
    output, one that is still silent at the deadline is killed."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if httpx.get(f"{url}{health}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stdout.read().decode()
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"the server did not answer within {deadline_s} s")
        time.sleep(0.05)
