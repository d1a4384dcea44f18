"""nnmargin.distributed on a LocalCluster started here (worker processes, loopback only): results
identical, index for index, to the single-machine certify, whatever the shards; bad input refused
before shards are built; a killed worker is replaced and the answer does not change."""
from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest

import nnmargin

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import nnmargin.distributed as nd  # noqa: E402

FIELDS = ("pred", "correct", "idx_same", "idx_other", "dist_same", "dist_other", "radius", "target_index")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, worker_dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def assert_identical(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def problem(seed, dtype, m=400, n=60, d=17, classes=3):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        t = rng.integers(0, 256, (m, d)).astype(np.uint8)
        x = rng.integers(0, 256, (n, d)).astype(np.uint8)
    else:
        t = rng.normal(size=(m, d)).astype(dtype)
        x = rng.normal(size=(n, d)).astype(dtype)
    ty, y = rng.integers(0, classes, m), rng.integers(0, classes, n)
    # adversarial rows: duplicates of training points across the shard borders give ties
    t[m // 2] = t[m // 2 - 1] = t[3]
    x[:3] = t[[3, 10, m - 1]]
    return x, y, t, ty


@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["uint8", "float32"])
@pytest.mark.parametrize("metric, bound, norm", [("l2", "margin", None), ("linf", "margin", None),
                                                 ("l2", "bisector", "l2"), ("l2", "bisector", "linf")])
@pytest.mark.parametrize("cuts", [(), (200,), (1, 199, 200), (57, 311)], ids=["1", "2", "4-uneven", "3"])
def test_identical_to_one_machine(client, dtype, metric, bound, norm, cuts):
    x, y, t, ty = problem(1, dtype)
    shards = np.split(t, cuts)
    local = nnmargin.certify(x, y, (t, ty), metric=metric, bound=bound, norm=norm)
    with nd.TrainSet(shards, ty, client=client) as train:
        assert train.n_shards == len(cuts) + 1
        assert_identical(nd.certify(x, y, train, metric=metric, bound=bound, norm=norm), local)
        chunked = nd.certify(x, y, train, metric=metric, bound=bound, norm=norm, batch_size=7)
        assert_identical(chunked, local)


def test_a_class_absent_from_a_shard(client):
    x, y, t, ty = problem(2, np.uint8)
    order = np.argsort(ty, kind="stable")  # shard 0 holds class 0 only, shard 2 no class 0
    t, ty = t[order], ty[order]
    local = nnmargin.certify(x, y, (t, ty), bound="bisector", pivots=3)
    with nd.TrainSet(np.split(t, [100, 250]), np.split(ty, [100, 250]), client=client) as train:
        assert_identical(nd.certify(x, y, train, bound="bisector", pivots=3), local)


def test_leave_one_out_across_shards(client):
    _, _, t, ty = problem(3, np.uint8)
    local = nnmargin.certify(t, ty, (t, ty), leave_one_out=True, bound="bisector")
    with nd.TrainSet(t, ty, client=client, shard_rows=150) as train:
        assert_identical(nd.certify(t, ty, train, leave_one_out=True, bound="bisector"), local)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["uint8", "float32"])
def test_knn_identical_to_one_machine(client, dtype):
    """k-NN: per-class top-k lists merged across shards (a class absent from a shard, ties across
    the borders, leave-one-out) give the one-machine result."""
    x, y, t, ty = problem(4, dtype)
    order = np.argsort(ty, kind="stable")
    t, ty = t[order], ty[order]
    with nd.TrainSet(np.split(t, [100, 250]), np.split(ty, [100, 250]), client=client) as train:
        for k in (1, 4, 9):
            assert_identical(nd.certify(x, y, train, k=k), nnmargin.certify(x, y, (t, ty), k=k))
        loo = nd.certify(t, ty, train, k=5, leave_one_out=True)
        assert_identical(loo, nnmargin.certify(t, ty, (t, ty), k=5, leave_one_out=True))


def test_sources_dask_array_and_npy_files_on_the_workers(client, tmp_path):
    x, y, t, ty = problem(4, np.float32)
    local = nnmargin.certify(x, y, (t, ty), bound="bisector")
    with nd.TrainSet(da.from_array(t, chunks=(130, 5)), ty, client=client) as train:
        assert train.n_shards == 4
        assert_identical(nd.certify(x, y, train, bound="bisector"), local)
    paths = []
    for k, part in enumerate(np.split(t, [123, 280])):
        paths.append(str(tmp_path / f"shard{k}.npy"))
        np.save(paths[-1], part)
    with nd.TrainSet(paths, ty, client=client) as train:
        assert_identical(nd.certify(x, y, train, bound="bisector"), local)


