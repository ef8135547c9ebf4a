"""What the Python layer costs: ``Client.submit`` against the same SDK call made from Rust.

    python -m cairn.bench [--dim 100000] [--reports 15]

A local deployment (two aggregator nodes in this process, no noise) takes ``2·reports``
submissions of one ``float32`` vector of ``dim`` values: half through ``Client.submit``
from NumPy, half through the same SDK call with the vector built in Rust
(``Client._submit_generated``), alternating so that both see the same machine load.
Each submission prepares (clip, quantise, share, prove, seal) and uploads one report,
and returns when the leader has stored it. Prints the median of each and the overhead.
Build the package optimised (``pip install ./python``) before measuring.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import cairn


def measure(dim: int, reports: int) -> dict:
    scale = 1e-5
    update = ((np.arange(dim) % 7) - 3).astype(np.float32) * np.float32(scale)
    python_s, rust_s = [], []
    with cairn.LocalDeployment(dim=dim, clients=2 * reports, min_clients=1, noise="none") as d:
        clients = [d.client(i) for i in range(2 * reports)]
        clients[0].submit(1, update)  # warm up: connections, first allocation
        for i in range(reports):
            a, b = clients[2 * i], clients[2 * i + 1]
            pairs = [("python", a), ("rust", b)] if i % 2 == 0 else [("rust", b), ("python", a)]
            for kind, client in pairs:
                start = time.perf_counter()
                if kind == "python":
                    client.submit(0, update)
                else:
                    client._submit_generated(0, scale)
                (python_s if kind == "python" else rust_s).append(time.perf_counter() - start)
        release = d.collector().collect(0)
        assert release.count == 2 * reports
    py, rs = statistics.median(python_s), statistics.median(rust_s)
    return {"dim": dim, "reports": reports, "python_ms": py * 1e3, "rust_ms": rs * 1e3,
            "overhead": py / rs - 1}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dim", type=int, default=100_000)
    p.add_argument("--reports", type=int, default=15)
    args = p.parse_args(argv)
    r = measure(args.dim, args.reports)
    print(f"d = {r['dim']}, {r['reports']} submissions each (median):")
    print(f"  Client.submit from NumPy       {r['python_ms']:8.2f} ms")
    print(f"  the same SDK call from Rust    {r['rust_ms']:8.2f} ms")
    print(f"  Python overhead                {100 * r['overhead']:+8.1f} %")


if __name__ == "__main__":
    main()
