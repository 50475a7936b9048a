"""Load for ``benchmarks/serving.py``: POST one JSON body over and over, from a separate
process, with ``concurrency`` threads each holding one keep-alive connection.

The benchmark's Python load generator (``--load-generator python``; the default is ``wrk``
with ``serving_load.lua`` where ``wrk`` is installed): ``http.client`` (no third-party
client on the path), one connection per thread. Requests started during the warm-up are
not counted. It prints one JSON line: requests answered, errors, the seconds measured, and
latency quantiles in ms.

    python benchmarks/peers/serving_load.py URL BODY.json CONCURRENCY SECONDS WARMUP [TOKEN]
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    url, body_path, concurrency, seconds, warmup = sys.argv[1:6]
    token = sys.argv[6] if len(sys.argv) > 6 else ""
    target = urlsplit(url)
    with open(body_path, "rb") as handle:
        body = handle.read()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    begin = time.perf_counter() + float(warmup)
    end = begin + float(seconds)
    latencies: list[list[float]] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        mine: list[float] = []
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        failed = 0
        while True:
            started = time.perf_counter()
            if started >= end:
                break
            try:
                connection.request("POST", target.path, body, headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            finished = time.perf_counter()
            if started >= begin and finished <= end:
                if ok:
                    mine.append(finished - started)
                else:
                    failed += 1
        connection.close()
        with lock:
            latencies.append(mine)
            errors[0] += failed

    threads = [threading.Thread(target=worker) for _ in range(int(concurrency))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(x for mine in latencies for x in mine)

    def quantile(q: float) -> float:
        return every[min(len(every) - 1, int(q * len(every)))] * 1000 if every else float("nan")

    print(
        json.dumps(
            {
                "requests": len(every),
                "errors": errors[0],
                "seconds": float(seconds),
                "p50_ms": quantile(0.5),
                "p99_ms": quantile(0.99),
            }
        )
    )


if __name__ == "__main__":
    main()
