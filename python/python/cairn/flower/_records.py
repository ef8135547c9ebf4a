"""A Flower ``ArrayRecord`` as one flat vector (what Cairn sums) and back."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord

Layout = list[tuple[str, tuple[int, ...], str]]


def flatten(record: ArrayRecord) -> tuple[np.ndarray, Layout]:
    """The arrays of ``record`` in key order, raveled into one ``float64`` vector, and
    the layout (key, shape, dtype) that :func:`unflatten` needs."""
    layout: Layout = [(k, tuple(a.shape), a.dtype) for k, a in record.items()]
    parts = [a.numpy().astype(np.float64).ravel() for a in record.values()]
    return (np.concatenate(parts) if parts else np.zeros(0)), layout


def unflatten(vector: np.ndarray, layout: Layout) -> ArrayRecord:
    """The inverse of :func:`flatten`."""
    out, offset = {}, 0
    for key, shape, dtype in layout:
        n = int(np.prod(shape, dtype=np.int64))
        out[key] = Array(np.asarray(vector[offset:offset + n]).reshape(shape).astype(dtype))
        offset += n
    if offset != vector.size:
        raise ValueError(f"the vector has {vector.size} values, the layout {offset}")
    return ArrayRecord(out)
