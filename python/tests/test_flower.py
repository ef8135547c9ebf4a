"""The Flower integration: 5 ClientApps, 3 rounds, through Cairn nodes in this process."""

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

import cairn
from cairn.flower import CairnFedAvg, cairn_mod, flatten, run_inprocess

NODES, ROUNDS, FEATURES = 5, 3, 6


def partition(pid):
    """Each node's own data: 40 records (equal sizes: FedAvg then weights equally)."""
    rng = np.random.default_rng(100 + pid)
    x = rng.normal(size=(40, FEATURES))
    y = (x @ np.linspace(-1, 1, FEATURES) + 0.2 * pid > 0).astype(np.float64)
    return x, y


def initial_arrays():
    return ArrayRecord({
        "w": Array(np.zeros((1, FEATURES), dtype=np.float32)),
        "b": Array(np.zeros((1,), dtype=np.float32)),
    })


def client_app(mods=(), fail=None):
    """Local logistic regression, 5 gradient steps. ``fail=(pid, round)`` raises there."""
    app = ClientApp()

    @app.train(mods=list(mods))
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"])
        if fail is not None and fail == (pid, rnd):
            raise RuntimeError("this node drops out")
        arrays = msg.content["arrays"]
        w, b = arrays["w"].numpy().astype(np.float64), arrays["b"].numpy().astype(np.float64)
        x, y = partition(pid)
        for _ in range(5):
            p = 1 / (1 + np.exp(-(x @ w[0] + b[0])))
            w = w - 0.1 * ((p - y) @ x / len(y))[None, :]
            b = b - 0.1 * np.array([np.mean(p - y)])
        out = ArrayRecord({"w": Array(w.astype(np.float32)), "b": Array(b.astype(np.float32))})
        metrics = MetricRecord({"num-examples": len(y), "loss": 0.5})
        return Message(RecordDict({"arrays": out, "metrics": metrics}), reply_to=msg)

    return app


def server_app(strategy, result):
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        out = strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=ROUNDS)
        result["arrays"] = out.arrays

    return app


class Watching(CairnFedAvg):
    """Records what the strategy receives from the ClientApps."""

    seen = []

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        self.seen.extend(replies)
        return super().aggregate_train(server_round, replies)


def fedavg_kwargs(nodes=NODES):
    return dict(fraction_evaluate=0.0, min_train_nodes=nodes, min_available_nodes=nodes)


@pytest.fixture
def deployment(tmp_path):
    with cairn.LocalDeployment(
        dim=FEATURES + 1, clients=NODES, min_clients=4, noise="none", clip=1.0,
        directory=tmp_path / "deploy",
    ) as d:
        yield d


def test_three_rounds_equal_plaintext_fedavg_and_the_server_sees_no_update(deployment):
    plain = {}
    run_inprocess(server_app(FedAvg(**fedavg_kwargs()), plain), client_app(), NODES)

    through_cairn = {}
    strategy = Watching(deployment.collector(), **fedavg_kwargs())
    mod = cairn_mod((deployment.task_path, deployment.credentials))
    run_inprocess(server_app(strategy, through_cairn), client_app(mods=[mod]), NODES)

    ours, _ = flatten(through_cairn["arrays"])
    theirs, _ = flatten(plain["arrays"])
    assert np.linalg.norm(theirs) > 0.1  # the model moved
    # Equal up to the fixed-point rounding of 5 reports (2^-f each, f = 14 here).
    np.testing.assert_allclose(ours, theirs, atol=5 * 2.0**-12)
    assert sorted(strategy.releases) == [1, 2, 3]
    assert all(r.count == NODES for r in strategy.releases.values())
    # The strategy received 15 replies, none with a model or a metric of its own.
    assert len(Watching.seen) == NODES * ROUNDS
    for reply in Watching.seen:
        (arrays,) = reply.content.array_records.values()
        assert len(arrays) == 0
        (metrics,) = reply.content.metric_records.values()
        assert dict(metrics) == {"num-examples": 1}
        assert len(reply.content["cairn"]["report-id"]) == 32


def test_a_dropout_still_releases_and_a_straggler_is_refused(deployment):
    result = {}
    strategy = CairnFedAvg(deployment.collector(), **fedavg_kwargs())
    mod = cairn_mod((deployment.task_path, deployment.credentials))
    run_inprocess(server_app(strategy, result), client_app(mods=[mod], fail=(2, 2)), NODES)
    assert [strategy.releases[r].count for r in (1, 2, 3)] == [5, 4, 5]

    # Node 2's round-2 report arriving after the release: the aggregators refuse it and
    # the mod answers Flower with an error reply (FedAvg drops those).
    late = Message(
        RecordDict({"arrays": initial_arrays(), "config": ConfigRecord({"server-round": 2})}),
        dst_node_id=7, message_type="train",
    )
    context = Context(run_id=1, node_id=7, node_config={"partition-id": 2, "num-partitions": 5},
                      state=RecordDict(), run_config={})
    reply = mod(late, context, client_app())
    assert reply.has_error()
    assert "round_closed" in reply.error.reason


