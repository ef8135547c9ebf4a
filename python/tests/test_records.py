"""Record-level tasks (DP-SGD across silos) from Python."""

import numpy as np
import pytest

import cairn


@pytest.fixture
def record_deployment(tmp_path):
    with cairn.LocalDeployment(
        dim=4, clients=2, min_clients=2, noise="none", unit="record",
        sampling_rate=0.5, max_records=3, directory=tmp_path / "deploy",
    ) as d:
        yield d


def test_records_are_clipped_one_by_one_then_summed(record_deployment):
    d = record_deployment
    a, b = d.client(0), d.client(1)
    assert a.unit == "record"
    rows = np.array(
        [[0.5, 0.25, 0, 0], [2.0, 0, 0, 0], [0, 0, -0.75, 0]], dtype=np.float64
    )  # the middle row has norm 2 > C = 1: clipped to (1, 0, 0, 0)
    a.submit_records(0, rows)
    b.submit_records(0, np.zeros((0, 4), dtype=np.float32))  # no record sampled
    release = d.collector().collect(0)
    assert release.count == 2
    np.testing.assert_array_equal(release.sum, [1.5, 0.25, -0.75, 0])


def test_record_refusals(record_deployment, tmp_path):
    a = record_deployment.client(0)
    with pytest.raises(ValueError, match="3 per report"):
        a.submit_records(0, np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="dimension 4"):
        a.submit_records(0, np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        a.submit_records(0, np.zeros(4, dtype=np.float32))
    with cairn.LocalDeployment(dim=4, clients=1, directory=tmp_path / "client-level") as c:
        with pytest.raises(ValueError, match="unit of privacy is the client"):
            c.client(0).submit_records(0, np.zeros((1, 4), dtype=np.float32))


def test_sample_and_submit(record_deployment):
    d = record_deployment
    records = np.zeros((4, 4), dtype=np.float32)
    records[:, 0] = 0.5
    report_id, sampled = d.client(0).sample_and_submit_records(0, records[:2])
    assert len(report_id) == 32 and 0 <= sampled <= 2
    d.client(1).submit_records(0, np.zeros((0, 4), dtype=np.float32))
    assert d.collector().collect(0).sum[0] == pytest.approx(0.5 * sampled)


def test_a_round_whose_sample_was_too_large_stays_skipped(tmp_path):
    # q = 1, m = 3: four rows make a sample too large; a retry of the round with rows
    # that would fit must not draw (and send) a second sample.
    with cairn.LocalDeployment(dim=4, clients=1, unit="record", sampling_rate=1.0,
                               max_records=3, directory=tmp_path / "d") as d:
        client = d.client(0)
        rows = np.full((4, 4), 0.25, dtype=np.float32)
        with pytest.raises(ValueError, match="4 records were sampled, the task allows 3"):
            client.sample_and_submit_records(0, rows)
        with pytest.raises(ValueError, match="round 0 was skipped"):
            client.sample_and_submit_records(0, rows[:2])
        # The rows of a sample drawn by the caller (the Flower mod's path) alike.
        with pytest.raises(ValueError, match="round 0 was skipped"):
            client.submit_records(0, rows[:2])
        with pytest.raises(ValueError, match="4 records were sampled"):
            client.submit_records(2, rows)
        with pytest.raises(ValueError, match="round 2 was skipped"):
            client.submit_records(2, rows[:1])
        # NaN is refused whatever the sample, before any sampling.
        rows[3, 1] = np.nan
        with pytest.raises(ValueError, match="finite"):
            client.sample_and_submit_records(1, rows)
        _, sampled = client.sample_and_submit_records(1, rows[:2])
        assert sampled == 2


def test_deployment_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="sampling_rate"):
        cairn.LocalDeployment(dim=4, clients=1, unit="record", directory=tmp_path / "a")
    # max_records defaults to 100.
    with cairn.LocalDeployment(dim=4, clients=1, unit="record", sampling_rate=0.1,
                               directory=tmp_path / "default-m") as d:
        with pytest.raises(ValueError, match="101 records were sampled, the task allows 100"):
            d.client(0).submit_records(0, np.zeros((101, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="noise must be"):
        cairn.LocalDeployment(dim=4, clients=1, noise="laplace", directory=tmp_path / "b")
    with pytest.raises(cairn.ConfigError, match="sampling"):
        cairn.LocalDeployment(dim=4, clients=1, unit="record", sampling_rate=2.0,
                              max_records=3, directory=tmp_path / "c")


def test_poisson_sample():
    kept = cairn.dp.poisson_sample(100_000, 0.1)
    assert kept.dtype == np.int64
    assert np.all(np.diff(kept) > 0) and kept[0] >= 0 and kept[-1] < 100_000
    # Binomial(10^5, 0.1): mean 10^4, sd ≈ 94.9; 6 sd: false failure < 1e-8.
    assert abs(len(kept) - 10_000) < 6 * 94.9
    assert len(cairn.dp.poisson_sample(10, 1.0)) == 10
    assert len(cairn.dp.poisson_sample(0, 0.5)) == 0
    with pytest.raises(ValueError):
        cairn.dp.poisson_sample(10, 0.0)


def test_cap_delta():
    """The δ a cap adds: large for a cap near q·N, negligible well above it."""
    loose = cairn.dp.cap_delta(records=1523, rate=0.04, max_records=100, rounds=600, epsilon=1)
    tight = cairn.dp.cap_delta(records=1523, rate=0.04, max_records=127, rounds=600, epsilon=1)
    assert loose > 1e-3 and 0 < tight < 1e-10
    assert cairn.dp.cap_delta(records=10, rate=0.5, max_records=20, rounds=5, epsilon=1) == 0
    for bad in (dict(rate=0.0), dict(rate=1.5), dict(max_records=0), dict(epsilon=-1.0)):
        args = dict(records=10, rate=0.1, max_records=3, rounds=1, epsilon=1.0) | bad
        with pytest.raises(ValueError, match="cap_delta"):
            cairn.dp.cap_delta(**args)


def test_fortran_ordered_records_are_read_row_by_row(record_deployment):
    """A Fortran-ordered (n, d) block (X.T, pandas) must be clipped per logical row."""
    d = record_deployment
    rows = np.zeros((3, 4), dtype=np.float32)
    rows[0] = [2.0, 0, 0, 0]  # clipped to (1, 0, 0, 0)
    rows[1] = [0, 0.5, 0, 0]
    rows[2] = [0, 0, 0.25, 0.25]
    fortran = np.asfortranarray(rows)
    assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
    d.client(0).submit_records(0, fortran)
    d.client(1).submit_records(0, rows.T.copy().T)  # another F-ordered view
    release = d.collector().collect(0)
    np.testing.assert_array_equal(release.sum, 2 * np.array([1.0, 0.5, 0.25, 0.25]))


def test_huge_poisson_populations_are_refused():
    with pytest.raises(ValueError, match="more than"):
        cairn.dp.poisson_sample(2**40, 1.0)
