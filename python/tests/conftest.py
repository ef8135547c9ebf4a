"""Shared fixtures: deployments whose nodes run in the test process, on loopback."""

import numpy as np
import pytest

import cairn


@pytest.fixture
def exact_deployment(tmp_path):
    """Two aggregators, d = 16, 4 clients, no noise (exact sums), min_clients = 2."""
    with cairn.LocalDeployment(
        dim=16, clients=4, min_clients=2, noise="none", directory=tmp_path / "deploy"
    ) as d:
        yield d


def exact_update(client, rng, scale=0.2):
    """A random update whose values are multiples of 2**-f, inside the clip ball, so
    that the fixed-point encoding (randomised rounding) is exact."""
    q = 2.0 ** -client.frac_bits
    u = np.round(rng.uniform(-scale, scale, client.dim) / q) * q
    assert np.linalg.norm(u) <= client.clip
    return u
