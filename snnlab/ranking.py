"""Does a training-free score rank architectures? Score cells, train them, compare.

A training-free search is only as good as the agreement between its score at
initialisation and the accuracy after training. :func:`rank_study` measures it
the standard way (NAS-Bench and NASWOT papers): for a sample of cells, compute
the score (under one or more scoring settings) on the untrained network, train
the *same* network, and report Kendall's rank correlation between the two
lists. The SNASNet paper reports tau = 0.646 with its sparsity-aware kernel and
0.519 with the plain Hamming kernel (secondary source, unverified).
"""
from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

from torch import nn
from tqdm.auto import tqdm

from .profiles import seed_everything
from .train import _want_progress
from .trainfree import snasnet_score

__all__ = ["kendall_tau", "spearman_rho", "permutation_pvalue", "RankStudy", "rank_study"]


def _sign(a: float, b: float) -> int:
    """-1, 0 or +1 by comparison, so that two equal infinities are a tie (``inf - inf`` is NaN)."""
    return (a > b) - (a < b)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two equally long lists (ties handled; in [-1, 1]).

    ``tau = (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y))`` over
    all ``n0 = n (n - 1) / 2`` pairs. Pairs are compared by order, not by difference,
    so equal infinite values (a ``-inf`` score of a singular kernel) are ties.
    Returns ``nan`` when either list is constant or holds a NaN (as scipy does).
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}.")
    if len(x) < 2:
        raise ValueError("Kendall's tau needs at least 2 pairs.")
    if any(math.isnan(v) for v in (*x, *y)):
        return math.nan
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            sx, sy = _sign(x[i], x[j]), _sign(y[i], y[j])
            ties_x += sx == 0
            ties_y += sy == 0
            if sx and sy:
                concordant += sx == sy
                discordant += sx != sy
    pairs = len(x) * (len(x) - 1) // 2
    denominator = math.sqrt((pairs - ties_x) * (pairs - ties_y))
    return (concordant - discordant) / denominator if denominator else math.nan


def _ranks(values: Sequence[float]) -> list:
    """Ranks 1..n by order (ties share their average rank; equal infinities are ties)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's r of the ranks (ties: average ranks).

    Ranks are taken by order, so infinite values are fine (equal infinities tie).
    Returns ``nan`` when either list is constant or holds a NaN (as scipy's ``spearmanr``).
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}.")
    if len(x) < 2:
        raise ValueError("Spearman's rho needs at least 2 pairs.")
    if any(math.isnan(v) for v in (*x, *y)):
        return math.nan
    rx, ry = _ranks(x), _ranks(y)
    mean = (len(x) + 1) / 2
    sxy = sum((a - mean) * (b - mean) for a, b in zip(rx, ry))
    sxx = sum((a - mean) ** 2 for a in rx)
    syy = sum((b - mean) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else math.nan


def permutation_pvalue(x: Sequence[float], y: Sequence[float],
                       statistic: Callable[[Sequence[float], Sequence[float]], float] = kendall_tau,
                       alternative: str = "two-sided", permutations: int = 50_000,
                       seed: int = 0) -> float:
    """How often a random pairing of ``x`` with ``y`` correlates at least as strongly.

    The null hypothesis is "no relation": every pairing of the ``y`` values with the
    ``x`` values is equally likely. The p-value is the share of pairings whose
    ``statistic`` is at least as extreme as the observed one: ``>=`` it
    (``alternative="greater"``), ``<=`` it (``"less"``) or ``>=`` in absolute value
    (``"two-sided"``). When ``n!`` is at most ``permutations`` every pairing is
    enumerated (exact: up to 8 pairs by default, 40,320 pairings); otherwise ``permutations`` random
    pairings drawn with ``random.Random(seed)`` are used and the p-value is
    ``(1 + hits) / (1 + permutations)``, which is never 0.

    Returns ``nan`` when the observed statistic is ``nan`` (a constant list, a NaN).
    A small p-value says the correlation is unlikely under no relation; a large one
    says the sample cannot tell it from chance, not that there is no relation.

    >>> permutation_pvalue([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], alternative="greater")  # 1 of 120
    0.008333333333333333
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less'; got {alternative!r}.")
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise ValueError(f"permutations must be a positive int; got {permutations!r}.")
    observed = statistic(x, y)
    if math.isnan(observed):
        return math.nan
    tolerance = 1e-12 * max(1.0, abs(observed))     # the same value computed in another order

    def extreme(value: float) -> bool:
        if alternative == "greater":
            return value >= observed - tolerance
        if alternative == "less":
            return value <= observed + tolerance
        return abs(value) >= abs(observed) - tolerance

    y = list(y)
    if math.factorial(len(y)) <= permutations:
        hits = total = 0
        for pairing in itertools.permutations(y):
            value = statistic(x, pairing)
            hits += not math.isnan(value) and extreme(value)
            total += 1
        return hits / total
    rng = random.Random(seed)
    hits = 0
    for _ in range(permutations):
        pairing = y[:]
        rng.shuffle(pairing)
        value = statistic(x, pairing)
        hits += not math.isnan(value) and extreme(value)
    return (1 + hits) / (1 + permutations)


