"""Kendall's tau against scipy; the rank study scores the same initial weights it trains."""
import math
import random

import pytest
import torch
from scipy import stats

from snnlab.profiles import seed_everything
from snnlab.ranking import kendall_tau, rank_study
from snnlab.snasnet import SNASNet, SNASNetSpace


@pytest.mark.parametrize("seed", range(5))
def test_kendall_tau_matches_scipy_with_ties(seed):
    rng = random.Random(seed)
    x = [rng.randint(0, 5) for _ in range(12)]      # small range: many ties
    y = [rng.randint(0, 5) for _ in range(12)]
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)


@pytest.mark.parametrize("x", [
    [-math.inf] * 4,
    [-math.inf, -math.inf, 1.0, 2.0],
    [-math.inf, 3.0, -math.inf, math.inf],
    [math.inf, math.inf, -math.inf, -math.inf],
])
def test_kendall_tau_counts_equal_infinities_as_ties(x):
    # -inf is what snasnet_score returns for a singular kernel: two of them are a tie.
    y = [0.1, 0.2, 0.3, 0.4]
    expected = stats.kendalltau(x, y).statistic
    if math.isnan(expected):
        assert math.isnan(kendall_tau(x, y))
    else:
        assert kendall_tau(x, y) == pytest.approx(expected)
    assert math.isnan(kendall_tau([-math.inf] * 4, y))      # constant list: undefined
    assert kendall_tau([-math.inf, -math.inf, 1, 2], y) == pytest.approx(0.9128709, abs=1e-6)


def test_kendall_tau_is_nan_with_a_nan_like_scipy():
    x, y = [1.0, math.nan, 3.0, 2.0], [1, 2, 3, 4]
    assert math.isnan(stats.kendalltau(x, y).statistic)
    assert math.isnan(kendall_tau(x, y)) and math.isnan(kendall_tau(y, x))


def test_kendall_tau_edge_cases():
    assert kendall_tau([1, 2, 3], [10, 20, 30]) == 1.0
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="same length"):
        kendall_tau([1, 2], [1])


def test_rank_study_scores_the_weights_it_trains():
    space = SNASNetSpace("fw")
    cells = [space.sample(random.Random(i)) for i in range(3)]
    build = lambda g: SNASNet(g, in_channels=1, num_classes=10, C=4, T=2, image_size=8,  # noqa: E731
                              fc_hidden=16, votes_per_class=1)
    batches = [torch.rand(8, 1, 8, 8), torch.rand(8, 1, 8, 8)]
    seen = []

    def train_and_evaluate(model):   # "accuracy" = a function of the initial weights
        seen.append(next(model.parameters()).detach().clone())
        return float(seen[-1].sum())

    settings = {"train": {"mode": "train"}, "eval": {"mode": "eval"}}
    study = rank_study(cells, build, batches, train_and_evaluate, settings, seed=3, progress=False)
    again = rank_study(cells, build, batches, train_and_evaluate, settings, seed=3, progress=False)
    assert study.scores == again.scores and study.accuracy == again.accuracy
    assert set(study.tau) == {"train", "eval"}
    assert study.scores["train"] != study.scores["eval"]
    # the model handed to training is the freshly built one (scoring changed nothing)
    seed_everything(3)
    fresh = build(cells[0])
    torch.testing.assert_close(next(fresh.parameters()), seen[0])