@pytest.mark.parametrize("shards, labels, match", [
    ([np.zeros((5, 3), np.uint8), np.zeros((5, 4), np.uint8)], np.zeros(10), "4 features"),
    ([np.zeros((5, 3), np.uint8), np.zeros((5, 3), np.float32)], np.zeros(10), "same dtype"),
    ([np.zeros((5, 3)), np.full((5, 3), np.nan)], np.zeros(10), "NaN"),
    ([np.zeros((5, 3), np.uint8), np.zeros((5, 3), np.uint8)], [np.zeros(5)], "labels for 1 shards"),
    ([np.zeros((5, 3), np.uint8)], np.zeros(4), "4 labels"),
])
def test_bad_shards_are_refused_before_any_shard_is_built(client, shards, labels, match, monkeypatch):
    built = []
    monkeypatch.setattr(nd.trainset._shard, "build_shard", lambda *a, **k: built.append(a))
    with pytest.raises(nnmargin.InputError, match=match):
        nd.TrainSet(shards, labels, client=client)
    assert built == []


def test_missing_file_and_exact_bound_are_input_errors(client, tmp_path):
    with pytest.raises(nnmargin.InputError, match="worker"):
        nd.TrainSet([str(tmp_path / "absent.npy")], np.zeros(3), client=client)
    x, y, t, ty = problem(5, np.uint8)
    with nd.TrainSet(t, ty, client=client) as train:
        with pytest.raises(nnmargin.InputError, match="one machine"):
            nd.certify(x, y, train, bound="exact")


def _worker_pids(client):
    return client.run(os.getpid)


def test_a_killed_worker_is_replaced_and_results_do_not_change(client):
    x, y, t, ty = problem(6, np.float32, m=3000, n=200, d=40)
    local = nnmargin.certify(x, y, (t, ty), bound="bisector")
    with nd.TrainSet(t, ty, client=client, shard_rows=1000) as train:
        assert_identical(nd.certify(x, y, train, bound="bisector"), local)
        # kill the worker that holds shard 0: its shards are rebuilt from their source
        holder = next(iter(client.who_has(train._shards[0])[train._shards[0].key]))
        os.kill(_worker_pids(client)[holder], signal.SIGKILL)
        assert_identical(nd.certify(x, y, train, bound="bisector"), local)
        client.wait_for_workers(2, timeout=60)


def test_a_worker_killed_during_a_call(client):
    x, y, t, ty = problem(7, np.float32, m=60000, n=3000, d=64)
    local = nnmargin.certify(x, y, (t, ty), bound="bisector", pivots=2)
    with nd.TrainSet(t, ty, client=client, shard_rows=15000) as train:
        out = {}
        call = threading.Thread(target=lambda: out.update(r=nd.certify(x, y, train, bound="bisector", pivots=2,
                                                                       batch_size=500)))
        call.start()
        time.sleep(0.5)
        assert call.is_alive()  # the kill lands mid-call
        pids = _worker_pids(client)
        os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
        call.join(timeout=300)
        assert not call.is_alive()
        assert_identical(out["r"], local)
        client.wait_for_workers(2, timeout=60)


def test_close_releases_the_shards(client):
    _, _, t, ty = problem(8, np.uint8)
    train = nd.TrainSet(t, ty, client=client, shard_rows=100)
    keys = [f.key for f in train._shards]
    held = client.who_has(train._shards)  # one snapshot: the scheduler changes it between two calls
    assert all(held.get(k) for k in keys)
    train.close()
    deadline = time.time() + 30
    while time.time() < deadline and any(client.who_has().get(k) for k in keys):
        time.sleep(0.1)
    held = client.who_has()
    assert not any(held.get(k) for k in keys)


def test_local_trainsets_pickle_as_their_data():
    _, _, t, ty = problem(9, np.uint8)
    ts = nnmargin.TrainSet(t, ty)
    ts.prepared("l2")
    back = pickle.loads(pickle.dumps(ts))
    np.testing.assert_array_equal(back.points, ts.points)
    assert not back.points.flags.writeable
    x = t[:20]
    np.testing.assert_array_equal(nnmargin.certify(x, ty[:20], back).idx_other,
                                  nnmargin.certify(x, ty[:20], ts).idx_other)


def test_cli_scheduler_local_gives_the_one_machine_result(tmp_path):
    from nnmargin.cli import main

    args = ["certify", "--bound", "bisector", "--limit", "60", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "one.json")]) == 0
    assert main(args + ["--scheduler", "local", "--workers", "2", "--shard-rows", "700",
                        "--out", str(tmp_path / "many.json")]) == 0
    import json

    one, many = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("one", "many"))
    for key in ("pred", "idx_same", "idx_other", "dist_same", "dist_other", "radius", "target_index"):
        assert one[key] == many[key], key


def test_cli_scheduler_option_rules(capsys):
    from nnmargin.cli import main

    assert main(["certify", "--scheduler", "local", "--bound", "exact"]) == 2
    assert "one machine" in capsys.readouterr().err
    assert main(["certify", "--workers", "2"]) == 2
    assert "--scheduler" in capsys.readouterr().err
