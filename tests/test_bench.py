"""SpikeNAS-Bench reader and tabular searches, on small fake clones written in the bench's format.

The logs below are shaped exactly like ``data/CIFAR10/<id>/train_process.txt`` of
tju-sun-lab/SpikeNAS-Bench (which has no licence: no real data is stored here)."""
import dataclasses
import random
import zipfile

import numpy as np
import pytest

from snnlab import bench as sb
from snnlab.bench import (BENCH_OPS, arch_id_from_genotype, arch_id_to_codes, codes_to_arch_id,
                          genotype_from_arch_id, genotype_from_encoding, load_bench,
                          parse_train_log, verify_id_mapping)
from snnlab.bench_search import TabularSearchConfig, run_tabular_search, search_curves
from snnlab.ops import build_op
from snnlab.snasnet import SNASNET_NEURON, SNASNetCell, SNASNetSpace

LAYER_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))   # Neuronal_Cell's module order


def log_text(arch_id, val, test, epochs=3, seconds=2840.0, firing=None, tiny=False):
    """A train_process.txt as the bench writes it (val rises to ``val`` at the last epoch)."""
    codes = arch_id_to_codes(arch_id)
    n_conv = sum(c >= 2 for c in codes)
    lines = [f"architecture id: {arch_id}", f"model parameters: {17179620 + 738048 * n_conv}"]
    lines.append("epoch, train_acc,train_top5, train_loss, val_acc, val_top5, val_loss" if tiny
                 else "epoch, train_acc, train_loss, val_acc, val_loss")
    for e in range(epochs):
        v = val - (epochs - 1 - e)
        row = [e, 50.0 + e, 2.303 - 0.1 * e, v, 1.5]
        if tiny:
            row = row[:2] + [90.0] + row[2:4] + [95.0] + row[4:]
        lines.append(", ".join(f"{x:.3f}" for x in row))
    lines.append(f"test top1: {test:.3f}, test tpo5: 74.3" if tiny else f"test accuracy: {test:.3f}")
    if firing is None:                      # -1 where the edge holds no LIF (bench: no module)
        spiking = [codes[sb.BENCH_EDGES.index(e)] >= 2 for e in LAYER_EDGES]
        firing = [0.1 if s else -1.0 for s in spiking] * 2 + [0.08, 0.09, 0.2, 0.1]
    lines.append("firing rate of layers: " + ", ".join(f"{r:.3f}" for r in firing))
    h, rest = divmod(seconds, 3600)
    lines.append(f"Elapsed time: {h:.1f}hour{rest // 60:.1f}minute{rest % 60:.1f}second")
    return "\n".join(lines) + "\n"


def write_clone(root, entries, dataset="CIFAR10"):
    """entries: {arch_id: kwargs of log_text}; returns the clone's root folder."""
    for arch_id, kwargs in entries.items():
        folder = root / "data" / dataset / str(arch_id)
        folder.mkdir(parents=True)
        (folder / "train_process.txt").write_text(log_text(arch_id, **kwargs))
    return root


@pytest.fixture
def clone(tmp_path):
    entries = {0: dict(val=9.876, test=10.0), 7000: dict(val=9.876, test=10.0),
               14862: dict(val=88.64, test=88.5, seconds=11068.8),
               12617: dict(val=88.388, test=89.3, epochs=5),
               25: dict(val=81.0, test=80.5), 1: dict(val=9.9, test=10.0)}
    return write_clone(tmp_path / "SpikeNAS-Bench", entries)


# ---- the id -> cell mapping ----------------------------------------------------------

def test_mapping_by_hand():
    assert str(genotype_from_arch_id(0)) == "(no edges)"
    assert str(genotype_from_arch_id(1)) == "0->1 skip_connect"          # least significant digit
    assert str(genotype_from_arch_id(25)) == "0->3 skip_connect"         # digit 2 is edge 0->3
    assert str(genotype_from_arch_id(125)) == "1->2 skip_connect"        # digit 3 is edge 1->2
    # 7000 = 1*125 + 1*625 + 2*3125: 1->2 and 1->3 skip, 2->3 threshold 0.5 (logged: dead)
    g = genotype_from_arch_id(7000)
    assert {str(e) for e in g.edges()} == {"1->2 skip_connect", "1->3 skip_connect",
                                           "2->3 spike_conv_3x3_th05"}
    assert not g.connected
    # the best cell: 14862 = 2 + 2*5 + 4*25 + 3*125 + 3*625 + 4*3125
    best = genotype_from_arch_id(14862)
    assert arch_id_to_codes(14862) == (2, 2, 4, 3, 3, 4)
    assert {str(e) for e in best.edges()} == {
        "0->1 spike_conv_3x3_th05", "0->2 spike_conv_3x3_th05", "0->3 spike_conv_3x3_th15",
        "1->2 spike_conv_3x3_th10", "1->3 spike_conv_3x3_th10", "2->3 spike_conv_3x3_th15"}
    assert genotype_from_encoding("224334") == best                    # NAS/utils.py encoding
    assert genotype_from_encoding([2, 2, 4, 3, 3, 4]) == best
    assert best.ops == BENCH_OPS and best.connected


