"""A stand-in for the llama.cpp server child: the same command line and lifetime (serves until
stdin closes), ``/health`` and enough of ``/v1/chat/completions`` (with llama.cpp's
``timings``) for the openai SDK. Its answer is a function of the request, like a model at
temperature 0. Behaviours, from the environment:

- ``FAKE_LLAMA_DIE_ON_CALL=1``: log an error and exit on every chat request, as a server that
  keeps crashing does;
- ``FAKE_LLAMA_HOLD=DIR``: the first chat request (of any server sharing DIR) creates
  ``DIR/held`` and is answered only once ``DIR/release`` exists, so a test can kill the server
  mid-call or queue a second call behind it;
- a request whose last message is ``bad`` gets HTTP 400, as a malformed request would."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def answer(body: dict[str, Any]) -> dict[str, Any]:
    last = body["messages"][-1]["content"]
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"echo: {last}"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            "timings": {"predicted_n": 3, "predicted_ms": 100.0, "predicted_per_second": 30.0}}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._send(200, {"status": "ok"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if os.environ.get("FAKE_LLAMA_DIE_ON_CALL") == "1":
            print("0.01.000 E fake_server: ggml_abort: out of memory in slot 0", flush=True)
            os._exit(3)
        if body["messages"][-1]["content"] == "bad":
            self._send(400, {"error": {"message": "bad request", "type": "invalid_request"}})
            return
        hold = os.environ.get("FAKE_LLAMA_HOLD")
        if hold and not os.path.exists(os.path.join(hold, "held")):
            open(os.path.join(hold, "held"), "w").close()
            while not os.path.exists(os.path.join(hold, "release")):
                time.sleep(0.02)
        self._send(200, answer(body))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening 127.0.0.1:{args.port}", flush=True)
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    main()
