"""The SDK from Python: exact sums, refusals before anything is sent, threads."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import cairn
from conftest import exact_update


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_sum_without_noise(exact_deployment, dtype):
    d = exact_deployment
    rng = np.random.default_rng(1)
    clients = [cairn.Client.from_files(d.task_path, c) for c in d.credentials[:3]]
    updates = [exact_update(c, rng).astype(dtype) for c in clients]
    ids = [c.submit(0, u) for c, u in zip(clients, updates)]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)

    release = d.collector().collect(0)
    assert release.round == 0
    assert release.count == 3
    assert release.sum.dtype == np.float64
    assert release.sum.shape == (16,)
    expected = np.sum([u.astype(np.float64) for u in updates], axis=0)
    np.testing.assert_array_equal(release.sum, expected)
    np.testing.assert_array_equal(release.mean(), expected / 3)
    assert release.epsilon_spent == 0.0
    assert release.epsilon_remaining == float("inf")
    assert [r.aggregator for r in release.receipts] == [0, 1]
    assert not release.ledgers_disagree


def test_an_update_larger_than_the_clip_norm_is_clipped(exact_deployment):
    d = exact_deployment
    clients = [d.client(i) for i in range(2)]
    big = np.zeros(16, dtype=np.float32)
    big[0] = 1000.0  # clipped to norm C = 1 → exactly (1, 0, …, 0)
    for c in clients:
        c.submit(0, big)
    release = d.collector().collect(0)
    assert release.sum[0] == pytest.approx(2.0)
    assert np.all(release.sum[1:] == 0)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(15, dtype=np.float32), "dimension is 16"),
        (np.array([np.nan] + [0.0] * 15), "non-finite value at index 0"),
        (np.array([0.0] * 15 + [np.inf], dtype=np.float32), "non-finite value at index 15"),
        (np.zeros(16, dtype=np.int64), "dtype int64"),
        (np.zeros((4, 4), dtype=np.float32), "1-D"),
        ([0.0] * 16, "got a list"),
    ],
)
def test_bad_updates_are_refused_before_anything_is_sent(exact_deployment, bad, message):
    d = exact_deployment
    client = d.client(0)
    with pytest.raises(ValueError, match=message):
        client.submit(0, bad)
    # Nothing reached the aggregators: the client's one report of round 0 is still
    # free, and the released round holds exactly the two good reports.
    good = [exact_update(c, np.random.default_rng(i)) for i, c in enumerate([client, d.client(1)])]
    client.submit(0, good[0])
    d.client(1).submit(0, good[1])
    release = d.collector().collect(0)
    assert release.count == 2
    np.testing.assert_array_equal(release.sum, good[0] + good[1])


def test_a_second_report_for_a_round_is_refused(exact_deployment):
    client = exact_deployment.client(0)
    u = np.zeros(16, dtype=np.float32)
    client.submit(0, u)
    with pytest.raises(cairn.Refused) as info:
        client.submit(0, u + 0.5)
    assert info.value.code == "already_submitted"
    assert isinstance(info.value, cairn.CairnError)


def test_strided_and_float64_inputs_give_the_same_sum(exact_deployment):
    d = exact_deployment
    rng = np.random.default_rng(7)
    a, b = d.client(0), d.client(1)
    u = exact_update(a, rng)
    v = exact_update(b, rng)
    wide = np.zeros((16, 2), dtype=np.float32)
    wide[:, 0] = u
    a.submit(0, wide[:, 0])  # a strided float32 view: copied, not refused
    b.submit(0, v.astype(np.float64))
    np.testing.assert_array_equal(d.collector().collect(0).sum, u + v)


def test_concurrent_submits_from_threads(tmp_path):
    clients_n = 8
    with cairn.LocalDeployment(
        dim=32, clients=clients_n, min_clients=clients_n, noise="none",
        directory=tmp_path / "deploy",
    ) as d:
        clients = [d.client(i) for i in range(clients_n)]
        rng = np.random.default_rng(3)
        updates = {r: [exact_update(c, rng) for c in clients] for r in range(2)}
        ids, errors = [], []

        def submit(i):
            try:
                for r in range(2):
                    ids.append(clients[i].submit(r, updates[r][i]))
            except Exception as e:  # noqa: BLE001 - surfaced by the assert below
                errors.append(e)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(clients_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(set(ids)) == 2 * clients_n
        collector = d.collector()
        for r in range(2):
            release = collector.collect(r)
            assert release.count == clients_n
            np.testing.assert_array_equal(release.sum, np.sum(updates[r], axis=0))


def test_one_client_object_shared_by_threads(exact_deployment):
    """One `Client` used by several threads at once (different rounds)."""
    d = exact_deployment
    client, other = d.client(0), d.client(1)
    rounds = range(4)
    results = {}

    def submit(r):
        results[r] = client.submit(r, np.full(16, 0.25, dtype=np.float32))

    threads = [threading.Thread(target=submit, args=(r,)) for r in rounds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(rounds)
    for r in rounds:
        other.submit(r, np.zeros(16, dtype=np.float32))
        assert d.collector().collect(r).sum[0] == pytest.approx(0.25)


def test_a_client_of_another_task_is_a_config_error(tmp_path, exact_deployment):
    with cairn.LocalDeployment(dim=16, clients=1, directory=tmp_path / "other") as other:
        with pytest.raises(cairn.ConfigError, match="credential"):
            cairn.Client.from_files(exact_deployment.task_path, other.credentials[0])


def test_missing_files(tmp_path, exact_deployment):
    with pytest.raises(cairn.ConfigError, match="reading"):
        cairn.Client.from_files(tmp_path / "nope.toml", exact_deployment.credentials[0])
    with pytest.raises(FileNotFoundError):
        cairn.Client.from_files(exact_deployment.task_path, tmp_path / "nope.toml")
    with pytest.raises(cairn.ConfigError):
        cairn.Collector.from_files(exact_deployment.task_path, tmp_path)


def test_collecting_a_round_below_min_clients_is_refused(exact_deployment):
    exact_deployment.client(0).submit(0, np.zeros(16, dtype=np.float32))
    with pytest.raises(cairn.Refused) as info:
        exact_deployment.collector().collect(0)
    assert info.value.code == "not_enough_reports"
    assert not isinstance(info.value, cairn.BudgetExceeded)


def test_a_panic_arrives_as_internal_error():
    with pytest.raises(cairn.InternalError, match="deliberate panic"):
        cairn._cairn._panic_for_tests()
    # The interpreter and the module carry on.
    assert cairn.dp.epsilon(sigma=4, sensitivity=1, delta=1e-6)["epsilon"] > 0


def test_the_bench_runs_and_both_paths_submit():
    from cairn import bench

    r = bench.measure(dim=64, reports=2)
    assert r["python_ms"] > 0 and r["rust_ms"] > 0


def test_submit_releases_the_gil(tmp_path):
    """Another Python thread runs while `submit` proves and uploads. Held GIL: the
    spinning thread would get at most a switch interval or two (5 ms each) of each call."""
    dim = 100_000
    with cairn.LocalDeployment(dim=dim, clients=1, min_clients=1, noise="none",
                               directory=tmp_path / "deploy") as d:
        client = d.client(0)
        update = np.zeros(dim, dtype=np.float32)
        count, stop = [0], threading.Event()

        def spin():
            while not stop.is_set():
                count[0] += 1

        spinner = threading.Thread(target=spin)
        spinner.start()
        try:
            import time

            start, before = time.perf_counter(), count[0]
            time.sleep(0.1)  # releases the GIL: the spinning rate alone
            rate = (count[0] - before) / (time.perf_counter() - start)
            # Submit round after round until the calls have lasted long enough to
            # tell a released GIL from a held one, however fast the machine.
            start, before, round_id = time.perf_counter(), count[0], 0
            while time.perf_counter() - start < 0.2 and round_id < 50:
                client.submit(round_id, update)
                round_id += 1
            during = count[0] - before
            duration = time.perf_counter() - start
            # The spinning rate alone again: a machine busy with other work slows both
            # measurements, and the slower one is the fair yardstick.
            start, before = time.perf_counter(), count[0]
            time.sleep(0.1)
            rate = min(rate, (count[0] - before) / (time.perf_counter() - start))
        finally:
            stop.set()
            spinner.join()
        assert duration > 0.05, "the submission is too quick to tell"
        assert during > 0.2 * rate * duration, (during, rate, duration)


def test_deployment_lifecycle_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="min_clients"):
        cairn.LocalDeployment(dim=4, clients=2, min_clients=5, directory=tmp_path / "a")
    with pytest.raises(ValueError, match="aggregators"):
        cairn.LocalDeployment(dim=4, clients=2, aggregators=70000, directory=tmp_path / "b")
    d = cairn.LocalDeployment(dim=4, clients=1)
    with d:
        folder = d.directory
        assert folder.exists()
    assert not folder.exists()  # a temporary deployment is removed on exit
    d.close()  # twice is fine
    with pytest.raises(cairn.CairnError, match="closed"):
        d.client(0)
    with pytest.raises(cairn.CairnError, match="closed"):
        d.start()


def test_an_exception_in_the_with_block_is_not_replaced(tmp_path):
    with pytest.raises(KeyError):
        with cairn.LocalDeployment(dim=4, clients=1, directory=tmp_path / "d"):
            raise KeyError("the user's own error")


def test_a_secret_passed_as_the_task_is_not_quoted(exact_deployment):
    d = exact_deployment
    key = (d.directory / "collector" / "hpke.key").read_text().strip()
    for call in (
        lambda: cairn.Client.from_files(d.directory / "collector" / "hpke.key", d.credentials[0]),
        lambda: cairn.Collector.from_files(d.directory / "verify.key", d.collector_dir),
        lambda: cairn.budget_report(d.directory / "collector" / "hpke.key"),
    ):
        with pytest.raises(cairn.ConfigError) as info:
            call()
        assert key[:16] not in str(info.value)
        verify = (d.directory / "verify.key").read_text().strip()
        assert verify[:16] not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_gets_an_error_not_a_hang(exact_deployment):
    # The runtime's threads do not survive a fork: a child calling into Cairn must be
    # told so at once instead of waiting for ever (and must not reuse the parent's
    # client, whose random generator it copied).
    client = exact_deployment.client(0)
    update = np.zeros(client.dim, dtype=np.float32)
    pid = os.fork()
    if pid == 0:  # the child: exit codes say what happened
        code = 5
        try:
            client.submit(0, update)
        except cairn.CairnError as e:
            code = 3 if "forked" in str(e) else 4
        except BaseException:
            code = 6
        os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in submit")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3, status
    # The parent is unaffected.
    client.submit(0, update)


def test_ctrl_c_interrupts_a_call_waiting_on_the_network(tmp_path):
    # The nodes are down: a collect would retry for minutes. Ctrl-C (SIGINT on the main
    # thread) must end it within a moment, as KeyboardInterrupt.
    with cairn.LocalDeployment(dim=4, clients=1, min_clients=1, noise="none",
                               directory=tmp_path / "d") as d:
        task, collector_dir = d.task_path, d.collector_dir
    collector = cairn.Collector.from_files(task, collector_dir)
    main = threading.main_thread().ident
    timer = threading.Timer(1.0, signal.pthread_kill, (main, signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            collector.collect(0)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5


def test_integers_out_of_range_are_value_errors(exact_deployment, tmp_path):
    # Not OverflowError, which `except ValueError` would miss.
    client = exact_deployment.client(0)
    update = np.zeros(client.dim, dtype=np.float32)
    for bad in (-1, 2**32, 2**80):
        with pytest.raises(ValueError, match="out of range"):
            client.submit(bad, update)
        with pytest.raises(ValueError, match="out of range"):
            exact_deployment.collector().collect(bad)
    with pytest.raises(ValueError, match="out of range"):
        exact_deployment.client(-1)
    with pytest.raises(ValueError, match="out of range"):
        cairn.dp.epsilon(sigma=1.0, sensitivity=1.0, delta=1e-6, rounds=-1)
    with pytest.raises(ValueError, match="out of range"):
        cairn.LocalDeployment(dim=-4, clients=1, directory=tmp_path / "negative")
    # Not an integer at all stays a TypeError.
    with pytest.raises(TypeError):
        client.submit("0", update)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_leaves_the_parents_deployment_alone():
    # The child's copy of a LocalDeployment (temporary folder, running nodes) is the
    # parent's: closing or dropping it in the child must remove and stop nothing.
    def in_child(work):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                work()
            except BaseException:
                code = 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status

    with cairn.LocalDeployment(dim=4, clients=2, min_clients=1, noise="none") as d:
        in_child(d.close)
        assert d.directory.exists(), "the child removed the parent's folder"
        d.client(0).submit(0, np.zeros(4, dtype=np.float32))
        assert d.collector().collect(0).count == 1, "the child stopped the parent's nodes"

    spare = cairn.LocalDeployment(dim=4, clients=1)
    folder = spare.directory

    def drop_it():
        nonlocal spare
        del spare
        import gc
        gc.collect()

    in_child(drop_it)
    assert folder.exists(), "the child's drop removed the parent's folder"
    spare.close()
    assert not folder.exists()