def test_mapping_round_trips_and_vectorised_structure_matches_genotype():
    ids = np.array(random.Random(0).sample(range(sb.NUM_ARCHS), 800) + [0, 7000, 14862])
    connected, kept = sb._live_edges(sb._codes_array(ids))
    for k, arch_id in enumerate(ids):
        g = genotype_from_arch_id(int(arch_id))
        assert arch_id_from_genotype(g) == arch_id == codes_to_arch_id(arch_id_to_codes(arch_id))
        assert connected[k] == g.connected
        pruned = codes_to_arch_id(np.array(arch_id_to_codes(arch_id)) * kept[k])
        assert pruned == arch_id_from_genotype(g.pruned())


def test_bench_ops_are_registered_and_build_a_cell():
    for name, threshold in (("spike_conv_3x3_th05", 0.5), ("spike_conv_3x3_th10", 1.0),
                            ("spike_conv_3x3_th15", 1.5)):
        op = build_op(name, 4, 1, dict(SNASNET_NEURON))
        assert float(op.lif.threshold) == threshold
        assert op.lif.decay == pytest.approx(1 - 3 / 4)                   # tau 4/3 kept
        assert op.conv.module.kernel_size == (3, 3)
    space = SNASNetSpace("fw", ops=BENCH_OPS, require_input_output_edge=False)
    assert space.validate(genotype_from_arch_id(14862))
    cell = SNASNetCell(genotype_from_arch_id(14862), 4)
    assert len(cell.edges) == 6


@pytest.mark.parametrize("bad", [-1, sb.NUM_ARCHS, 3.0, "12"])
def test_unknown_arch_id(bad):
    with pytest.raises((ValueError, TypeError), match="arch_id"):
        genotype_from_arch_id(bad)


def test_bad_encoding_and_foreign_genotype():
    with pytest.raises(ValueError, match="6 digits"):
        genotype_from_encoding("22433")
    with pytest.raises(ValueError, match="BENCH_OPS"):
        arch_id_from_genotype(SNASNetSpace("fw").sample(random.Random(0)))


# ---- parsing -------------------------------------------------------------------------

def test_parse_one_log():
    entry = parse_train_log(log_text(14862, val=88.64, test=88.5, seconds=11068.8))
    assert entry["arch_id"] == 14862 and entry["params"] == 21607908
    assert entry["rows"].shape == (3, 5)
    assert entry["rows"][-1, 3] == pytest.approx(88.64) and entry["test_acc"] == 88.5
    assert entry["firing_rates"].shape == (16,)
    assert entry["seconds"] == pytest.approx(11068.8)


def test_parse_tinyimagenet_form_keeps_top1_columns():
    entry = parse_train_log(log_text(11754, val=51.84, test=51.84, tiny=True))
    assert entry["rows"][-1].tolist() == pytest.approx([2, 52.0, 2.103, 51.84, 1.5])
    assert entry["test_acc"] == pytest.approx(51.84)


def test_load_folder_table(clone):
    bench = load_bench(clone, allow_missing=True)
    assert bench.arch_ids.tolist() == [0, 1, 25, 7000, 12617, 14862]
    assert bench.val_acc.shape == (6, 5)                        # longest run: 5 epochs
    row = bench.index(14862)
    assert bench.epochs[row] == 3 and np.isnan(bench.val_acc[row, 3:]).all()
    assert bench.final_val_acc[row] == pytest.approx(88.64)
    assert bench.final_val_acc[bench.index(12617)] == pytest.approx(88.388)
    assert bench.test_acc[row] == 88.5 and bench.params[row] == 21607908
    assert bench.train_seconds[row] == pytest.approx(11068.8)
    assert bench.connected.tolist() == [False, False, True, False, True, True]
    assert bench.genotype(14862) == genotype_from_arch_id(14862)
    assert verify_id_mapping(bench) == {"cells": 6, "layout_agrees": 6, "params_agree": 6}
    assert load_bench(clone / "data", allow_missing=True).source == bench.source


