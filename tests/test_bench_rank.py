"""The rank study on SpikeNAS-Bench (snnlab.bench_rank), on a small fake clone in the bench's
format and a tiny CIFAR-10 archive in the official format (no real data needed)."""
import json

import numpy as np
import pytest
import torch

from snnlab.bench import arch_id_from_genotype, genotype_from_arch_id, load_bench
from snnlab.bench_rank import (RankConfig, _combination, build_bench_net, kendall_tau_b,
                               pick_by_score, rank_study, ranker_metrics, sample_live_cells,
                               scoring_images)
from snnlab.cli import main
from snnlab.profiles import seed_everything
from snnlab.ranking import kendall_tau
from snnlab.snasnet import SNASNet
from snnlab.trainfree import snasnet_score

from test_bench import write_clone
from test_data import write_cifar

# 25: 0->3 skip. 26 adds 0->1 skip, a dangling branch; 1275 adds 1->3 th05 fed by node 1,
# which receives nothing. Both prune to 25.
ENTRIES = {0: dict(val=9.9, test=10.0), 25: dict(val=80.0, test=80.5),
           26: dict(val=79.0, test=79.5), 1275: dict(val=81.0, test=81.2),
           50: dict(val=84.0, test=84.1), 14862: dict(val=88.64, test=88.5),
           12617: dict(val=88.388, test=89.3), 75: dict(val=86.0, test=85.0)}
TINY = dict(width=1 / 64, T=2, batch_size=4, batches=2, picks_k=(2, 3), pick_repeats=3)


@pytest.fixture
def bench(tmp_path):
    return load_bench(write_clone(tmp_path / "SpikeNAS-Bench", ENTRIES), allow_missing=True)


@pytest.fixture
def cifar(tmp_path):
    write_cifar(tmp_path / "cifar", "cifar10", per_file=4)       # 20 training images
    return tmp_path / "cifar"


def test_pruning_keeps_the_function_but_not_the_raw_score():
    """Node 1 of 1275 receives nothing: its th05 conv on 1->3 sees zeros, never fires and adds
    BN(conv(0)) = 0, so the unpruned net computes the pruned one's function, yet its silent
    LIF adds all-N kernels to the average and moves the raw score. Hence: score the pruned cell."""
    unpruned = genotype_from_arch_id(1275)
    assert arch_id_from_genotype(unpruned.pruned()) == 25
    x = torch.randn(6, 3, 32, 32)
    seed_everything(0)
    full = SNASNet(unpruned, C=2, T=2, fc_hidden=8)
    pruned = SNASNet(unpruned.pruned(), C=2, T=2, fc_hidden=8)
    pruned.load_state_dict({k: v for k, v in full.state_dict().items() if "1to3" not in k})
    full.eval(), pruned.eval()
    torch.testing.assert_close(full(x), pruned(x))
    seed_everything(1)
    raw = snasnet_score(full, [x])
    seed_everything(1)
    assert snasnet_score(pruned, [x]) != pytest.approx(raw, abs=1e-3)


@pytest.mark.parametrize("unpruned", [26, 1275])
def test_cells_with_one_pruned_cell_score_alike(unpruned, cifar):
    images = scoring_images(cifar, batches=2, batch_size=4, seed=0)
    config = RankConfig(cells=2, **TINY)
    from snnlab.bench_rank import score_cells
    scored = score_cells([25, unpruned], images, config)
    for kernel, values in scored["scores"].items():
        assert values[0] == values[1], kernel
    # the unpruned net is never built: no LIF beyond the pruned cell's (25 has no conv)
    assert sum(isinstance(m, torch.nn.Module) and type(m).__name__ == "LIF"
               for m in build_bench_net(unpruned, width=1 / 64).modules()) == 2


def test_networks_and_errors():
    scoring, training = build_bench_net(14862, "scoring", 1 / 32), build_bench_net(14862, "training", 1 / 32)
    assert (scoring.bn_stats, scoring.down_spike, scoring.stem[0].out_channels) == ("per_step", False, 4)
    assert (training.bn_stats, training.down_spike) == ("pooled", True)
    with pytest.raises(ValueError, match="dead cell"):
        build_bench_net(0)
    with pytest.raises(ValueError, match="network"):
        build_bench_net(25, network="official")
    with pytest.raises(ValueError, match="kernels"):
        RankConfig(kernels=("hamming", "hamming"))
    with pytest.raises(ValueError, match="width"):
        RankConfig(width=0)


