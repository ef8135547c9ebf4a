"""A ServerApp and N ClientApps in one process: no Ray, no SuperLink, no network.

Flower 1.41's simulation engine needs Ray; this small ``Grid`` delivers each message by
calling the ClientApp directly, the call a SuperNode makes, with one persistent
``Context`` per node (``node_config = {"partition-id": i, "num-partitions": N}``, as the
simulation engine sets). Messages cross as Flower's protobuf bytes both ways, so the two
sides never share objects, and a ClientApp that raises answers with an error reply, as
under Flower's own runtimes. For tests and examples; deploy with ``flwr run``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from typing import Optional

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity


def _over_the_wire(msg: Message) -> Message:
    return message_from_proto(message_to_proto(msg))


class InProcessGrid(Grid):
    """A ``Grid`` that runs ``client_app`` for each message it pushes, synchronously."""

    def __init__(self, client_app: ClientApp, num_nodes: int, *, run_id: int = 1,
                 run_config: Optional[dict] = None, seed: int = 0) -> None:
        self._client_app = client_app
        self._replies: dict[str, Message] = {}
        rng = random.Random(seed)
        self.node_ids = [rng.randrange(2**32, 2**63) for _ in range(num_nodes)]
        self.contexts = {
            node: Context(
                run_id=run_id,
                node_id=node,
                node_config={"partition-id": i, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config=dict(run_config or {}),
            )
            for i, node in enumerate(self.node_ids)
        }
        self._run = Run.create_empty(run_id)

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return Run(**vars(self._run))

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int,
                       group_id: str, ttl: Optional[float] = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            node = msg.metadata.dst_node_id
            if node not in self.contexts:
                raise ValueError(f"unknown node {node}")
            self._replies[msg.metadata.message_id] = self._deliver(_over_the_wire(msg))
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(m) for m in list(message_ids) if m in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *,
                         timeout: Optional[float] = None) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))

    def _deliver(self, msg: Message) -> Message:
        try:
            reply = self._client_app(msg, self.contexts[msg.metadata.dst_node_id])
        except Exception as e:  # noqa: BLE001 - becomes an error reply, as in Flower
            reply = Message(
                Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=f"{type(e).__name__}: {e}"),
                reply_to=msg,
            )
        reply.metadata.__dict__["_message_id"] = str(uuid.uuid4())
        return _over_the_wire(reply)


def run_inprocess(server_app: ServerApp, client_app: ClientApp, num_nodes: int, *,
                  run_config: Optional[dict] = None, seed: int = 0) -> Context:
    """Runs ``server_app`` against ``num_nodes`` copies of ``client_app`` in this
    process; returns the ServerApp's ``Context`` (its ``state`` holds what the app kept).

    ``run_config`` reaches both sides as ``context.run_config``."""
    grid = InProcessGrid(client_app, num_nodes, run_config=run_config, seed=seed)
    # Messages read these class attributes when they are created (Flower's runtimes
    # set them before running a ServerApp).
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = grid.run.run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    context = Context(run_id=grid.run.run_id, node_id=0, node_config={}, state=RecordDict(),
                      run_config=dict(run_config or {}))
    server_app(grid=grid, context=context)
    return context
