"""``rsi-bench models list`` and ``rsi-bench models ping MODEL``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click

from rsi_bench.errors import RsiBenchError
from rsi_bench.models.base import Message

PING: list[Message] = [{"role": "user", "content": "Reply with the single word: pong"}]


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """An rsi-bench error becomes one line and exit status 1, never a traceback."""
    try:
        yield
    except RsiBenchError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("models")
def models() -> None:
    """Model backends: what is available, and whether a model answers."""


@models.command("list")
def list_models() -> None:
    """Providers, local models and known prices (USD per million tokens)."""
    from rsi_bench.models import PROVIDERS
    from rsi_bench.models.local import KNOWN, cache_dir
    from rsi_bench.models.pricing import KNOWN_PRICES, PRICES_AS_OF

    click.echo("providers:")
    usage = {"anthropic": "anthropic/<model>  (ANTHROPIC_API_KEY)",
             "openai": "openai/<model>  (OPENAI_API_KEY, or --base-url for a compatible server)",
             "local": "local/<name> or local/<file.gguf>  (pip install 'rsi-bench[local]')",
             "replay": "replay/<run dir | run.sqlite | calls.jsonl>",
             "simulated": "simulated  (deterministic stand-in, not a real model)"}
    for name in PROVIDERS:
        click.echo(f"  {name:<10} {usage.get(name, '')}")
    click.echo("local models:")
    for name in KNOWN:
        state = "assembled" if (cache_dir() / f"{name}.gguf").exists() else "not assembled"
        click.echo(f"  local/{name:<24} {state}")
    click.echo(f"prices (USD per million tokens, as published {PRICES_AS_OF}; "
               "override in config):")
    click.echo(f"  {'model':<32} {'input':>8} {'output':>8} {'cache rd':>9} {'cache wr':>9}")
    for name, p in KNOWN_PRICES.items():
        click.echo(f"  {name:<32} {p.input:>8.3f} {p.output:>8.3f} {p.cache_read:>9.3f} "
                   f"{p.cache_write:>9.3f}")


@models.command("ping")
@click.argument("model")
@click.option("--base-url", help="an OpenAI-compatible server, for openai/<model>")
@click.option("--api-key-env", help="environment variable holding the key for --base-url")
@click.option("--timeout", type=click.FloatRange(0.1, 3600), default=60.0, show_default=True,
              help="seconds per attempt")
@click.option("--max-tokens", type=click.IntRange(1, 4096), default=16, show_default=True)
def ping(model: str, base_url: str | None, api_key_env: str | None, timeout: float,
         max_tokens: int) -> None:
    """Send one short request to MODEL and print the answer, usage, cost and latency."""
    from rsi_bench.models import get_model
    from rsi_bench.models.retry import RetryPolicy

    config: dict[str, Any] = {}
    provider = model.partition("/")[0]
    if provider in ("anthropic", "openai", "local"):
        config.update(timeout=timeout, retry=RetryPolicy(max_attempts=3))
    if base_url is not None:
        if provider != "openai":
            raise click.UsageError("--base-url applies to openai/<model> only")
        config.update(base_url=base_url, api_key_env=api_key_env)
    with _user_errors():
        backend = get_model(model, **config)
        try:
            completion = backend.complete(PING, max_tokens=max_tokens)
        finally:
            close = getattr(backend, "close", None)
            if close is not None:
                close()
    u = completion.usage
    cost = "unknown (no price)" if completion.cost_usd is None else f"${completion.cost_usd:.6f}"
    click.echo(f"{completion.model_id}: {completion.text.strip()!r}")
    click.echo(f"  tokens: {u.input_tokens} in, {u.output_tokens} out, {u.cache_read_tokens} "
               f"cache read, {u.cache_write_tokens} cache write; cost {cost}; "
               f"{completion.latency_s:.2f}s")
