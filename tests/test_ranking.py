"""Kendall's tau, Spearman's rho and permutation p-values against scipy; the rank study
scores the same initial weights it trains and averages repeated trainings."""
import math
import random

import pytest
import torch
from scipy import stats

from snnlab.profiles import seed_everything
from snnlab.ranking import kendall_tau, permutation_pvalue, rank_study, spearman_rho
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


@pytest.mark.parametrize("seed", range(5))
def test_spearman_rho_matches_scipy_with_ties(seed):
    rng = random.Random(seed)
    x = [rng.randint(0, 5) for _ in range(12)]
    y = [rng.random() for _ in range(12)]
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert spearman_rho(y, y) == pytest.approx(1.0)


def test_spearman_rho_with_infinities_nan_and_constants():
    x, y = [-math.inf, -math.inf, 1.0, 2.0, math.inf], [0.3, 0.1, 0.2, 0.5, 0.4]
    ranked = stats.rankdata(x)               # scipy ranks equal infinities as ties
    assert spearman_rho(x, y) == pytest.approx(stats.pearsonr(ranked, stats.rankdata(y)).statistic)
    assert math.isnan(spearman_rho([-math.inf] * 4, [1, 2, 3, 4]))
    assert math.isnan(spearman_rho([1.0, math.nan, 2.0], [1, 2, 3]))
    with pytest.raises(ValueError, match="same length"):
        spearman_rho([1, 2], [1])


@pytest.mark.parametrize("seed", range(3))
def test_exact_permutation_pvalue_matches_scipy(seed):
    # no ties: scipy's exact Kendall p-value is the exact permutation distribution
    rng = random.Random(seed)
    x, y = rng.sample(range(100), 7), rng.sample(range(100), 7)
    exact = stats.kendalltau(x, y, method="exact").pvalue
    assert permutation_pvalue(x, y) == pytest.approx(exact, rel=1e-9)
    one_sided = stats.kendalltau(x, y, method="exact", alternative="greater").pvalue
    assert permutation_pvalue(x, y, alternative="greater") == pytest.approx(one_sided, rel=1e-9)


def test_sampled_permutation_pvalue_matches_scipy_permutation_test():
    rng = random.Random(0)
    x = [rng.random() for _ in range(12)]
    y = [v + rng.gauss(0, 0.3) for v in x]
    ours = permutation_pvalue(x, y, statistic=spearman_rho, permutations=4000, seed=1)
    theirs = stats.permutation_test(
        (x, y), lambda a, b: stats.spearmanr(a, b).statistic, permutation_type="pairings",
        n_resamples=4000, random_state=1).pvalue
    assert 0 < ours < 1 and ours == pytest.approx(theirs, abs=0.02)
    assert permutation_pvalue(x, y, permutations=200, seed=3) == permutation_pvalue(
        x, y, permutations=200, seed=3)                      # seeded


def test_permutation_pvalue_edge_cases():
    assert permutation_pvalue([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], alternative="greater") == 1 / 120
    assert permutation_pvalue([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], alternative="less") == 1.0
    assert permutation_pvalue([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == 2 / 120
    # -inf scores (singular kernels) are ties, not an error
    p = permutation_pvalue([-math.inf, -math.inf, 1, 2, 3], [0.1, 0.2, 0.3, 0.4, 0.5])
    assert 0 < p <= 1
    assert math.isnan(permutation_pvalue([-math.inf] * 4, [1, 2, 3, 4]))
    with pytest.raises(ValueError, match="alternative"):
        permutation_pvalue([1, 2], [1, 2], alternative="bigger")
    with pytest.raises(ValueError, match="permutations"):
        permutation_pvalue([1, 2], [1, 2], permutations=0)


def test_rank_study_averages_repeated_trainings():
    space = SNASNetSpace("fw")
    cells = [space.sample(random.Random(i)) for i in range(3)]
    build = lambda g: SNASNet(g, in_channels=1, num_classes=10, C=4, T=2, image_size=8,  # noqa: E731
                              fc_hidden=16, votes_per_class=1)
    batches = [torch.rand(8, 1, 8, 8), torch.rand(8, 1, 8, 8)]
    weights = []

    def train_and_evaluate(model):
        weights.append(next(model.parameters()).detach().clone())
        return float(weights[-1].sum())

    study = rank_study(cells, build, batches, train_and_evaluate, seed=5, progress=False, repeats=3)
    single = rank_study(cells, build, batches, train_and_evaluate, seed=5, progress=False)
    assert len(study.accuracies) == 3 and all(len(runs) == 3 for runs in study.accuracies)
    assert study.accuracy == pytest.approx([sum(runs) / 3 for runs in study.accuracies])
    assert [runs[0] for runs in study.accuracies] == single.accuracy   # repeat 0: the scored net
    assert study.scores == single.scores
    # repeat r of cell i is built after seed_everything(seed + r * n + i): distinct weights
    seed_everything(5 + 2 * 3 + 1)
    torch.testing.assert_close(next(build(cells[1]).parameters()), weights[3 + 2])
    assert len({float(w.sum()) for w in weights[:9]}) == 9
    with pytest.raises(ValueError, match="repeats"):
        rank_study(cells, build, batches, train_and_evaluate, repeats=0, progress=False)
