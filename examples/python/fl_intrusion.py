"""Federated intrusion detection on KDD Cup '99 with Flower + Cairn (record-level DP).

Five organisations (one KEEL file each) train one 7-class softmax regression by DP-SGD
across the silos. Every Flower round is one DP-SGD step and one Cairn round:

- each organisation's ClientApp Poisson-samples its training records at rate ``q``
  (``cairn.dp.poisson_sample``: exact coins from a CSPRNG), computes each sampled
  record's negative gradient and returns them under ``cairn.flower.PER_RECORD``;
- the ``cairn_mod`` mod clips every record's gradient to ``C``, sums them and submits the
  sum through Cairn (secret-shared between two aggregators, proven norm-bounded);
- the aggregators add one discrete Gaussian (``noise="aggregator"``) and each enforces
  the ε budget, accounted per **record** (RDP of the subsampled discrete Gaussian);
- ``CairnFedAvg`` divides the released sum by the expected batch ``q·N`` (``N``, the
  number of training records, is public) and takes an Adam step; the model reported is
  the average of the second half's iterates (post-processing: no privacy cost).

Run ``python examples/python/fl_intrusion.py --help``; README.md has the results.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

import cairn
from cairn.flower import PER_RECORD, CairnFedAvg, cairn_mod, run_inprocess

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import kdd  # noqa: E402
import model  # noqa: E402


class AdamCairn(CairnFedAvg):
    """CairnFedAvg with an Adam server step and iterate averaging over the second half."""

    def __init__(self, collector, *, lr, rounds, **kwargs):
        super().__init__(collector, **kwargs)
        self.lr, self.rounds = lr, rounds
        self.m = self.v = None
        self.average, self.averaged = None, 0

    def step(self, server_round, global_vector, update):
        gradient = -update  # the clients send negative gradients
        if self.m is None:
            self.m, self.v = np.zeros_like(gradient), np.zeros_like(gradient)
        self.m = 0.9 * self.m + 0.1 * gradient
        self.v = 0.999 * self.v + 0.001 * gradient**2
        m_hat = self.m / (1 - 0.9**server_round)
        v_hat = self.v / (1 - 0.999**server_round)
        new = global_vector - self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        if server_round > self.rounds // 2:
            self.averaged += 1
            if self.average is None:
                self.average = new.copy()
            else:
                self.average += (new - self.average) / self.averaged
        return new


def client_app(train_sets, classes, q, deployment):
    app = ClientApp()

    @app.train(mods=[cairn_mod((deployment.task_path, deployment.credentials))])
    def train(msg: Message, context: Context) -> Message:
        x, y = train_sets[int(context.node_config["partition-id"])]
        w = msg.content["arrays"]["w"].numpy().astype(np.float64)
        kept = cairn.dp.poisson_sample(len(y), q)
        gradients = -model.per_record_gradients(w, x[kept], y[kept], classes)
        reply = RecordDict({
            "arrays": ArrayRecord({PER_RECORD: Array(gradients.astype(np.float32))}),
            "metrics": MetricRecord({"num-examples": 1}),
        })
        return Message(reply, reply_to=msg)

    return app


def run(args, epsilon, seed):
    rng = np.random.default_rng(seed)
    orgs = kdd.load()
    classes = len(kdd.classes())
    splits = [kdd.split(o, args.test_fraction, rng) for o in orgs]
    train_sets = [s[0] for s in splits]
    x_test = np.vstack([s[1][0] for s in splits])
    y_test = np.concatenate([s[1][1] for s in splits])
    n_train = sum(len(y) for _, y in train_sets)
    dim = model.size(x_test.shape[1], classes)
    # An organisation whose sample exceeds max_records skips the step, which depends on
    # its data: that costs delta_cap more δ (cairn.dp.cap_delta, dp/src/cap.rs).
    delta_cap = 0.0
    if epsilon is not None:
        delta_cap = cairn.dp.cap_delta(
            records=max(len(y) for _, y in train_sets), rate=args.q,
            max_records=args.max_records, rounds=args.rounds, epsilon=epsilon)
        if delta_cap > args.delta:
            raise SystemExit(
                f"the cap of {args.max_records} records adds δ = {delta_cap:.1e} > "
                f"--delta {args.delta:g}: raise --max-records or lower --q")
    with cairn.LocalDeployment(
        dim=dim, clients=len(orgs), min_clients=len(orgs),
        noise="none" if epsilon is None else "aggregator",
        epsilon=epsilon or 1.0, delta=args.delta, rounds=args.rounds, clip=args.clip,
        unit="record", sampling_rate=args.q, max_records=args.max_records,
    ) as deployment:
        strategy = AdamCairn(
            deployment.collector(), lr=args.lr, rounds=args.rounds,
            expected_batch=args.q * n_train, fraction_evaluate=0.0,
            min_train_nodes=len(orgs), min_available_nodes=len(orgs),
        )
        server = ServerApp()

        @server.main()
        def main(grid: Grid, context: Context) -> None:
            start = ArrayRecord({"w": Array(np.zeros(dim, dtype=np.float64))})
            strategy.start(grid=grid, initial_arrays=start, num_rounds=args.rounds)

        started = time.time()
        run_inprocess(server, client_app(train_sets, classes, args.q, deployment), len(orgs),
                      seed=seed)
        elapsed = time.time() - started
    final = strategy.average
    predicted = model.predict(final, x_test, classes)
    last = strategy.releases[max(strategy.releases)]
    return {
        "epsilon": epsilon,
        "seed": seed,
        "macro_f1": model.macro_f1(y_test, predicted, classes),
        "accuracy": float(np.mean(predicted == y_test)),
        "epsilon_spent": last.epsilon_spent,
        "delta_cap": delta_cap,
        "rounds": len(strategy.releases),
        "seconds": elapsed,
    }


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epsilons", default="none,1,4,8",
                   help="comma-separated total ε per run; 'none' runs without noise")
    p.add_argument("--seeds", default="1", help="comma-separated data-split seeds")
    p.add_argument("--rounds", type=int, default=600, help="DP-SGD steps (= Flower rounds)")
    p.add_argument("--q", type=float, default=0.02, help="per-record Poisson sampling rate")
    p.add_argument("--clip", type=float, default=1.0, help="per-record L2 clipping norm C")
    p.add_argument("--max-records", type=int, default=100,
                   help="most sampled records one report may sum (more: the org skips)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate of the server")
    p.add_argument("--delta", type=float, default=1e-6)
    p.add_argument("--test-fraction", type=float, default=0.2)
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    logging.getLogger("flwr").setLevel(logging.ERROR)  # Flower logs every round
    epsilons = [None if e == "none" else float(e) for e in args.epsilons.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{'ε':>6} {'seed':>4} {'macro-F1':>9} {'accuracy':>9} {'ε spent':>8} {'s':>6}")
    results = []
    for epsilon in epsilons:
        for seed in seeds:
            r = run(args, epsilon, seed)
            results.append(r)
            eps = "none" if epsilon is None else f"{epsilon:g}"
            print(f"{eps:>6} {seed:>4} {r['macro_f1']:9.3f} {r['accuracy']:9.3f} "
                  f"{r['epsilon_spent']:8.3f} {r['seconds']:6.1f}", flush=True)
    return results


if __name__ == "__main__":
    main()
