"""DARTS over SpikeNAS-Bench's cell space (snnlab.bench_darts), on tiny tensors, a fake clone
in the bench's format and a tiny CIFAR-10 archive in the official format (no real data)."""
import dataclasses

import pytest
import torch

from snnlab.bench import BENCH_EDGES, BENCH_OPS, codes_to_arch_id, load_bench
from snnlab.bench_darts import (BenchDartsConfig, BenchEdge, BenchSupernet, bench_body,
                                compare_with_stored, darts_study, derive_arch_id, judge_arch,
                                search_bench_darts, search_images, _ALL_SKIP_ID)
from snnlab.bench_rank import build_bench_net
from snnlab.profiles import seed_everything
from snnlab.snasnet import SNASNET_NEURON

from test_bench import write_clone
from test_data import write_cifar

BEST = codes_to_arch_id((2, 2, 4, 3, 3, 4))          # 14862, the bench's best-val cell
TINY = dict(width=1 / 64, T=2, image_size=16, train_images=4, val_images=4, batch_size=2,
            epochs=1, warmup_epochs=0)


def tiny_data(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"train_x": torch.randn(n, 3, 16, 16, generator=g),
            "train_y": torch.randint(0, 10, (n,), generator=g),
            "val_x": torch.randn(n, 3, 16, 16, generator=g),
            "val_y": torch.randint(0, 10, (n,), generator=g)}


# ---- derivation ---------------------------------------------------------------------------

def test_derivation_by_hand():
    codes = (2, 2, 4, 3, 3, 4)
    alphas = torch.zeros(6, 5)
    for row, code in enumerate(codes):
        alphas[row, code] = 1.0
    assert derive_arch_id(alphas) == BEST == 14862
    assert derive_arch_id(torch.softmax(alphas, -1), include_zero=True) == 14862
    # zero strongest on edge 0->3 (row 2), threshold 1.5 second: DARTS's rule skips zero
    alphas[2, 0] = 2.0
    assert derive_arch_id(alphas) == 14862
    assert derive_arch_id(alphas, include_zero=True) == codes_to_arch_id((2, 2, 0, 3, 3, 4))
    with pytest.raises(ValueError, match=r"\[6, 5\]"):
        derive_arch_id(torch.zeros(5, 6))


# ---- the supernet -------------------------------------------------------------------------

def test_bench_edge_with_one_hot_weights_is_the_plain_op():
    torch.manual_seed(0)
    edge = BenchEdge(3, dict(SNASNET_NEURON))
    x = torch.randn(2, 4, 3, 5, 5) * 2                               # [T, B, C, H, W]
    for k, name in enumerate(BENCH_OPS):
        edge.weights = torch.nn.functional.one_hot(torch.tensor(k), 5).float()
        expected = torch.zeros_like(x) if name == "none" else edge.ops[k](x)
        torch.testing.assert_close(edge(x), expected)


@pytest.mark.parametrize("network", ["training", "scoring"])
def test_supernet_with_one_hot_alphas_is_the_bench_network(network):
    """softmax of (0 at the cell's op, -inf elsewhere) is exactly one-hot: the supernet then
    computes build_bench_net's network of that cell, given the same weights."""
    codes = (2, 3, 4, 1, 2, 3)                    # all 6 edges: the pruned cell is the cell
    seed_everything(0)
    supernet = BenchSupernet(network, width=1 / 64, T=2, image_size=32)
    with torch.no_grad():
        supernet.alphas.fill_(-float("inf"))
        for row, code in enumerate(codes):
            supernet.alphas[row, code] = 0.0
    net = build_bench_net(codes_to_arch_id(codes), network=network, width=1 / 64, T=2)
    state = {}
    for key in net.state_dict():                  # cell1.edges.0to1.conv... <- ...0to1.ops.2.conv...
        parts = key.split(".")
        if parts[1] == "edges":
            src, dst = (int(n) for n in parts[2].split("to"))
            code = codes[BENCH_EDGES.index((src, dst))]
            parts.insert(3, f"ops.{code}")
        state[key] = supernet.body.state_dict()[".".join(parts)]
    net.load_state_dict(state)
    supernet.eval(), net.eval()
    x = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(supernet(x), net(x))


