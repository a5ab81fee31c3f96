"""Child process that serves one GGUF model over HTTP on 127.0.0.1 through xllamacpp.

Run by ``rsi_bench.models.local.LlamaServer``, never by hand. It serves until its standard
input reaches end of file, which happens when the parent closes the pipe or dies in any way
(even SIGKILL), so the server cannot outlive rsi-bench.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rsi_bench.models.llama_server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", default="local")
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_ctx = args.ctx * args.parallel  # llama.cpp splits the context between slots
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.ui = False
    params.warmup = True
    server = xllamacpp.Server(params)
    print(f"listening {server.listening_address}", flush=True)
    sys.stdin.buffer.read()  # blocks until the parent closes the pipe or dies
    os._exit(0)  # skip native destructors: nothing to flush, and they can be slow


if __name__ == "__main__":
    main()