@dataclass
class RankStudy:
    """Scores at initialisation and accuracy after training, for a sample of cells.

    Attributes:
        genotypes: the cells, as ``to_dict()`` dicts.
        accuracy: accuracy of each cell after training (same order), the mean over
            its training repeats.
        scores: setting name -> the score of each cell under that setting.
        tau: setting name -> Kendall's tau between its scores and ``accuracy``.
        seconds: wall time of the study.
        accuracies: each cell's accuracy in every training repeat (a list per cell).
    """

    genotypes: list
    accuracy: list
    scores: dict = field(default_factory=dict)
    tau: dict = field(default_factory=dict)
    seconds: float = 0.0
    accuracies: list = field(default_factory=list)


def rank_study(genotypes: Sequence, build_model: Callable[..., nn.Module], batches,
               train_and_evaluate: Callable[[nn.Module], float],
               settings: Mapping[str, Mapping] = None, seed: int = 0,
               progress: Optional[bool] = None, repeats: int = 1) -> RankStudy:
    """Score each cell untrained (under every scoring setting), train it, correlate.

    Args:
        genotypes: the cells to study (objects with ``to_dict()``).
        build_model: ``genotype -> nn.Module``, untrained.
        batches: image batches for :func:`snnlab.trainfree.snasnet_score`.
        train_and_evaluate: trains the model it is given and returns its accuracy.
        settings: name -> keyword arguments of ``snasnet_score`` (default: the
            paper's, ``{"sahd, train mode": {}}``). All settings score the same
            initial weights: the score restores the model's buffers and modes.
        seed: each cell is built after ``seed_everything(seed + i)``, so its initial
            weights and its training are reproducible.
        progress: a ``tqdm.auto`` bar over cells; None follows ``$SNNLAB_PROGRESS``.
        repeats: trainings per cell; its ``accuracy`` is their mean, which makes the
            ranking less sensitive to one run's luck. Repeat 0 trains the scored
            network; repeat ``r > 0`` trains a fresh one built after
            ``seed_everything(seed + r * len(genotypes) + i)``: other initial weights
            (any other randomness of the training, such as batch order or dropout
            masks, is up to ``train_and_evaluate``; ``snnlab.fit`` reseeds the global
            RNGs with ``config.seed``).
    Returns:
        a :class:`RankStudy`.
    """
    settings = dict(settings or {"sahd, train mode": {}})
    if len(genotypes) < 2:
        raise ValueError(f"a rank study needs at least 2 cells; got {len(genotypes)}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int; got {repeats!r}.")
    start = time.perf_counter()
    study = RankStudy(genotypes=[g.to_dict() for g in genotypes], accuracy=[],
                      scores={name: [] for name in settings})
    for i, genotype in enumerate(tqdm(genotypes, desc="cells", disable=not _want_progress(progress))):
        seed_everything(seed + i)
        model = build_model(genotype)
        for name, kwargs in settings.items():
            seed_everything(seed + i)        # the same dropout masks for every setting
            study.scores[name].append(snasnet_score(model, batches, **kwargs))
        runs = [float(train_and_evaluate(model))]
        for r in range(1, repeats):
            seed_everything(seed + r * len(genotypes) + i)
            runs.append(float(train_and_evaluate(build_model(genotype))))
        study.accuracies.append(runs)
        study.accuracy.append(sum(runs) / len(runs))
    study.tau = {name: kendall_tau(scores, study.accuracy) for name, scores in study.scores.items()}
    study.seconds = time.perf_counter() - start
    return study