@pytest.mark.parametrize("network", ["training", "scoring"])
def test_bench_body_is_build_bench_net_at_32(network):
    assert repr(bench_body(network, 1 / 16, 5, 32)) == repr(
        build_bench_net(_ALL_SKIP_ID, network=network, width=1 / 16, T=5))


def test_parameters_are_disjoint_and_edges_need_the_supernet():
    supernet = BenchSupernet(width=1 / 64, T=2, image_size=16)
    weights = {id(p) for p in supernet.weight_parameters()}
    assert supernet.arch_parameters()[0].shape == (6, 5)
    assert id(supernet.alphas) not in weights
    assert len(weights) + 1 == len(list(supernet.parameters()))
    edge = supernet.body.cell1.edges["0to1"]
    with pytest.raises(RuntimeError, match="BenchSupernet.forward"):
        edge(torch.zeros(2, 1, 2, 4, 4))


# ---- the search ---------------------------------------------------------------------------

def test_one_tiny_search_step_changes_alpha():
    config = BenchDartsConfig(seed=3, **{**TINY, "train_images": 2, "val_images": 2})
    result = search_bench_darts(tiny_data(2), config)
    seed_everything(3)
    initial = BenchSupernet(config.network, config.width, config.T, config.image_size).alphas
    final = torch.tensor(result["alphas"])
    assert result["images_seen"] == 4 and len(result["history"]) == 1
    assert not torch.allclose(final, initial.detach(), atol=1e-6)
    assert result["derived"]["arch_id"] == derive_arch_id(final)
    assert 0 <= result["derived_with_zero"] < 5 ** 6 and result["proxy"]


def test_warmup_trains_weights_only():
    config = BenchDartsConfig(seed=0, **{**TINY, "epochs": 2, "warmup_epochs": 1})
    result = search_bench_darts(tiny_data(), config)
    seed_everything(0)
    initial = BenchSupernet(config.network, config.width, config.T, config.image_size)
    warm, searched = result["history"]
    assert warm["warmup"] and warm["val_loss"] is None and warm["images"] == 4
    torch.testing.assert_close(torch.tensor(warm["arch_weights"]), initial.arch_weights(),
                               atol=1e-5, rtol=0)
    assert not searched["warmup"] and searched["images"] == 8 and result["images_seen"] == 12
    assert searched["arch_weights"] != warm["arch_weights"]


