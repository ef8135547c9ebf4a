"""The Python example, short: it learns through Flower + Cairn, and spends its budget."""

import fl_intrusion
import kdd


def test_the_data_is_the_vendored_keel_files():
    orgs = kdd.load()
    assert [len(o.y) for o in orgs] == [2233, 1642, 1061, 1610, 2225]
    assert len(kdd.classes()) == 7
    assert all(o.x.shape[1] == 52 and o.x.min() >= 0 and o.x.max() <= 1 for o in orgs)


def test_a_short_run_without_noise_learns():
    (r,) = fl_intrusion.main(["--epsilons", "none", "--rounds", "60"])
    assert r["rounds"] == 60
    assert r["epsilon_spent"] == 0.0
    # The majority-class baseline is 0.08 macro-F1 (README); 60 steps reach far above.
    assert r["macro_f1"] > 0.45, r


def test_a_dp_run_spends_exactly_its_budget():
    (r,) = fl_intrusion.main(["--epsilons", "8", "--rounds", "20"])
    assert r["rounds"] == 20
    # σ is calibrated so that the 20 releases spend the budget (to the search tolerance).
    assert 8.0 - 1e-3 < r["epsilon_spent"] <= 8.0, r
    # m = 100 sits far above q·N ≈ 36: the cap's δ is negligible but accounted.
    assert 0.0 < r["delta_cap"] < 1e-12, r


def test_a_cap_too_tight_for_delta_is_refused():
    """A max_records near q·N would add more δ than --delta: the run must not start."""
    import pytest

    with pytest.raises(SystemExit, match="raise --max-records"):
        fl_intrusion.main(["--epsilons", "1", "--rounds", "20", "--max-records", "40"])
