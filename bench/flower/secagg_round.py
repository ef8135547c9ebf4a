"""One Flower round of N clients at dimension d, for `cairn-bench`'s Flower anchor.

    python bench/flower/secagg_round.py --clients 10 --dim 100000 --shares 3

Runs Flower 1.41's own SecAgg+ workflow (`SecAggPlusWorkflow` on the ServerApp side,
`secaggplus_mod` on each ClientApp) or, with `--shares 0`, plain FedAvg without secure
aggregation, for one round. Every client sends a fixed float32 update of `--dim`
values, client k's with 4.0 added at coordinate k. The ServerApp and the N ClientApps run in this process, messages crossing as
Flower's protobuf bytes, through the `InProcessGrid` of Cairn's Python package
(`python/python/cairn/flower/_inprocess.py`, loaded from its file so that this
script needs only `flwr` and `numpy`, not a built Cairn). That spares Flower every
network cost; its ClientApps run one after another, on one core.

Prints one JSON object: the fit round's wall time (`round_secs`, SecAgg+'s four
stages or FedAvg's one, the server's aggregation included), the bytes every client
sent during it (`upload_bytes_per_client`, Flower's protobuf encoding of the
replies), and the settings. `--shares N` with N = `--clients` is SecAgg+ with every
client sharing with every other one; `--threshold` defaults to 2 for 3 shares, as
Flower's example sets it, and to a majority of the shares otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import pathlib
import sys
import time

import numpy as np
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.common import ndarrays_to_parameters
from flwr.common.serde import message_to_proto
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD
from flwr.server.workflow.default_workflows import default_fit_workflow

#: What each client adds at its own coordinate (the update stays within Flower's default
#: clipping range of 8).
MARKER = 4.0

INPROCESS = (pathlib.Path(__file__).resolve().parents[2]
             / "python" / "python" / "cairn" / "flower" / "_inprocess.py")


def load_inprocess():
    spec = importlib.util.spec_from_file_location("cairn_flower_inprocess", INPROCESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Timed:
    """A fit workflow that records its own wall time and resets the grid's counters."""

    def __init__(self, inner):
        self.inner = inner
        self.secs = None

    def __call__(self, grid, context):
        grid.reset_counters()
        start = time.perf_counter()
        self.inner(grid, context)
        self.secs = time.perf_counter() - start - grid.counting_secs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--shares", type=int, default=3,
                        help="SecAgg+ shares per client (0: plain FedAvg, no SecAgg+)")
    parser.add_argument("--threshold", type=int, default=None)
    args = parser.parse_args(argv)
    # Flower 1.41 takes an integer num_shares only above 2 (1 would mean "all").
    if args.clients < 3 or args.dim < 1 or not (args.shares == 0
                                                 or 3 <= args.shares <= args.clients):
        parser.error("need --clients ≥ 3, --dim ≥ 1 and --shares 0 or 3..=--clients")
    threshold = args.threshold
    if threshold is None:
        threshold = 2 if args.shares == 3 else args.shares // 2 + 1
    logging.getLogger("flwr").setLevel(logging.WARNING)

    inprocess = load_inprocess()

    class CountingGrid(inprocess.InProcessGrid):
        """Counts the protobuf bytes of every reply (a client's upload)."""

        def reset_counters(self):
            self.upload_bytes = 0
            self.counting_secs = 0.0

        def _deliver(self, msg):
            reply = super()._deliver(msg)
            start = time.perf_counter()
            self.upload_bytes += message_to_proto(reply).ByteSize()
            self.counting_secs += time.perf_counter() - start
            return reply

    update = ((np.arange(args.dim) % 7 - 3) * 0.1).astype(np.float32)

    class Fixed(NumPyClient):
        """Client k sends the update with 4.0 added at coordinate k mod d: each client's
        marker shows in the mean, so a lost client shows too."""

        def __init__(self, k):
            self.k = k

        def fit(self, parameters, config):
            mine = update.copy()
            mine[self.k % args.dim] += np.float32(MARKER)
            return [mine], 1, {}

    client_app = ClientApp(
        client_fn=lambda context: Fixed(int(context.node_config["partition-id"])).to_client(),
        mods=[secaggplus_mod] if args.shares else [],
    )
    fit = (SecAggPlusWorkflow(num_shares=args.shares, reconstruction_threshold=threshold)
           if args.shares else default_fit_workflow)
    timed = Timed(fit)
    result = {}

    server_app = ServerApp()

    @server_app.main()
    def server(grid, context):
        strategy = FedAvg(
            fraction_fit=1.0, fraction_evaluate=0.0,
            min_fit_clients=args.clients, min_available_clients=args.clients,
            initial_parameters=ndarrays_to_parameters([np.zeros(args.dim, np.float32)]),
        )
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=1),
                               strategy=strategy)
        DefaultWorkflow(fit_workflow=timed)(grid, legacy)
        result["upload_bytes"] = grid.upload_bytes
        record = legacy.state.array_records[MAIN_PARAMS_RECORD]
        result["model"] = np.concatenate([a.numpy().ravel() for a in record.values()])

    grid = CountingGrid(client_app, args.clients)
    grid.reset_counters()
    # `run_inprocess` builds its own grid; this one counts bytes, so run it the same way.
    inprocess.TaskIdentity.task_id = 1
    inprocess.TaskIdentity.run_id = grid.run.run_id
    inprocess.TaskIdentity.node_id = inprocess.SUPERLINK_NODE_ID
    context = inprocess.Context(run_id=grid.run.run_id, node_id=0, node_config={},
                                state=inprocess.RecordDict(), run_config={})
    server_app(grid=grid, context=context)
    if timed.secs is None:
        print("the fit round did not run", file=sys.stderr)
        return 1
    # The aggregate is the clients' mean: the update plus MARKER/N at each client's
    # coordinate. SecAgg+'s quantisation (Flower's default ranges and max_weight) moves
    # it by up to about 2e-3; a lost client moves its coordinate by MARKER/N ≥ 0.04 (N ≤
    # 100), a garbled sum by more.
    markers = np.bincount(np.arange(args.clients) % args.dim, minlength=args.dim)
    expected = update + np.float32(MARKER / args.clients) * markers.astype(np.float32)
    error = float(np.max(np.abs(result["model"] - expected)))
    if error > 0.01:
        print(f"the aggregate is off by {error}: {result['model'][:4]} vs {expected[:4]}",
              file=sys.stderr)
        return 1
    print(json.dumps({
        "system": "flower-secagg+" if args.shares else "flower-fedavg",
        "flwr": __import__("flwr").__version__,
        "clients": args.clients,
        "d": args.dim,
        "shares": args.shares,
        "threshold": threshold if args.shares else None,
        "round_secs": timed.secs,
        "upload_bytes_per_client": result["upload_bytes"] / args.clients,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