def test_verify_id_mapping_catches_a_wrong_layout(tmp_path):
    wrong = [0.1] * 6 + [-1.0] * 6 + [0.1] * 4            # says "all 6 edges spike" for id 25
    root = write_clone(tmp_path, {25: dict(val=80, test=80, firing=wrong)})
    assert verify_id_mapping(load_bench(root, allow_missing=True))["layout_agrees"] == 0


def test_zip_equals_folder(clone, tmp_path):
    archive = tmp_path / "SpikeNAS-Bench-main.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in clone.rglob("train_process.txt"):
            z.write(file, "SpikeNAS-Bench-main/" + str(file.relative_to(clone)))
    a, b = load_bench(clone, allow_missing=True), load_bench(archive, allow_missing=True)
    for name in ("arch_ids", "val_acc", "test_acc", "train_seconds", "firing_rates"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_cache_hit_equals_fresh_parse_and_edits_invalidate(clone, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    fresh = load_bench(clone, cache_dir=cache, allow_missing=True)
    assert len(list(cache.glob("spikenas_CIFAR10_*.npz"))) == 1
    monkeypatch.setattr(sb, "parse_train_log", lambda *a: pytest.fail("cache not used"))
    cached = load_bench(clone, cache_dir=cache, allow_missing=True)
    assert cached.fingerprint == fresh.fingerprint
    for field in dataclasses.fields(fresh):
        x, y = getattr(fresh, field.name), getattr(cached, field.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y
    monkeypatch.undo()
    log = clone / "data" / "CIFAR10" / "25" / "train_process.txt"
    log.write_text(log_text(25, val=82.0, test=81.0))
    edited = load_bench(clone, cache_dir=cache, allow_missing=True)
    assert edited.fingerprint != fresh.fingerprint
    assert edited.test_acc[edited.index(25)] == 81.0


# ---- errors --------------------------------------------------------------------------

def test_missing_or_wrong_folder_says_how_to_get_the_bench(tmp_path):
    for path in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(FileNotFoundError, match="git clone https://github.com/tju-sun-lab"):
            load_bench(path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a zip"):
        load_bench(tmp_path / "notes.txt")


def test_incomplete_table_needs_allow_missing(clone):
    with pytest.raises(ValueError, match="allow_missing=True"):
        load_bench(clone)


def _cut_file(text):          # the download stopped inside the last epoch row
    return text.split("test accuracy")[0].rsplit("\n", 2)[0] + "\n2.000, 52.0"


def _cut_row(text):           # one row lost its last columns, the tail is intact
    rows = text.split("\n")
    rows[5] = rows[5][:12]
    return "\n".join(rows)


@pytest.mark.parametrize("edit, line", [(_cut_file, "line 6"), (_cut_row, "line 6"),
                                        (lambda t: t[:t.index("test accuracy")], "line 6"),
                                        (lambda t: t[:30], "line 2")])
def test_truncated_log_names_file_and_line(clone, edit, line):
    log = clone / "data" / "CIFAR10" / "25" / "train_process.txt"
    log.write_text(edit(log.read_text()))
    with pytest.raises(ValueError, match=rf"25.train_process.txt: {line}: .*truncated"):
        load_bench(clone, allow_missing=True)


def test_id_in_file_must_match_folder(tmp_path):
    folder = tmp_path / "data" / "CIFAR10" / "5"
    folder.mkdir(parents=True)
    (folder / "train_process.txt").write_text(log_text(6, val=80, test=80))
    with pytest.raises(ValueError, match="folder 5"):
        load_bench(tmp_path, allow_missing=True)


def test_unknown_id_in_table(clone):
    bench = load_bench(clone, allow_missing=True)
    with pytest.raises(ValueError, match="not in this table"):
        bench.index(3)
    with pytest.raises(ValueError, match="0..15624"):
        bench.entry(15625)


# ---- searches ------------------------------------------------------------------------

def fake_table(test_from_val, n_epochs=2):
    """Every cell of the space, val = a fixed random landscape, test = f(val)."""
    rng = np.random.default_rng(0)
    ids = np.arange(sb.NUM_ARCHS)
    val = np.round(rng.uniform(80, 90, len(ids)), 3)
    val[~sb._live_edges(sb._codes_array(ids))[0]] = 10.0
    curve = np.stack([val - 1, val], axis=1).astype(np.float32)      # [N, 2]
    return sb.SpikeNASBench(
        dataset="CIFAR10", arch_ids=ids, params=np.zeros_like(ids), epochs=np.full_like(ids, 2),
        train_acc=curve, train_loss=curve, val_acc=curve, val_loss=curve,
        test_acc=test_from_val(curve[:, -1].astype(np.float64)),
        firing_rates=np.zeros((len(ids), 16), np.float32),
        train_seconds=np.full(len(ids), 3600.0), source="fake")


@pytest.mark.parametrize("method", ["random", "evolution", "local"])
def test_search_is_deterministic_and_never_reads_test(method):
    agree, disagree = fake_table(lambda v: v), fake_table(lambda v: 200 - v)
    config = TabularSearchConfig(method, budget=60, seed=3)
    a, b = run_tabular_search(agree, config), run_tabular_search(disagree, config)
    np.testing.assert_array_equal(a.arch_ids, b.arch_ids)              # test column unused
    np.testing.assert_array_equal(a.arch_ids, run_tabular_search(agree, config).arch_ids)
    assert len(set(a.arch_ids.tolist())) == len(a.arch_ids) == 60
    assert agree.connected[a.arch_ids].all()                            # no dead cell tried
    best = a.arch_ids[np.argmax(a.val_acc)]
    assert a.incumbent_ids[-1] == best                                  # picked by val
    assert a.seconds[-1] == pytest.approx(60 * 3600.0)
    assert not np.array_equal(run_tabular_search(agree, dataclasses.replace(config, seed=4))
                              .arch_ids, a.arch_ids)
    curves = search_curves(disagree, config, seeds=range(3))
    picked = disagree.test_acc[a.incumbent_ids]
    np.testing.assert_allclose(curves.test_acc[0], disagree.test_acc[
        run_tabular_search(disagree, dataclasses.replace(config, seed=0)).incumbent_ids])
    assert picked[-1] == pytest.approx(200 - a.val_acc.max())          # the val pick's test


def test_evolution_and_local_search_beat_random_on_a_smooth_landscape():
    codes = sb._codes_array(np.arange(sb.NUM_ARCHS))
    smooth = fake_table(lambda v: v)
    score = 80 + (codes == 3).sum(axis=1).astype(np.float32)         # best: all th10 convs
    smooth.val_acc[:, -1] = score
    smooth.test_acc[:] = score
    means = {m: search_curves(smooth, TabularSearchConfig(m, budget=200), range(5)).regret[:, -1]
             .mean() for m in ("random", "evolution", "local")}
    assert means["local"] < means["random"] and means["evolution"] < means["random"]
    assert means["local"] == 0.0


def test_curves_shapes_summary_and_early_stop_cost():
    table = fake_table(lambda v: v)
    curves = search_curves(table, TabularSearchConfig("random", budget=20, val_epoch=1),
                           seeds=range(4))
    assert curves.test_acc.shape == curves.regret.shape == curves.hours.shape == (4, 20)
    assert curves.hours[0, -1] == pytest.approx(20 * 0.5)               # 1 of 2 epochs charged
    summary = curves.summary(at=(10, 20))
    assert set(summary["at"]) == {10, 20} and summary["seeds"] == 4
    with pytest.raises(ValueError, match="method"):
        TabularSearchConfig("bayes")
    with pytest.raises(ValueError, match="budget"):
        TabularSearchConfig(budget=0)


def test_cli_bench_search(clone, tmp_path, capsys):
    import json

    from snnlab.cli import main
    out = tmp_path / "r.json"
    assert main(["bench", "search", "--bench", str(clone), "--allow-missing", "--budget", "3",
                 "--seeds", "2", "--cache-dir", str(tmp_path / "c"), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["bench"]["live"] == 3 and set(printed["summary"]) == {"random", "evolution",
                                                                       "local"}
    at3 = printed["summary"]["evolution"]["at"]["3"]
    assert at3["test_acc"]["mean"] == 88.5 and at3["regret"]["mean"] == pytest.approx(0.8)
    saved = json.loads(out.read_text())
    assert len(saved["curves"]["local"]["test_acc"]) == 2 and "command" in saved["provenance"]
    assert main(["bench", "search", "--bench", str(tmp_path / "none")]) == 1
