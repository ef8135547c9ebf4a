"""The privacy budget from Python (BudgetExceeded, the calculators, the report) and the
same nodes reached by the `cairn` command line."""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import cairn

REPO = pathlib.Path(__file__).resolve().parents[2]


def cairn_cli(*args):
    """Runs the `cairn` binary (CAIRN_BIN, else target/debug/cairn, built if missing)."""
    binary = os.environ.get("CAIRN_BIN") or str(REPO / "target" / "debug" / "cairn")
    if not pathlib.Path(binary).exists():
        subprocess.run(
            ["cargo", "build", "-q", "-p", "cairn-aggregator", "--bin", "cairn"],
            cwd=REPO, check=True,
        )
    out = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def noisy_deployment(tmp_path):
    """Aggregator noise, ε = 2 planned for exactly 2 releases, one client per round."""
    with cairn.LocalDeployment(
        dim=8, clients=1, min_clients=1, noise="aggregator", epsilon=2.0, rounds=2,
        directory=tmp_path / "deploy",
    ) as d:
        yield d


def test_budget_exceeded_once_the_budget_is_spent(noisy_deployment):
    d = noisy_deployment
    client, collector = d.client(0), d.collector()
    spent = []
    for r in range(2):
        client.submit(r, np.full(8, 0.1, dtype=np.float32))
        release = collector.collect(r)
        assert release.count == 1
        spent.append(release.epsilon_spent)
        assert release.epsilon_spent + release.epsilon_remaining == pytest.approx(2.0)
        assert len(release.receipts) == 2
    assert 0 < spent[0] < spent[1] <= 2.0
    client.submit(2, np.full(8, 0.1, dtype=np.float32))
    with pytest.raises(cairn.BudgetExceeded) as info:
        collector.collect(2)
    assert info.value.code == "budget_exceeded"
    assert isinstance(info.value, cairn.Refused)
    # Refused again on a retry: the spent budget is not forgotten.
    with pytest.raises(cairn.BudgetExceeded):
        collector.collect(2)


def test_the_budget_report_from_python(noisy_deployment):
    d = noisy_deployment
    client, collector = d.client(0), d.collector()
    eps = []
    for r in range(2):
        client.submit(r, np.zeros(8, dtype=np.float32))
        eps.append(collector.collect(r).epsilon_spent)

    report = json.loads(cairn.budget_report(d.task_path, format="json"))
    assert [row["round"] for row in report["releases"]] == [0, 1]
    assert report["releases"][-1]["epsilon"] == pytest.approx(eps[-1], rel=1e-9)
    assert report["unit"] == "client"
    assert "honest" in report["trust_assumption"]

    # The helper's ledger, named by its data folder, says the same.
    helper_data = d.directory / "aggregator-1" / "data"
    helper = json.loads(cairn.budget_report(d.task_path, node=helper_data, format="json"))
    assert [row["round"] for row in helper["releases"]] == [0, 1]

    table = cairn.budget_report(d.task_path, node=d.node_configs[0])
    assert "round" in table.lower()
    html = cairn.budget_report(d.task_path, format="html")
    assert html.lstrip().lower().startswith("<!doctype html")
    with pytest.raises(ValueError, match="format"):
        cairn.budget_report(d.task_path, format="pdf")
    with pytest.raises(cairn.ConfigError, match="not the data folder"):
        cairn.budget_report(d.task_path, node=d.directory)


def test_the_calculators_agree_with_cairn_dp():
    for args in [
        dict(sigma=4.0, sensitivity=1.0, delta=1e-6, rounds=10),
        dict(sigma=1.2, sensitivity=1.0, delta=1e-5, rounds=500, sampling_rate=0.02),
        dict(sigma=3.0, sensitivity=1.0, delta=1e-6, rounds=500, sampling_rate=0.02,
             noise="client", min_honest_clients=5, dim=1000),
    ]:
        ours = cairn.dp.epsilon(**args)
        cli = ["dp", "epsilon", "--format", "json"]
        for k, v in args.items():
            cli += [f"--{k.replace('_', '-')}", v]
        theirs = json.loads(cairn_cli(*cli))
        assert ours == theirs
    plan = cairn.dp.sigma(epsilon=1.0, delta=1e-6, rounds=100, sensitivity=1.0, sampling_rate=0.01)
    assert plan["accountant"] == "rdp" and plan["epsilon"] <= 1.0
    again = cairn.dp.epsilon(
        sigma=plan["sigma"], sensitivity=1.0, delta=1e-6, rounds=100, sampling_rate=0.01
    )
    assert again["epsilon"] == pytest.approx(plan["epsilon"])
    with pytest.raises(ValueError, match="sampling-rate"):
        cairn.dp.epsilon(sigma=1, sensitivity=1, delta=1e-6, sampling_rate=1.5)
    with pytest.raises(ValueError, match="min-honest-clients"):
        cairn.dp.epsilon(sigma=1, sensitivity=1, delta=1e-6, noise="client", dim=10)
    with pytest.raises(ValueError, match="aggregator"):
        cairn.dp.epsilon(sigma=1, sensitivity=1, delta=1e-6, noise="clients")
    with pytest.raises(TypeError):
        cairn.dp.epsilon(1, 1, 1e-6)  # keyword-only: no silent argument swaps


def test_the_cli_reaches_the_python_nodes(tmp_path):
    with cairn.LocalDeployment(
        dim=4, clients=3, min_clients=3, noise="none", directory=tmp_path / "deploy"
    ) as d:
        for i in range(2):
            d.client(i).submit(0, np.array([0.25, 0, 0, 0], dtype=np.float32))
        update = tmp_path / "update.json"
        update.write_text("[0, 0.5, 0, 0]")
        cairn_cli("submit", "--task", d.task_path, "--credential", d.credentials[2],
                  "--round", 0, "--input", update)
        out = json.loads(cairn_cli("collect", "--task", d.task_path, "--round", 0))
        assert out["count"] == 3
        assert out["sum"] == [0.5, 0.5, 0.0, 0.0]
