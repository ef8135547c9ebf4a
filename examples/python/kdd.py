"""KDD Cup '99 (the KEEL subsets in ``examples/data/kddcup99-keel``) as NumPy arrays.

Five files, one per organisation; each holds two attack types (``positive`` is the
first named in the file name, ``negative`` the second), seven attack families in all.
Features use only public information (the value ranges in the KEEL headers), so that
nothing about the organisations' data is released to scale them:

- every numeric column is mapped to [0, 1] by ``log1p(x) / log1p(max)`` when its public
  range spans more than 0..1, else ``x / max`` (counts and byte totals span orders of
  magnitude);
- ``protocol_type`` (3 values) and ``flag`` (11 values) are one-hot; ``service`` (70
  values, differing by file) is dropped.

Provenance of the data: ``examples/data/kddcup99-keel/README.md``.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass

import numpy as np

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "kddcup99-keel"
FILES = [
    "kddcup-buffer_overflow_vs_back.dat",
    "kddcup-guess_passwd_vs_satan.dat",
    "kddcup-land_vs_portsweep.dat",
    "kddcup-land_vs_satan.dat",
    "kddcup-rootkit-imap_vs_back.dat",
]
PROTOCOLS = ["icmp", "tcp", "udp"]
FLAGS = ["OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "S0", "S1", "S2", "S3", "SF", "SH"]
CATEGORICAL = {1: PROTOCOLS, 2: None, 3: FLAGS}  # None: dropped (service)


def classes() -> list[str]:
    names: list[str] = []
    for f in FILES:
        for name in re.match(r"kddcup-(.+)_vs_(.+)\.dat", f).groups():
            if name not in names:
                names.append(name)
    return names


def _header(path: pathlib.Path) -> dict[int, float]:
    """The public maximum of every numeric column, from one file's header."""
    maxima = {}
    for line in path.read_text().splitlines():
        m = re.match(r"@attribute Atr-(\d+) (real \[(.*)\]|\{(.*)\})", line)
        if not m:
            continue
        col = int(m.group(1))
        if col in CATEGORICAL:
            continue
        if m.group(3) is not None:
            maxima[col] = float(m.group(3).split(",")[1])
        else:
            maxima[col] = max(float(v) for v in m.group(4).split(","))
    return maxima


def public_maxima() -> dict[int, float]:
    """Per numeric column, the largest maximum over the five public headers."""
    out: dict[int, float] = {}
    for f in FILES:
        for col, mx in _header(DATA / f).items():
            out[col] = max(out.get(col, 0.0), mx)
    return out


@dataclass
class Organisation:
    """One organisation's records: features ``x`` (n × d) and class indices ``y``."""

    name: str
    x: np.ndarray
    y: np.ndarray


def load(data: pathlib.Path = DATA) -> list[Organisation]:
    """The five organisations (one KEEL file each), features encoded as above."""
    maxima = public_maxima()
    names = classes()
    orgs = []
    for f in FILES:
        positive, negative = re.match(r"kddcup-(.+)_vs_(.+)\.dat", f).groups()
        rows, labels = [], []
        in_data = False
        for line in (data / f).read_text().splitlines():
            if line.startswith("@data"):
                in_data = True
                continue
            if not in_data or not line.strip():
                continue
            values = [v.strip() for v in line.split(",")]
            features = []
            for col, v in enumerate(values[:-1]):
                if col in CATEGORICAL:
                    vocabulary = CATEGORICAL[col]
                    if vocabulary is not None:
                        features.extend(1.0 if v == w else 0.0 for w in vocabulary)
                    continue
                mx = maxima[col]
                x = float(v)
                features.append(np.log1p(x) / np.log1p(mx) if mx > 1 else (x / mx if mx else 0.0))
            rows.append(features)
            labels.append(names.index(positive if values[-1] == "positive" else negative))
        orgs.append(Organisation(f, np.asarray(rows), np.asarray(labels)))
    return orgs


def split(org: Organisation, test_fraction: float, rng: np.random.Generator):
    """A random train/test split of one organisation's records."""
    order = rng.permutation(len(org.y))
    cut = int(round(len(order) * (1 - test_fraction)))
    train, test = order[:cut], order[cut:]
    return (org.x[train], org.y[train]), (org.x[test], org.y[test])
