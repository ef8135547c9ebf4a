"""Flower integration: Flower orchestrates the rounds, Cairn carries the updates.

Install with ``pip install "cairn[flower]"`` (Flower 1.41). Two pieces, one per side:

- :func:`cairn_mod` (ClientApp side, a Flower *mod*, the plug point SecAgg+ uses): after
  the ClientApp's ``@app.train`` handler has trained locally, the mod computes the update
  (local model − global model, flattened), and submits it through Cairn — clipped to the
  task's norm ``C``, secret-shared between the aggregators and proven norm-bounded. The
  reply Flower carries back holds no model: an empty ``ArrayRecord``, ``num-examples =
  1`` and the Cairn report id.
- :class:`CairnFedAvg` (ServerApp side, a ``flwr.serverapp.strategy.FedAvg``): in
  ``aggregate_train`` it asks the Cairn collector to release the round and moves the
  global model by the released noisy mean. The strategy never sees an individual update.

Only what went through Cairn counts: a reply without the mod's mark (a ClientApp that
sent its model in the clear) is logged and ignored, never averaged. An error reply
carries only the kind of error (``cairn: round_closed``, ``cairn: ValueError``); the
details, which can name a record count, stay in the client's log. Federated evaluation
is off by default (``fraction_evaluate=0``): Flower would carry each client's loss and
test-set size in the clear.

The Cairn round is the Flower round (``server_round``), and a Cairn round is released
once: running the same app again on the same task releases nothing new (the strategy
keeps its model and warns); use a fresh task (deployment) per training run. A round is released when
``aggregate_train`` runs, if at least ``min_clients`` reports are in; a ClientApp whose
report arrives after the release is refused by the aggregators (``round_closed``) and
its reply becomes a Flower error reply, which FedAvg drops. A round with too few
reports keeps the global model (a warning is logged); an exhausted budget raises
:class:`cairn.BudgetExceeded` and ends the run.

Record level (``unit = "record"``, DP-SGD across silos): the train handler returns, in
place of its model, one array under :data:`PER_RECORD` — an ``(n, d)`` array of the
sampled records' updates (e.g. negative gradients), ``d`` being the flattened model
size. The mod clips each row to ``C`` and submits their sum; give
``CairnFedAvg(expected_batch=q·N)`` (``N`` the public total number of records) so the
server divides by the expected batch, not by private counts.

Why a mod and a strategy (and not a workflow like SecAgg+): Flower 1.41's Message API
has no secure-aggregation workflow (SecAgg+ still needs the legacy ``LegacyContext``
stack). A mod keeps the user's ``@app.train`` handler unchanged, and a ``FedAvg``
subclass keeps ``strategy.start(...)``, evaluation and metrics as they are.

:func:`run_inprocess` runs a ServerApp and N ClientApps in one process (no Ray, no
network) for tests and the examples.
"""

from cairn.flower._inprocess import run_inprocess
from cairn.flower._mod import PER_RECORD, cairn_mod
from cairn.flower._records import flatten, unflatten
from cairn.flower._strategy import CairnFedAvg

__all__ = ["PER_RECORD", "CairnFedAvg", "cairn_mod", "flatten", "unflatten", "run_inprocess"]
