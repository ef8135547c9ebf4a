"""Cairn: private aggregation with MPC and differential privacy, from Python.

Clients clip, quantise and secret-share their updates among two or more
non-colluding aggregators and prove them norm-bounded in zero knowledge; the
aggregators release only the noisy sum, within a privacy budget each of them
enforces durably.

- :class:`LocalDeployment`: a whole deployment (``cairn init``) with its
  aggregator nodes running in this process, for trials and tests.
- :class:`Client`: submit an update (a NumPy vector) or records for a round.
- :class:`Collector`: release a round; a :class:`Release` holds the noisy sum.
- :mod:`cairn.dp`: plan a budget (``epsilon``, ``sigma``).
- :func:`budget_report`: where a task's budget went, from a node's ledger.
- :mod:`cairn.flower`: the Flower integration (``pip install cairn[flower]``).

Errors: :class:`CairnError` and its kinds (:class:`ConfigError`,
:class:`NetworkError`, :class:`Refused`, :class:`BudgetExceeded`,
:class:`InternalError`); a bad update is a ``ValueError``.
"""

from cairn._cairn import (
    BudgetExceeded,
    CairnError,
    Client,
    Collector,
    ConfigError,
    InternalError,
    LocalDeployment,
    NetworkError,
    Receipt,
    Refused,
    Release,
    __version__,
    budget_report,
)
from cairn import dp

__all__ = [
    "BudgetExceeded",
    "CairnError",
    "Client",
    "Collector",
    "ConfigError",
    "InternalError",
    "LocalDeployment",
    "NetworkError",
    "Receipt",
    "Refused",
    "Release",
    "__version__",
    "budget_report",
    "dp",
]