def test_search_is_deterministic_under_a_seed():
    data = tiny_data()
    first = search_bench_darts(data, BenchDartsConfig(seed=1, **TINY))
    again = search_bench_darts(data, BenchDartsConfig(seed=1, **TINY))
    other = search_bench_darts(data, BenchDartsConfig(seed=2, **TINY))
    assert first["alphas"] == again["alphas"]
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in first["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in again["history"]]
    assert first["alphas"] != other["alphas"]


def test_config_errors():
    with pytest.raises(ValueError, match="25000"):
        BenchDartsConfig(train_images=20000, val_images=10000)
    with pytest.raises(ValueError, match="image_size"):
        BenchDartsConfig(image_size=8)
    with pytest.raises(ValueError, match="network"):
        BenchDartsConfig(network="other")
    with pytest.raises(ValueError, match="warmup_epochs"):
        BenchDartsConfig(epochs=2, warmup_epochs=2)
    assert not dataclasses.replace(BenchDartsConfig(), width=1.0, image_size=32,
                                   train_images=12500, val_images=12500).proxy


# ---- judging on a fake table ----------------------------------------------------------------

@pytest.fixture
def bench(tmp_path):
    entries = {0: dict(val=9.9, test=10.0), 25: dict(val=80.0, test=80.5),
               BEST: dict(val=88.64, test=88.5), 12617: dict(val=88.388, test=89.3),
               75: dict(val=86.0, test=85.0)}
    return load_bench(write_clone(tmp_path / "SpikeNAS-Bench", entries), allow_missing=True)


def test_judge_arch_by_hand(bench):
    verdict = judge_arch(bench, BEST)
    assert verdict["test_acc"] == 88.5 and verdict["val_acc"] == 88.64
    assert verdict["rank"] == 2 and verdict["percentile"] == 80.0       # 4 of 5 at most 88.5
    assert verdict["regret"] == pytest.approx(0.8) and verdict["of"] == 5
    assert judge_arch(bench, 12617)["rank"] == 1


def test_darts_study_on_real_format_files(bench, tmp_path, monkeypatch):
    write_cifar(tmp_path / "cifar", "cifar10", per_file=4)          # 20 training images
    config = BenchDartsConfig(**TINY)
    images = search_images(tmp_path / "cifar", config)
    assert images["train_x"].shape == (4, 3, 16, 16) and images["val_y"].shape == (4,)
    # every derivation lands on the fake table's best cell (the table is partial)
    monkeypatch.setattr("snnlab.bench_darts.derive_arch_id", lambda w, include_zero=False: BEST)
    checkpoint = tmp_path / "runs.jsonl"
    study = darts_study(bench, tmp_path / "cifar", config, seeds=(0, 1), checkpoint=checkpoint)
    assert [r["config"]["seed"] for r in study["runs"]] == [0, 1]
    assert len(checkpoint.read_text().splitlines()) == 2
    # a rerun reads both seeds back (no search, no images); another config searches again
    monkeypatch.setattr("snnlab.bench_darts.search_bench_darts", None)
    again = darts_study(bench, tmp_path / "missing", config, seeds=(0, 1), checkpoint=checkpoint)
    assert again["summary"] == study["summary"]
    with pytest.raises(TypeError):
        darts_study(bench, search_images(tmp_path / "cifar", config),
                    dataclasses.replace(config, epochs=2), seeds=(0,), checkpoint=checkpoint)
    assert study["summary"]["judged"]["test_acc"] == {"mean": 88.5, "sd": 0.0, "n": 2}
    assert study["runs"][0]["history"][0]["test_acc_with_zero"] == 88.5
    assert study["baselines"]["live cell"]["cells"] == 4
    rows = compare_with_stored(study)
    assert rows[0]["test_acc"]["mean"] == 88.5 and "CPU s" in rows[0]["cost"]


def test_cli_bench_darts(bench, tmp_path, monkeypatch, capsys):
    import json
    from snnlab.cli import main
    write_cifar(tmp_path / "cifar", "cifar10", per_file=4)
    monkeypatch.setattr("snnlab.bench_darts.derive_arch_id", lambda w, include_zero=False: BEST)
    out, checkpoint = tmp_path / "darts.json", tmp_path / "runs.jsonl"
    args = ["bench", "darts", "--bench", bench.source, "--data", str(tmp_path / "cifar"),
            "--allow-missing", "--width", str(1 / 64), "--T", "2", "--train-images", "4",
            "--val-images", "4", "--batch-size", "2", "--epochs", "2", "--warmup-epochs", "1",
            "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main(args + ["--seeds", "1", "--first-seed", "1"]) == 0
    assert main(args + ["--seeds", "2"]) == 0                 # seed 1 read back, seed 0 run
    capsys.readouterr()
    saved = json.loads(out.read_text())
    assert [r["config"]["seed"] for r in saved["runs"]] == [0, 1]
    assert len(checkpoint.read_text().splitlines()) == 2
    assert saved["label"].startswith("CPU proxy") and "C=2" in saved["label"]
    assert {"command", "commit", "date", "machine", "cpu_threads", "seconds"} <= set(
        saved["provenance"])
    methods = [row["method"] for row in saved["comparison"]["rows"]]
    assert any(m.startswith("evolution search") for m in methods)
    assert any(m.startswith("SNASNet score") for m in methods)
    import matplotlib
    matplotlib.use("Agg")
    from snnlab.bench_darts import plot_bench_darts
    alphas_ax, methods_ax = plot_bench_darts(saved)
    assert len(methods_ax.get_yticklabels()) == len(saved["comparison"]["rows"])
    assert [t.get_text() for t in alphas_ax.get_yticklabels()][0] == "0 \u2192 1"
