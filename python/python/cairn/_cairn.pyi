"""Type stubs of the native module ``cairn._cairn`` (PyO3). See ``cairn`` for the
overview; every class and function here is re-exported there."""

from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Literal, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, PathLike[str]]
_Vector = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]

class CairnError(Exception):
    """Every error Cairn raises, besides ValueError (a bad update) and OSError (a file)."""

class ConfigError(CairnError):
    """A task, credential, key or node file is missing or invalid."""

class NetworkError(CairnError):
    """The aggregators could not be reached, after all retries."""

class Refused(CairnError):
    """An aggregator refused the request."""

    code: str
    """The protocol's reason, e.g. ``"round_closed"``, ``"already_submitted"``,
    ``"not_enough_reports"``, ``"budget_exceeded"``."""

class BudgetExceeded(Refused):
    """The release would exceed the task's privacy budget; nothing was released."""

class InternalError(CairnError):
    """A bug in Cairn (a Rust panic is caught and raised as this)."""

class Client:
    """A client of one task, holding its own credential."""

    @staticmethod
    def from_files(
        task_path: _Path, credential_path: _Path, state_dir: Optional[_Path] = None
    ) -> Client:
        """Loads a client from a task file and a credential file."""
    def submit(self, round: int, update: _Vector) -> str:
        """Clips, quantises, shares, proves and uploads ``update``; returns the report id."""
    def submit_records(self, round: int, per_record: _Vector) -> str:
        """Record level: submits the sum of the sampled rows, each clipped to ``C``. More
        rows than ``max_records_per_report`` raise ``ValueError`` and skip the round for
        good (a later call for it raises ``ValueError``: round skipped)."""
    def sample_and_submit_records(
        self, round: int, all_records: _Vector
    ) -> tuple[str, int | None]:
        """Record level: Poisson-samples the rows, then ``submit_records``. Returns the
        report id and the sampled count, ``None`` when a report kept in the state folder
        from an earlier attempt at the round was sent instead. A sample larger than the
        task's ``max_records_per_report`` raises ``ValueError`` and skips the round for
        good: calling again for it raises ``ValueError`` (round skipped) without drawing
        a new sample. NaN or infinite values in any row raise ``ValueError`` first."""
    def _submit_generated(self, round: int, scale: float) -> str:
        """For ``cairn.bench``: the same SDK call with a vector built in Rust."""
    @property
    def dim(self) -> int: ...
    @property
    def clip(self) -> float: ...
    @property
    def frac_bits(self) -> int: ...
    @property
    def unit(self) -> Literal["client", "record"]: ...
    @property
    def client_id(self) -> str: ...
    @property
    def task_path(self) -> Path: ...

class Receipt:
    """One aggregator's budget receipt for a release."""

    aggregator: int
    rho_spent: float
    rho_total: float
    epsilon_total: float
    epsilon_remaining: float

class Release:
    """A released round: the noisy sum and the budget spent on it."""

    round: int
    count: int
    sum: npt.NDArray[np.float64]
    rho_spent: float
    epsilon_spent: float
    epsilon_remaining: float
    receipts: list[Receipt]
    ledgers_disagree: bool
    def mean(self) -> npt.NDArray[np.float64]:
        """``sum / count``."""

class Collector:
    """The collector of a task: closes a round and opens the released noisy sum."""

    @staticmethod
    def from_files(task_path: _Path, collector_dir: Optional[_Path] = None) -> Collector: ...
    def collect(self, round: int) -> Release: ...

class LocalDeployment:
    """A deployment written as ``cairn init`` does, its nodes running in this process."""

    def __init__(
        self,
        dim: int,
        clients: int,
        aggregators: int = 2,
        noise: Literal["aggregator", "client", "both", "none"] = "aggregator",
        epsilon: float = 4.0,
        delta: float = 1e-6,
        rounds: int = 10,
        min_clients: Optional[int] = None,
        clip: float = 1.0,
        unit: Literal["client", "record"] = "client",
        sampling_rate: Optional[float] = None,
        max_records: Optional[int] = None,
        directory: Optional[_Path] = None,
        max_clients: int = 100_000,
    ) -> None: ...
    def start(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> LocalDeployment: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    @property
    def directory(self) -> Path: ...
    @property
    def task_path(self) -> Path: ...
    @property
    def credentials(self) -> list[Path]: ...
    @property
    def node_configs(self) -> list[Path]: ...
    @property
    def collector_dir(self) -> Path: ...
    def collector(self) -> Collector: ...
    def client(self, index: int) -> Client: ...

class _DpReport(TypedDict):
    epsilon: float
    delta: float
    sigma: float
    sensitivity: float
    rounds: int
    sampling_rate: float
    accountant: Literal["zcdp", "rdp"]
    rho: Optional[float]
    epsilon_simple: Optional[float]
    order: Optional[int]
    noise: Literal["aggregator", "client"]
    min_honest_clients: Optional[int]
    dim: Optional[int]

def epsilon(
    *,
    sigma: float,
    sensitivity: float,
    delta: float,
    rounds: int = 1,
    sampling_rate: float = 1.0,
    noise: Literal["aggregator", "client"] = "aggregator",
    min_honest_clients: Optional[int] = None,
    dim: Optional[int] = None,
) -> _DpReport: ...
def sigma(
    *,
    epsilon: float,
    delta: float,
    sensitivity: float,
    rounds: int = 1,
    sampling_rate: float = 1.0,
    noise: Literal["aggregator", "client"] = "aggregator",
    min_honest_clients: Optional[int] = None,
    dim: Optional[int] = None,
) -> _DpReport: ...
def budget_report(
    task_path: _Path,
    node: Optional[_Path] = None,
    format: Literal["table", "json", "html"] = "table",
) -> str: ...
def _panic_for_tests() -> None: ...
def poisson_sample(n: int, rate: float) -> npt.NDArray[np.int64]:
    """Indices of ``range(n)`` kept independently with probability ``rate`` (CSPRNG)."""
def cap_delta(
    *, records: int, rate: float, max_records: int, rounds: int, epsilon: float
) -> float:
    """The δ a cap of ``max_records`` sampled records per report adds (``dp/src/cap.rs``)."""
