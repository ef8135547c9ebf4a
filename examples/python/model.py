"""Softmax (multinomial logistic) regression in NumPy: the model of the example.

Parameters are one flat vector ``w`` of ``classes × (features + 1)`` values (a bias per
class), which is what Flower carries and Cairn sums.
"""

from __future__ import annotations

import numpy as np


def size(features: int, classes: int) -> int:
    return classes * (features + 1)


def _logits(w: np.ndarray, x: np.ndarray, classes: int) -> np.ndarray:
    weights = w.reshape(classes, -1)
    return x @ weights[:, :-1].T + weights[:, -1]


def probabilities(w: np.ndarray, x: np.ndarray, classes: int) -> np.ndarray:
    z = _logits(w, x, classes)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict(w: np.ndarray, x: np.ndarray, classes: int) -> np.ndarray:
    return _logits(w, x, classes).argmax(axis=1)


def per_record_gradients(w: np.ndarray, x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """The gradient of each record's cross-entropy loss: an (n × len(w)) array."""
    p = probabilities(w, x, classes)
    p[np.arange(len(y)), y] -= 1.0  # dL/dlogits
    xb = np.hstack([x, np.ones((len(x), 1))])
    return (p[:, :, None] * xb[:, None, :]).reshape(len(y), -1)


def sgd(w: np.ndarray, x: np.ndarray, y: np.ndarray, classes: int, *, epochs: int,
        lr: float, batch: int, rng: np.random.Generator) -> np.ndarray:
    """Plain minibatch SGD on the local records (what a FedAvg client does)."""
    w = w.copy()
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch):
            idx = order[start:start + batch]
            w -= lr * per_record_gradients(w, x[idx], y[idx], classes).mean(axis=0)
    return w


def macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    scores = []
    for c in range(classes):
        tp = np.sum((predicted == c) & (truth == c))
        fp = np.sum((predicted == c) & (truth != c))
        fn = np.sum((predicted != c) & (truth == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))