def test_scoring_images_are_fixed_by_the_seed_and_unaugmented(cifar):
    a = scoring_images(cifar, batches=2, batch_size=4, seed=3)
    b = scoring_images(cifar, batches=2, batch_size=4, seed=3)
    assert len(a) == 2 and a[0].shape == (4, 3, 32, 32)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert not torch.equal(a[0], scoring_images(cifar, 2, 4, seed=4)[0])
    with pytest.raises(ValueError, match="need 40 images"):
        scoring_images(cifar, batches=2, batch_size=20)


def test_sample_is_live_seeded_and_extends(bench):
    small, large = sample_live_cells(bench, 3, seed=1), sample_live_cells(bench, 6, seed=1)
    assert list(large[:3]) == list(small) and len(set(large)) == 6 and 0 not in large
    with pytest.raises(ValueError, match="live cells"):
        sample_live_cells(bench, 8)


def test_vectorised_tau_equals_ranking_tau():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, 30).astype(float), rng.normal(size=30)
    assert kendall_tau_b(x, y) == pytest.approx(kendall_tau(x.tolist(), y.tolist()), abs=1e-12)


def test_ranker_metrics_by_hand():
    values, acc = [3.0, 1.0, 2.0, 0.0], [90.0, 80.0, 70.0, 60.0]
    m = ranker_metrics(values, acc, params=[1, 1, 2, 2], arch_ids=[10, 11, 12, 13], top=2)
    assert m["tau"] == pytest.approx(kendall_tau(values, acc), abs=1e-4)
    assert [p["arch_id"] for p in m["top"]] == [10, 12]
    assert [p["rank_in_sample"] for p in m["top"]] == [1.0, 3.0]
    assert m["tau_within_params"]["groups"] == {}            # groups of 2 are too small


def test_combinations_order():
    score, params = np.array([5.0, 1.0, 3.0, 2.0]), np.array([2, 2, 1, 1])
    lexi = _combination("params, then score", score, params)
    assert list(np.argsort(-lexi)) == [0, 1, 2, 3]           # big nets first, then by score
    mean = _combination("rank mean", score, params)
    assert mean[0] == max(mean)


def test_pick_by_score_keeps_the_best_score():
    scores, acc = np.arange(10.0), np.arange(10.0) * 2
    full = pick_by_score(scores, acc, k=10, repeats=3)
    assert full["picks"] == [18.0] * 3 and full["test_acc"]["sd"] == 0
    with pytest.raises(ValueError, match="k must be"):
        pick_by_score(scores, acc, k=11)


def test_rank_study_end_to_end_and_resume(bench, cifar, tmp_path):
    config = RankConfig(cells=6, **TINY)
    checkpoint = tmp_path / "cells.jsonl"
    study = rank_study(bench, cifar, config, checkpoint=checkpoint)
    assert len(study["cells"]) == 6 and study["network"]["channels"] == 2
    assert len(checkpoint.read_text().splitlines()) == 6
    acc = [c["test_acc"] for c in study["cells"]]
    for kernel in config.kernels:
        scores = [c["scores"][kernel] for c in study["cells"]]
        assert study["rankers"][f"score {kernel}"]["tau"] == pytest.approx(
            kendall_tau(scores, acc), abs=1e-4)
        assert [c["scores"][kernel] for c in study["cells"]] == [
            float(np.mean(c["per_batch"][kernel])) for c in study["cells"]]
    assert {"params", "rank mean (sahd)", "params, then score (sahd)"} <= set(study["rankers"])
    published = study["snasnet_as_published"]
    assert [p["k"] for p in published["by_ranker"]["score sahd"]] == [2, 3]
    assert set(published["searches_on_val"][3]) == {"random", "evolution"}
    again = rank_study(bench, cifar, config, checkpoint=checkpoint)     # all read back
    assert len(checkpoint.read_text().splitlines()) == 6
    assert json.dumps(again["rankers"]) == json.dumps(study["rankers"])   # NaN-safe equality


def test_cli_bench_rank(bench, cifar, tmp_path, capsys):
    out = tmp_path / "rank.json"
    code = main(["bench", "rank", "--bench", bench.source, "--data", str(cifar), "--cells", "3",
                 "--width", str(1 / 64), "--T", "2", "--batch-size", "4", "--allow-missing", "--out", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["cells"] == 3 and "score sahd" in printed["summary"]
    saved = json.loads(out.read_text())
    assert {"command", "commit", "date", "machine", "seconds"} <= set(saved["provenance"])
