"""``rscovlm serve`` under load: N concurrent clients against the tiny model on 127.0.0.1.

For 1, 8 and 32 clients (each sends ``--requests`` greedy chat requests back to back, over raw
``http.client``), two servers in the same run: dynamic batching (``max_batch=8``) and the old
one-request-per-generate baseline (``max_batch=1``, i.e. a lock around ``generate``). Printed
per row: requests/s, p50/p99 latency, connection resets / errors, and the process's peak RSS.
Bounded: a fixed request count per client and a wall-clock limit per row.

    PYTHONPATH=. python benchmarks/serve_load.py [--requests 4] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rscovlm.model.backends.hf import HFBackend
from rscovlm.model.tiny import build_tiny_model
from rscovlm.pipelines.serve import ServerConfig, make_server

ROW_LIMIT_S = 300.0


def _client(port: int, n: int, body: bytes, lat: list[float], errors: list[str]) -> None:
    for _ in range(n):
        start = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ROW_LIMIT_S)
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status != 200:
                errors.append(f"HTTP {resp.status}")
                continue
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError) as exc:
            errors.append(type(exc).__name__)
            continue
        lat.append(time.perf_counter() - start)


def run_row(backend: Any, max_batch: int, clients: int, n: int, max_tokens: int) -> dict[str, Any]:
    """One server, ``clients`` concurrent clients of ``n`` requests each."""
    config = ServerConfig("tiny", port=0, max_batch=max_batch, max_queue=256, access_log=False)
    httpd = make_server(backend, config)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = int(httpd.server_address[1])
    message = {"role": "user", "content": "Describe the harbour."}
    body = json.dumps({"model": "tiny", "max_tokens": max_tokens, "messages": [message]}).encode()
    lat: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_client, args=(port, n, body, lat, errors)) for _ in range(clients)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(ROW_LIMIT_S)
    wall = time.perf_counter() - start
    calls = list(httpd.scheduler.calls)  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()
    lat.sort()
    return {
        "rps": len(lat) / wall,
        "p50": statistics.median(lat) if lat else float("nan"),
        "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
        "errors": len(errors),
        "mean_batch": sum(calls) / len(calls) if calls else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_model("qwen2_5_vl", Path(tmp) / "tiny", seed=0)
        backend = HFBackend(path, dtype="float32", batch_size=8)
        print(f"{'clients':>7} {'server':>9} {'req/s':>7} {'p50 s':>7} {'p99 s':>7} "
              f"{'errors':>6} {'batch':>5} {'peak RSS':>9}")  # fmt: skip
        for clients in (1, 8, 32):
            rows = {}
            for label, max_batch in (("one-lock", 1), ("batched", 8)):
                row = run_row(backend, max_batch, clients, args.requests, args.max_tokens)
                rows[label] = row
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"{clients:>7} {label:>9} {row['rps']:>7.2f} {row['p50']:>7.3f} "
                      f"{row['p99']:>7.3f} {row['errors']:>6} {row['mean_batch']:>5.1f} "
                      f"{rss:>7.0f}MB", flush=True)  # fmt: skip
            gain = rows["batched"]["rps"] / rows["one-lock"]["rps"]
            print(f"{clients:>7} {'speed-up':>9} {gain:>6.2f}x", flush=True)


if __name__ == "__main__":
    main()
