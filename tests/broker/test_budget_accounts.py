"""A loop's solve budget is two accounts, dev and hidden: what held-out solves spend can never
be read off a dev solve's refusals (the only solves whose results the loop feeds back)."""

from __future__ import annotations

from pathlib import Path

import pytest
from provider_fakes import FakeProvider, Reply, openai_chat

from rsi_bench.broker import Broker, Budget
from rsi_bench.broker.budget import split_solve_budget
from rsi_bench.models.base import BudgetExceeded, Message
from rsi_bench.models.openai import OpenAIModel
from rsi_bench.store import Store

SPLITS = {"t/dev": "dev", "t/held": "heldout", "t/sealed": "sealed"}


def ask(n: int) -> list[Message]:
    return [{"role": "user", "content": f"request {n}"}]


def outcomes(broker: Broker, task: str, n: int, start: int = 0) -> list[str]:
    out = []
    for i in range(start, start + n):
        try:
            broker.complete("solve", ask(i), {"max_tokens": 10}, task_id=task, generation=1)
            out.append("ok")
        except BudgetExceeded:
            out.append("refused")
    return out


def dev_outcomes(tmp_path: Path, hidden_calls: int, name: str) -> list[str]:
    with FakeProvider(Reply(body=openai_chat())) as fake, Store(tmp_path / name) as store:
        broker = Broker(OpenAIModel("gpt-4o", base_url=fake.url + "/v1"), store,
                        {"solve": Budget(calls=6)}, splits=SPLITS, dev_share=0.5)
        outcomes(broker, "t/held", hidden_calls, start=100)
        return outcomes(broker, "t/dev", 5)


def test_dev_solves_are_refused_alike_whatever_hidden_solves_spent(tmp_path: Path) -> None:
    quiet = dev_outcomes(tmp_path, 0, "quiet.sqlite")
    busy = dev_outcomes(tmp_path, 6, "busy.sqlite")  # hidden solves try to spend everything
    assert quiet == busy == ["ok", "ok", "ok", "refused", "refused"]


def test_hidden_solves_share_one_account_and_refusals_name_it(tmp_path: Path) -> None:
    with FakeProvider(Reply(body=openai_chat())) as fake, Store(tmp_path / "r.sqlite") as store:
        broker = Broker(OpenAIModel("gpt-4o", base_url=fake.url + "/v1"), store,
                        {"solve": Budget(calls=4)}, splits=SPLITS, dev_share=0.5)
        assert outcomes(broker, "t/held", 1) == ["ok"]
        assert outcomes(broker, "t/sealed", 1, start=10) == ["ok"]
        with pytest.raises(BudgetExceeded, match=r"role 'solve' \(hidden solves\): call budget 2"):
            broker.complete("solve", ask(20), {"max_tokens": 10}, task_id="t/held")
        assert outcomes(broker, "t/dev", 2, start=30) == ["ok", "ok"]


def test_a_resumed_run_keeps_each_accounts_spending(tmp_path: Path) -> None:
    with FakeProvider(Reply(body=openai_chat())) as fake, Store(tmp_path / "r.sqlite") as store:
        model = OpenAIModel("gpt-4o", base_url=fake.url + "/v1")
        first = Broker(model, store, {"solve": Budget(calls=4)}, splits=SPLITS, dev_share=0.5)
        assert outcomes(first, "t/held", 2) == ["ok", "ok"]
        again = Broker(model, store, {"solve": Budget(calls=4)}, splits=SPLITS, dev_share=0.5)
        assert outcomes(again, "t/held", 1, start=10) == ["refused"]
        assert outcomes(again, "t/dev", 3, start=20) == ["ok", "ok", "refused"]


def test_the_two_accounts_never_add_up_to_more_than_the_budget() -> None:
    accounts = split_solve_budget({"solve": Budget(calls=5, tokens=1001, usd=1.0),
                                   "improve": Budget(calls=3)}, dev_share=0.4)
    dev, hidden = accounts["solve:dev"], accounts["solve:hidden"]
    assert (dev.calls, hidden.calls) == (2, 3)
    assert (dev.tokens, hidden.tokens) == (400, 601)
    assert dev.usd == pytest.approx(0.4) and dev.usd + hidden.usd == pytest.approx(1.0)
    assert accounts["improve"] == Budget(calls=3) and "solve" not in accounts
    unlimited = split_solve_budget({}, dev_share=0.5)
    assert unlimited["solve:dev"] == unlimited["solve:hidden"] == Budget()
