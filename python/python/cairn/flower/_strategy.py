"""The ServerApp side: FedAvg whose aggregate is the sum Cairn releases."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Optional

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

import cairn
from cairn.flower._records import Layout, flatten, unflatten

log = logging.getLogger("cairn.flower")


class CairnFedAvg(FedAvg):
    """``FedAvg`` whose aggregate comes from Cairn, never from the replies.

    ``collector`` is a :class:`cairn.Collector` of the task the ClientApps' :func:`cairn_mod`
    submits to. In round ``r`` the new global model is
    ``global + server_learning_rate · released_sum / divisor``, where ``divisor`` is the
    number of reports in the release (client level: the unweighted mean of the clipped
    updates, each organisation one vote, since sizes are not disclosed) or
    ``expected_batch`` when given (record level: ``q·N``). Override :meth:`step` for
    another server optimizer.

    Every keyword argument of ``FedAvg`` is accepted (``fraction_train``,
    ``min_train_nodes``, …). ``releases[r]`` keeps each round's :class:`cairn.Release`;
    the train metrics of a round gain ``cairn-count``, ``cairn-epsilon-spent`` and
    ``cairn-epsilon-remaining``.
    """

    def __init__(
        self,
        collector: cairn.Collector,
        *,
        server_learning_rate: float = 1.0,
        expected_batch: Optional[float] = None,
        **fedavg: object,
    ) -> None:
        # Flower's federated evaluation sends each client's loss and test-set size in
        # the clear, outside Cairn: off unless asked for.
        fedavg.setdefault("fraction_evaluate", 0.0)
        super().__init__(**fedavg)
        if expected_batch is not None and not expected_batch > 0:
            raise ValueError(f"expected_batch must be positive, got {expected_batch}")
        self.collector = collector
        self.server_learning_rate = server_learning_rate
        self.expected_batch = expected_batch
        self.releases: dict[int, cairn.Release] = {}
        self._sent: dict[int, tuple[np.ndarray, Layout]] = {}

    def step(self, server_round: int, global_vector: np.ndarray, update: np.ndarray) -> np.ndarray:
        """The new global model from the released mean ``update``: by default
        ``global + server_learning_rate · update``. Override it for a server optimizer
        (momentum, Adam): it sees only released values, so it costs no privacy."""
        return global_vector + self.server_learning_rate * update

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._sent[server_round] = flatten(arrays)
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[Optional[ArrayRecord], Optional[MetricRecord]]:
        global_vector, layout = self._sent.pop(server_round)
        replies = [r for r in replies if not r.has_error()]
        through_cairn = [r for r in replies if _went_through_cairn(r)]
        if len(through_cairn) < len(replies):
            # A ClientApp without cairn_mod sent its model in the clear: never used.
            log.error(
                "round %s: %d replies did not go through Cairn (no cairn_mod on those "
                "ClientApps?); they are ignored",
                server_round, len(replies) - len(through_cairn),
            )
        if not through_cairn:
            log.warning(
                "round %s: no report reached Cairn this round; the global model stays "
                "(a Cairn round is released once: a rerun needs a fresh task)", server_round,
            )
            return None, None
        # FedAvg averages the metrics (num-examples = 1 each); the arrays are empty.
        _, metrics = super().aggregate_train(server_round, through_cairn)
        try:
            release = self.collector.collect(server_round)
        except cairn.BudgetExceeded:
            raise
        except cairn.Refused as e:
            if e.code != "not_enough_reports":
                raise
            log.warning("round %s not released (%s): the global model stays", server_round, e)
            return None, metrics
        self.releases[server_round] = release
        divisor = self.expected_batch if self.expected_batch is not None else release.count
        new = self.step(server_round, global_vector, release.sum / divisor)
        metrics = metrics if metrics is not None else MetricRecord()
        metrics["cairn-count"] = release.count
        metrics["cairn-epsilon-spent"] = release.epsilon_spent
        if release.epsilon_remaining != float("inf"):
            metrics["cairn-epsilon-remaining"] = release.epsilon_remaining
        return unflatten(new, layout), metrics


def _went_through_cairn(reply: Message) -> bool:
    """A reply of ``cairn_mod``: an empty ArrayRecord and a ``cairn`` record."""
    arrays = list(reply.content.array_records.values())
    return (
        "cairn" in reply.content.config_records
        and len(arrays) == 1
        and len(arrays[0]) == 0
    )
