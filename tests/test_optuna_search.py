"""Searches shared through an Optuna study: 2 worker processes on SQLite == 1 process."""
import dataclasses

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from snnlab import bench as sb  # noqa: E402
from snnlab.bench_search import TabularSearchConfig, run_tabular_search  # noqa: E402
from snnlab.data import load_dataset  # noqa: E402
from snnlab.optuna_search import (candidate_sequence, collect_study, make_storage,  # noqa: E402
                                  run_snasnet_study, run_study, run_tabular_study)
from snnlab.snasnet import SNASNetSpace  # noqa: E402
from snnlab.snasnet_search import SNASNetSearchConfig, run_snasnet  # noqa: E402


def _tiny_config(**changes):
    settings = dict(candidates=5, batches=2, batch_size=16, channels=4, fc=16, T=2, seed=3)
    return SNASNetSearchConfig(**{**settings, **changes})


def _without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_two_workers_on_sqlite_equal_one_process_snasnet(tmp_path):
    bundle, config = load_dataset("digits"), _tiny_config()
    single = run_snasnet(config, bundle, device="cpu", progress=False)
    shared = run_snasnet_study(config, bundle, storage=f"sqlite:///{tmp_path / 's.db'}",
                               study_name="t", workers=2, device="cpu")
    assert _without_seconds(shared.history) == _without_seconds(single.history)
    assert shared.genotype == single.genotype
    assert shared.config == single.config
    assert shared.extras["optuna"]["workers"] == 2
    # both workers took part: the storage saw every item once, numbered 0..4
    study = optuna.load_study(study_name="t", storage=make_storage(f"sqlite:///{tmp_path / 's.db'}"))
    done = [t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(done) == list(range(5))


def test_candidate_sequence_is_random_search_order():
    space = SNASNetSpace(kind="fw")
    genotypes, draws = candidate_sequence(space, seed=3, candidates=6)
    assert len(genotypes) == 6 and draws >= 6
    assert len({str(g.to_dict()) for g in genotypes}) == 6
    again, _ = candidate_sequence(space, seed=3, candidates=8)
    assert again[:6] == genotypes                       # a longer search extends the same list


def _square(k):
    return float(k * k), {"item": k}


def test_a_second_command_joins_and_collects_the_whole_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = run_study(storage, "t", 4, _square, {"x": 1}, workers=1)
    assert [row["value"] for row in first] == [0.0, 1.0, 4.0, 9.0]
    assert run_study(storage, "t", 4, _square, {"x": 1}, workers=0) == first   # only collects


def test_joining_with_other_settings_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run_study(storage, "t", 2, _square, {"x": 1}, workers=1)
    with pytest.raises(ValueError, match="other settings"):
        run_study(storage, "t", 2, _square, {"x": 2}, workers=0)


def test_evolution_cannot_be_split():
    with pytest.raises(ValueError, match="random"):
        run_snasnet_study(_tiny_config(strategy="evolution"), load_dataset("digits"),
                          storage="sqlite:///unused.db", workers=1)


def _table():
    """Every cell of the bench's space with a fixed random validation landscape."""
    rng = np.random.default_rng(0)
    ids = np.arange(sb.NUM_ARCHS)
    val = np.round(rng.uniform(80, 90, len(ids)), 3)
    curve = np.stack([val - 1, val], axis=1).astype(np.float32)          # [N, 2]
    return sb.SpikeNASBench(
        dataset="CIFAR10", arch_ids=ids, params=np.zeros_like(ids), epochs=np.full_like(ids, 2),
        train_acc=curve, train_loss=curve, val_acc=curve, val_loss=curve,
        test_acc=curve[:, -1].astype(np.float64), firing_rates=np.zeros((len(ids), 16), np.float32),
        train_seconds=np.full(len(ids), 3600.0), source="fake")


def test_two_workers_on_sqlite_equal_one_process_tabular(tmp_path):
    bench, config, seeds = _table(), TabularSearchConfig("evolution", budget=30), [4, 0, 7]
    shared = run_tabular_study(bench, config, seeds, storage=f"sqlite:///{tmp_path / 't.db'}",
                               workers=2)
    for trace, seed in zip(shared, seeds):
        single = run_tabular_search(bench, dataclasses.replace(config, seed=seed))
        assert trace.config == single.config
        for field in ("arch_ids", "val_acc", "seconds", "incumbent_ids"):
            np.testing.assert_array_equal(getattr(trace, field), getattr(single, field))


def _failing_task(k):
    if k == 1:
        raise RuntimeError("item 1 breaks")
    return float(k), {}


def test_a_failed_item_is_named(tmp_path):
    storage = f"sqlite:///{tmp_path / 'f.db'}"
    with pytest.raises(RuntimeError, match="exited with an error"):
        run_study(storage, "f", 3, _failing_task, {"x": 1}, workers=1)
    with pytest.raises(RuntimeError, match=r"items \[1\] failed"):
        collect_study(storage, "f", 3)


@pytest.mark.parametrize("bad", ["study.db", "", None])
def test_storage_must_be_a_url(bad):
    with pytest.raises(ValueError, match="storage"):
        make_storage(bad)


def test_cli_search_snasnet_with_storage_and_two_workers(tmp_path, capsys):
    import json
    from snnlab.cli import main
    common = ["search", "snasnet", "--profile", "tiny", "--candidates", "3", "--batch-size", "16",
              "--set", "channels=4", "--set", "fc=16", "--device", "cpu"]
    assert main(common + ["--out", str(tmp_path / "single.json")]) == 0
    assert main(common + ["--storage", f"sqlite:///{tmp_path / 'cli.db'}", "--workers", "2",
                          "--out", str(tmp_path / "shared.json")]) == 0
    single, shared = (json.loads((tmp_path / f"{name}.json").read_text())
                      for name in ("single", "shared"))
    assert _without_seconds(shared["history"]) == _without_seconds(single["history"])
    assert shared["extras"]["optuna"]["workers"] == 2


def _open_at_once(storage, barrier, results, k):
    from snnlab.optuna_search import _open_study
    barrier.wait()                       # both processes create the database together
    try:
        _open_study(storage, "race", {"candidates": 3})
        results[k] = "ok"
    except Exception as err:             # noqa: BLE001 - the test reports what failed
        results[k] = f"{type(err).__name__}: {err}"[:300]


def test_two_commands_starting_a_new_study_at_once_both_join(tmp_path):
    """Two first starts on one new SQLite file: the loser of the table creation retries."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    for round_ in range(3):
        storage = f"sqlite:///{tmp_path}/race{round_}.db"
        barrier, results = ctx.Barrier(2), ctx.Manager().dict()
        procs = [ctx.Process(target=_open_at_once, args=(storage, barrier, results, k))
                 for k in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert dict(results) == {0: "ok", 1: "ok"}, dict(results)
