"""Broker concurrency: 64 calls through the whole path at concurrency 16, against serial.

Path measured: stdlib ModelClient -> unix socket -> BrokerServer -> Broker (budget check,
SQLite commit of every call) -> OpenAIModel (openai SDK) -> a loopback OpenAI-compatible HTTP
server that answers every request after a fixed 200 ms. Requests are distinct, so the cache
never answers. Target: 64 calls at concurrency 16 in under 1.5 s (the floor is 4 waves x 200
ms = 0.8 s).

Run: python benchmarks/broker_concurrency.py [--calls 64] [--concurrency 16] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rsi_bench.agent_client.model_client import ModelClient
from rsi_bench.broker import Broker, BrokerServer, Budget
from rsi_bench.models.openai import OpenAIModel
from rsi_bench.store import Store
from rsi_bench.store.runs import RunStore


def fake_openai(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers + body wait on a delayed ACK (40 ms)

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(latency)
            body = json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": "bench",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(calls: int, concurrency: int, latency: float, tag: str, workdir: Path) -> float:
    server = fake_openai(latency)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    with Store(workdir / f"{tag}.sqlite") as store:
        broker = Broker(OpenAIModel("bench", base_url=url), store,
                        {"solve": Budget(calls=calls)}, concurrency=concurrency)
        with BrokerServer(broker, workdir / f"{tag}.sock") as bs:
            client = ModelClient(str(bs.path), role="solve", task_id="bench")

            def one(i: int) -> None:
                client.complete([{"role": "user", "content": f"{tag} call {i}"}], max_tokens=8)

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                list(pool.map(one, range(calls)))
            elapsed = time.monotonic() - started
        recorded = store.read().execute("SELECT COUNT(*) FROM model_calls WHERE status='ok'")
        assert recorded.fetchone()[0] == calls, "every call must be in the store"
        refused = sum(e["detail"].get("count", 1)
                      for e in RunStore(store).events("broker_refused"))
        print(f"  {tag}: {refused} connection(s) refused by the socket's cap, then retried")
    server.shutdown()
    server.server_close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rsi-bench-broker-") as tmp:
        workdir = Path(tmp)
        serial = run(args.calls, 1, args.latency, "serial", workdir)
        concurrent = run(args.calls, args.concurrency, args.latency, "concurrent", workdir)
    floor = -(-args.calls // args.concurrency) * args.latency
    print(f"{args.calls} calls, server latency {args.latency * 1000:.0f} ms")
    print(f"  serial (concurrency 1):   {serial:7.3f} s")
    print(f"  concurrency {args.concurrency:<3}:         {concurrent:7.3f} s   "
          f"(floor {floor:.3f} s)")
    print(f"  ratio concurrent/serial:  {concurrent / serial:7.3f}   "
          f"(speed-up {serial / concurrent:.1f}x)")
    verdict = "meets" if concurrent < 1.5 else "MISSES"
    print(f"  target < 1.5 s: {verdict}")


if __name__ == "__main__":
    main()