def test_too_few_reports_keep_the_global_model(tmp_path):
    with cairn.LocalDeployment(
        dim=FEATURES + 1, clients=NODES, min_clients=NODES, noise="none",
        directory=tmp_path / "deploy",
    ) as d:
        result = {}
        strategy = CairnFedAvg(d.collector(), **fedavg_kwargs())
        mod = cairn_mod((d.task_path, d.credentials))
        run_inprocess(server_app(strategy, result), client_app(mods=[mod], fail=(0, 3)), NODES)
        assert sorted(strategy.releases) == [1, 2]
        after_two, _ = flatten(result["arrays"])
        moved = flatten(initial_arrays())[0] + (
            strategy.releases[1].sum / 5 + strategy.releases[2].sum / 5
        )
        np.testing.assert_allclose(after_two, moved, atol=1e-6)


def test_with_noise_the_budget_is_spent_and_enforced(tmp_path):
    with cairn.LocalDeployment(
        dim=FEATURES + 1, clients=NODES, min_clients=NODES, noise="aggregator",
        epsilon=4.0, rounds=2, directory=tmp_path / "deploy",
    ) as d:
        strategy = CairnFedAvg(d.collector(), **fedavg_kwargs())
        mod = cairn_mod((d.task_path, d.credentials))
        with pytest.raises(cairn.BudgetExceeded):
            run_inprocess(server_app(strategy, {}), client_app(mods=[mod]), NODES)
        assert sorted(strategy.releases) == [1, 2]
        assert strategy.releases[2].epsilon_spent == pytest.approx(4.0, rel=1e-6)


def test_a_client_without_the_mod_is_ignored_and_error_replies_say_only_the_kind(deployment, caplog):
    """One ClientApp sends its model in the clear: the strategy never uses it. A
    client whose update is refused answers with the kind of error only."""
    plain_node, bad_node = 4, 3
    mod = cairn_mod((deployment.task_path, deployment.credentials))
    honest, plain = client_app(mods=[mod]), client_app()

    class Mixed:
        def __call__(self, msg, context):
            pid = int(context.node_config["partition-id"])
            if pid == plain_node:
                return plain(msg, context)
            if pid == bad_node:
                return mod(msg, context, lambda m, c: _nan_reply(m))
            return honest(msg, context)

    strategy = Watching(deployment.collector(), **fedavg_kwargs())
    Watching.seen = []
    with caplog.at_level("WARNING"):
        run_inprocess(server_app(strategy, {}), Mixed(), NODES)
    # Three reports per round went through Cairn: released (min_clients = 4 → not);
    # with 3 < 4 nothing is released and nothing in the clear was averaged.
    assert strategy.releases == {}
    assert "did not go through Cairn" in caplog.text
    errors = [r for r in Watching.seen if r.has_error()]
    assert len(errors) == ROUNDS
    # The server learns the kind of refusal, not which value was NaN.
    assert {e.error.reason for e in errors} == {"cairn: ValueError"}
    reply = mod(_train_message(1), _context(bad_node), lambda m, c: _nan_reply(m))
    assert reply.has_error()
    assert reply.error.reason == "cairn: ValueError"


def test_a_server_round_outside_cairns_rounds_gets_an_error_reply(deployment):
    """A server (malicious or buggy) sending round -1 or 2**32: the client answers with
    the kind of error, as for any bad value, instead of raising through the mod."""
    mod = cairn_mod((deployment.task_path, deployment.credentials))

    def fine_reply(msg, context):
        metrics = MetricRecord({"num-examples": 1})
        return Message(RecordDict({"arrays": initial_arrays(), "metrics": metrics}),
                       reply_to=msg)

    for rnd in (-1, 2**32):
        reply = mod(_train_message(rnd), _context(0), fine_reply)
        assert reply.has_error(), rnd
        assert reply.error.reason == "cairn: ValueError"


def _train_message(rnd):
    return Message(
        RecordDict({"arrays": initial_arrays(), "config": ConfigRecord({"server-round": rnd})}),
        dst_node_id=7, message_type="train",
    )


def _context(pid):
    return Context(run_id=1, node_id=100 + pid, node_config={"partition-id": pid, "num-partitions": 5},
                   state=RecordDict(), run_config={})


def _nan_reply(msg):
    bad = ArrayRecord({"w": Array(np.full((1, FEATURES), np.nan, dtype=np.float32)),
                       "b": Array(np.zeros((1,), dtype=np.float32))})
    return Message(RecordDict({"arrays": bad, "metrics": MetricRecord({"num-examples": 1})}),
                   reply_to=msg)


def test_a_rerun_on_a_released_task_changes_nothing(deployment):
    mod = cairn_mod((deployment.task_path, deployment.credentials))
    first = CairnFedAvg(deployment.collector(), **fedavg_kwargs())
    run_inprocess(server_app(first, {}), client_app(mods=[mod]), NODES)
    assert sorted(first.releases) == [1, 2, 3]
    again, result = CairnFedAvg(deployment.collector(), **fedavg_kwargs()), {}
    run_inprocess(server_app(again, result), client_app(mods=[mod]), NODES)
    assert again.releases == {}
    # No round produced a model (Flower's Result keeps none): the old releases were
    # not applied again.
    assert len(result["arrays"]) == 0
