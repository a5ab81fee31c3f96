"""The host-side model broker: budgets, recording, cache and concurrency, behind a socket."""

from rsi_bench.broker.broker import Broker, BrokerAnswer
from rsi_bench.broker.budget import Budget
from rsi_bench.broker.server import BrokerServer

__all__ = ["Broker", "BrokerAnswer", "BrokerServer", "Budget"]
