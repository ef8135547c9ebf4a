"""The ClientApp side: a Flower mod that submits each train result through Cairn."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Union

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common.constant import ErrorCode

import cairn
from cairn.flower._records import flatten

log = logging.getLogger("cairn.flower")

#: The key of the ``(n, d)`` per-record array a record-level train handler returns.
PER_RECORD = "cairn.per-record"

ClientFor = Callable[[Context], "cairn.Client"]


def _only_array_record(content: RecordDict, what: str) -> ArrayRecord:
    records = list(content.array_records.values())
    if len(records) != 1:
        raise ValueError(f"{what} must hold exactly one ArrayRecord, found {len(records)}")
    return records[0]


def cairn_mod(
    client_for: Union[ClientFor, tuple[str, list[str]]],
    *,
    keep_metrics: bool = False,
) -> Mod:
    """A Flower mod that submits every ``train`` result through Cairn.

    ``client_for`` says which Cairn client (credential) a node is: either a callable
    ``client_for(context) -> cairn.Client``, or ``(task_path, credentials)`` — one
    credential file per node, chosen by ``context.node_config["partition-id"]``. Each
    node builds its client once.

    By default the reply's metrics are replaced by ``{"num-examples": 1}``: Flower sends
    metrics in the clear, and a loss or a record count would tell the server about one
    organisation. ``keep_metrics=True`` sends the handler's metrics as they are (with
    ``num-examples`` set to 1, so ``FedAvg``'s own weighting stays neutral).
    """
    if isinstance(client_for, tuple):
        task_path, credentials = client_for

        def client_for(context: Context) -> cairn.Client:  # noqa: F811
            index = int(context.node_config["partition-id"])
            return cairn.Client.from_files(task_path, credentials[index])

    clients: dict[int, cairn.Client] = {}
    lock = threading.Lock()

    def client(context: Context) -> cairn.Client:
        with lock:
            if context.node_id not in clients:
                clients[context.node_id] = client_for(context)
            return clients[context.node_id]

    def mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        # Every train message ("train" and "train.<action>"); evaluate and query pass.
        if msg.metadata.message_type.split(".")[0] != MessageType.TRAIN:
            return call_next(msg, context)
        server_round = int(msg.content["config"]["server-round"])
        global_vector, _ = flatten(_only_array_record(msg.content, "the train message"))
        reply = call_next(msg, context)
        if reply.has_error():
            return reply
        try:
            if not 0 <= server_round <= 0xFFFF_FFFF:
                # Cairn's rounds are 32-bit: refused as any bad value is, not raised.
                raise ValueError(f"the server's round {server_round} is not a Cairn round")
            local = _only_array_record(reply.content, "the train reply")
            c = client(context)
            if c.unit == "record":
                if list(local.keys()) != [PER_RECORD]:
                    raise ValueError(
                        f"a record-level task's train handler returns one array under "
                        f"cairn.flower.PER_RECORD, got keys {list(local.keys())}"
                    )
                report_id = c.submit_records(server_round, local[PER_RECORD].numpy())
            else:
                local_vector, _ = flatten(local)
                if local_vector.size != global_vector.size:
                    raise ValueError(
                        f"the local model has {local_vector.size} values, the global one "
                        f"{global_vector.size}"
                    )
                report_id = c.submit(server_round, local_vector - global_vector)
        except (cairn.CairnError, ValueError, OSError) as e:
            # The details stay here (they can name a record count or a value's index,
            # and Flower logs error reasons on the server): the server gets the kind.
            log.warning("round %s: not submitted through Cairn: %s", server_round, e)
            code = getattr(e, "code", None) or type(e).__name__
            return Message(
                Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=f"cairn: {code}"),
                reply_to=msg,
            )
        metrics = MetricRecord({"num-examples": 1})
        if keep_metrics:
            for record in reply.content.metric_records.values():
                for k, v in record.items():
                    if k != "num-examples":
                        metrics[k] = v
        content = RecordDict(
            {
                "arrays": ArrayRecord(),
                "metrics": metrics,
                "cairn": ConfigRecord({"report-id": report_id, "round": server_round}),
            }
        )
        return Message(content, reply_to=msg)

    return mod


