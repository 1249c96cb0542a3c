"""Does SNASNet's training-free score rank SpikeNAS-Bench's trained cells? The study at scale.

SpikeNAS-Bench (:mod:`snnlab.bench`) gives the CIFAR-10 test accuracy of every
cell of SNASNet's Fw space. :func:`rank_study` samples ``N`` live cells (fixed by a
seed), scores each untrained with the SNASNet protocol and correlates the scores
with the logged test accuracy:

* **protocol**: two batches of 256 CIFAR-10 *training* images (drawn once by the
  seed from the plain, ordered, unaugmented training set,
  :func:`snnlab.data.cifar_split`), T = 5, train-mode BN and dropout, every batch
  from rest, score = mean over the batches of ``log |det K|``
  (:func:`snnlab.trainfree.scores_per_batch`: the kernels ``sahd``, ``sahd_rate`` and
  ``hamming`` from one forward; ``sahd`` is the paper's normaliser, with ``N``, as the
  official HEAD; ``sahd_rate`` is SpikeNAS-Bench's, without it; both are reported);
* **network**: ``network="scoring"`` is SpikeNAS-Bench's scorer network
  (``NAS/model_snn_withoutcupy.py``: per-step BN, no LIF in the down block);
  ``"training"`` the network the bench trained (``Train_all_networks/model_snn.py``:
  snnlab's default SNASNet). Both at ``C = round(128 * width)`` channels: the
  **width multiplier** (default 1/16, C = 8 and 16 in the second cell) lets a CPU
  score a cell in seconds (the bench's C = 128 costs ~256x the convolutions); the
  classifier keeps 1024 hidden units and 10 votes per class;
* **which cell is scored**: the *pruned* cell (:meth:`CellGenotype.pruned`). A node
  that receives nothing outputs zeros, so its spiking convs never fire and the
  network computes the pruned cell's function; left in, their silent LIF calls
  add all-``N`` kernels that move the score by up to ~100 (and cost up to 5x the
  time). A branch that never reaches the output does not change the function
  either. So a cell's score is its pruned cell's, and the weights are seeded by
  the pruned id: cells with the same pruned cell get the same score.

The study reports Kendall's tau-b and Spearman's rho (:mod:`snnlab.ranking`) of every
ranker against test accuracy: each kernel's score, the parameter count (the size
baseline; it takes only 7 values, one per number of convs), tau within groups of
equal parameter count, the top-1 and top-5 picks and their true rank, and
training-free rankers beyond the paper (:data:`COMBINATIONS`). :func:`pick_by_score`
is "SNASNet as published" on the table: among K sampled cells keep the best score.

Example (needs a clone and CIFAR-10)::

    bench = load_bench("SpikeNAS-Bench", cache_dir=".cache")
    study = rank_study(bench, "data", RankConfig(cells=100))
    study["rankers"]["score sahd"]["tau"], study["rankers"]["params"]["tau"]
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch

from .bench import NUM_ARCHS, SpikeNASBench, genotype_from_arch_id
from .neurons import LIF
from .profiles import seed_everything
from .ranking import kendall_tau, spearman_rho
from .safeio import append_json_line, read_json_lines
from .snasnet import SNASNet
from .snasnet_space import CellGenotype
from .trainfree import KERNELS, scores_per_batch

__all__ = ["NETWORKS", "COMBINATIONS", "RankConfig", "build_bench_net", "scoring_images",
           "sample_live_cells", "score_cells", "kendall_tau_b", "ranker_metrics",
           "pick_by_score", "rank_study"]

log = logging.getLogger(__name__)

NETWORKS = ("scoring", "training")
BENCH_CHANNELS = 128          # first_out_channel of both bench networks (CIFAR-10)
# Training-free rankers beyond the paper, built from a score and the parameter count:
# "rank mean" averages the two ranks (no fitted weight); "params, then score" orders by
# parameter count and breaks its many ties by the score.
COMBINATIONS = ("rank mean", "params, then score")


@dataclass(frozen=True)
class RankConfig:
    """One rank study on SpikeNAS-Bench.

    Args:
        cells: live cells sampled (without replacement) from the bench.
        seed: fixes the sample, the images and every cell's initial weights.
        width: width multiplier: ``C = round(128 * width)`` (the bench's C is 128;
            1/16 lets a CPU score a cell in seconds).
        network: one of :data:`NETWORKS` (module docstring).
        batches, batch_size: the SNASNet protocol: 2 batches of 256.
        T: time steps (SNASNet and the bench: 5).
        kernels: names from :data:`snnlab.trainfree.KERNELS`, scored in one forward;
            each is also combined with the parameter count (:data:`COMBINATIONS`).
        picks_k: sizes K of "SNASNet as published" (best score among K sampled).
        pick_repeats: random draws of K cells per size.
    """

    cells: int = 100
    seed: int = 0
    width: float = 0.0625         # C = 8 (bench: 128): a CPU scores a cell in seconds
    network: str = "scoring"
    batches: int = 2              # SNASNet model_snn.py: repeat = 2
    batch_size: int = 256         # SNASNet model_snn.py: search_batchsize = 256
    T: int = 5
    kernels: tuple = ("sahd", "sahd_rate", "hamming")
    picks_k: tuple = (10, 50, 100)
    pick_repeats: int = 20

    def __post_init__(self):
        for name in ("cells", "batches", "batch_size", "T", "pick_repeats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
        if self.cells < 2 or self.batch_size < 2:
            raise ValueError("cells and batch_size must be >= 2 (ranks and kernels compare "
                             f"pairs); got cells={self.cells}, batch_size={self.batch_size}.")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4] (C = 128 * width); got {self.width}.")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}; got {self.network!r}.")
        kernels = tuple(self.kernels)
        if not kernels or any(k not in KERNELS for k in kernels) or len(set(kernels)) < len(kernels):
            raise ValueError(f"kernels must be distinct names from {KERNELS}; got {self.kernels}.")
        object.__setattr__(self, "kernels", kernels)
        object.__setattr__(self, "picks_k", tuple(int(k) for k in self.picks_k))

    @property
    def channels(self) -> int:
        return max(1, round(BENCH_CHANNELS * self.width))


# ---- networks and images ---------------------------------------------------------------

def build_bench_net(genotype: Union[CellGenotype, int], network: str = "scoring",
                    width: float = 1.0, T: int = 5) -> SNASNet:
    """SpikeNAS-Bench's CIFAR-10 network around the *pruned* cell of ``genotype``.

    Args:
        genotype: a forward :class:`CellGenotype` over ``BENCH_OPS`` or a bench arch id.
        network: ``"scoring"`` (``NAS/model_snn_withoutcupy.py``: per-step BN, no LIF in
            the down block) or ``"training"`` (``Train_all_networks/model_snn.py``).
        width: ``C = round(128 * width)``; 1.0 is the bench's size.
        T: time steps.
    Returns:
        an untrained :class:`SNASNet` (images ``[B, 3, 32, 32]`` -> logits ``[B, 10]``).
    Raises:
        ValueError: a dead cell (its input never reaches the output).
    """
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}; got {network!r}.")
    if not isinstance(genotype, CellGenotype):
        genotype = genotype_from_arch_id(genotype)
    if not genotype.connected:
        raise ValueError(f"{genotype!r} is a dead cell (the input never reaches the output): "
                         "it has no network to score. Sample live cells (bench.connected).")
    per_step = network == "scoring"
    return SNASNet(genotype.pruned(), in_channels=3, num_classes=10,
                   C=max(1, round(BENCH_CHANNELS * width)), T=T, image_size=32, fc_hidden=1024,
                   votes_per_class=10, last_pool=2,
                   bn_stats="per_step" if per_step else "pooled", down_spike=not per_step)


def scoring_images(data_dir, batches: int = 2, batch_size: int = 256,
                   seed: int = 0) -> list:
    """``batches`` disjoint batches of CIFAR-10 training images, fixed by ``seed``.

    Drawn from the plain, ordered, unaugmented training set
    (:func:`snnlab.data.cifar_split`): image indices are the first ``batches *
    batch_size`` of ``numpy.random.default_rng(seed).permutation(50000)``, so the same
    seed names the same images on every machine. The official search draws new
    augmented batches for every candidate; fixed batches compare cells on equal terms.

    Returns:
        a list of ``batches`` tensors ``[batch_size, 3, 32, 32]`` float32 (normalised).
    """
    from .data import cifar_split
    train = cifar_split("cifar10", data_dir, split="train")
    need = batches * batch_size
    if need > len(train):
        raise ValueError(f"{batches} batches of {batch_size} need {need} images; the training "
                         f"set has {len(train)}.")
    order = np.random.default_rng(seed).permutation(len(train))[:need]
    images = torch.stack([train[int(i)][0] for i in order])          # [batches*B, 3, 32, 32]
    return list(images.split(batch_size))


def sample_live_cells(bench: SpikeNASBench, cells: int, seed: int = 0) -> np.ndarray:
    """``cells`` distinct live arch ids, uniformly without replacement: the first ``cells``
    of a seeded permutation (``default_rng(seed)``), so a larger study extends a smaller one."""
    live = bench.arch_ids[bench.connected]
    if cells > len(live):
        raise ValueError(f"cells={cells} but the table has {len(live)} live cells.")
    return np.random.default_rng(seed).permutation(live)[:cells]


# ---- scoring ---------------------------------------------------------------------------

class _FiringRates:
    """Forward hooks: the mean firing rate of each LIF module (over batches, steps, neurons)."""

    def __init__(self, model: torch.nn.Module):
        self.sums: Dict[str, float] = {}
        self.counts: Dict[str, int] = {}
        self.handles = [m.register_forward_hook(self._hook(name))
                        for name, m in model.named_modules() if isinstance(m, LIF)]

    def _hook(self, name: str):
        def hook(module, args, output):
            spikes = output[0] if isinstance(output, tuple) else output   # [S, B, ...]
            self.sums[name] = self.sums.get(name, 0.0) + float((spikes > 0).sum())
            self.counts[name] = self.counts.get(name, 0) + spikes.numel()
        return hook

    def rates(self) -> Dict[str, float]:
        return {name: self.sums[name] / self.counts[name] for name in self.sums}

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _group_rates(rates: Dict[str, float]) -> Dict[str, float]:
    """Per-module rates -> the mean rate of the cells' LIFs, ``last_act`` and the classifier."""
    cells = [r for name, r in rates.items() if name.startswith(("cell1.", "cell2."))]
    return {"cells": float(np.mean(cells)) if cells else 0.0,
            "last_act": next((r for n, r in rates.items() if n.startswith("last_act")), 0.0),
            "classifier": next((r for n, r in rates.items() if n.startswith("classifier")), 0.0)}


def _score_one(arch_id: int, pruned: int, images, config: RankConfig, device) -> dict:
    """One cell's scores (mean and per batch), firing rates and seconds."""
    start = time.perf_counter()
    seed_everything(config.seed * NUM_ARCHS + int(pruned))
    model = build_bench_net(int(arch_id), config.network, config.width, config.T).to(device)
    rates = _FiringRates(model)
    try:
        per_batch = scores_per_batch(model, images, kernels=config.kernels, device=device)
    finally:
        rates.close()
    return {"per_batch": per_batch,
            "scores": {name: float(np.mean(v)) for name, v in per_batch.items()},
            "rates": _group_rates(rates.rates()), "seconds": time.perf_counter() - start}


def score_cells(arch_ids: Sequence[int], images: Sequence[torch.Tensor], config: RankConfig,
                pruned_ids: Optional[Sequence[int]] = None,
                device: Union[str, torch.device] = "cpu",
                done: Optional[Dict[int, dict]] = None,
                on_cell: Optional[Callable[[int, dict], None]] = None) -> dict:
    """Score each cell (its pruned cell, see the module docstring) with every kernel.

    Args:
        arch_ids: bench ids of live cells.
        images: the scoring batches (:func:`scoring_images`).
        config: network, width, T and kernels.
        pruned_ids: each cell's pruned id (``bench.pruned_ids``); it seeds the weights
            (``seed_everything(config.seed * 15625 + pruned_id)``) so cells with one
            pruned cell get one score. Default: computed from the ids.
        done: ``{arch_id: entry}`` already scored (a resumed run): not scored again.
        on_cell: called as ``on_cell(arch_id, entry)`` after each newly scored cell.
    Returns:
        ``{"scores": {kernel: [N]}, "per_batch": {kernel: [N][batches]},
        "rates": {group: [N]}, "seconds": [N]}`` (lists of floats).
    """
    from .bench import arch_id_from_genotype
    if pruned_ids is None:
        pruned_ids = [arch_id_from_genotype(genotype_from_arch_id(int(a)).pruned())
                      for a in arch_ids]
    out = {"scores": {k: [] for k in config.kernels}, "per_batch": {k: [] for k in config.kernels},
           "rates": {}, "seconds": []}
    done = done or {}
    for k, (arch_id, pruned) in enumerate(zip(arch_ids, pruned_ids)):
        entry = done.get(int(arch_id))
        if entry is None:
            entry = _score_one(int(arch_id), int(pruned), images, config, device)
            if on_cell is not None:
                on_cell(int(arch_id), entry)
        for name in config.kernels:
            out["per_batch"][name].append(list(entry["per_batch"][name]))
            out["scores"][name].append(entry["scores"][name])
        for name, value in entry["rates"].items():
            out["rates"].setdefault(name, []).append(value)
        out["seconds"].append(entry["seconds"])
        log.info("cell %d/%d (id %d): %s, %.1f s", k + 1, len(arch_ids), arch_id,
                 entry["scores"], entry["seconds"])
    return out


def _config_key(config: RankConfig) -> str:
    """What a cell's score depends on (a resumed run reuses only entries with this key)."""
    fields = ("seed", "width", "network", "batches", "batch_size", "T", "kernels")
    return json.dumps({f: getattr(config, f) for f in fields}, sort_keys=True)


def _read_checkpoint(path: Path, key: str) -> Dict[int, dict]:
    """Entries of a JSON-lines checkpoint written under the same :func:`_config_key`."""
    return {int(record["arch_id"]): record["entry"] for record in read_json_lines(path)
            if record.get("key") == key}


# ---- rank statistics -------------------------------------------------------------------

def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two ``[N]`` arrays, vectorised (``[N, N]`` sign matrices).

    Equals :func:`snnlab.ranking.kendall_tau` for finite values (tested); used for the
    bootstrap, where the pure-Python version would be slow. NaN if a side is constant.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    sx = np.sign(x[:, None] - x[None, :])                            # [N, N]
    sy = np.sign(y[:, None] - y[None, :])
    denom = np.sqrt((sx * sx).sum() * (sy * sy).sum())
    return float((sx * sy).sum() / denom) if denom > 0 else float("nan")


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest), ties share their mean rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):                                      # average the ties
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def _tau_within_groups(values: np.ndarray, accuracy: np.ndarray, groups: np.ndarray) -> dict:
    """Tau inside each group of equal ``groups`` (parameter count), and their pair-weighted mean."""
    per_group, weighted, pairs = {}, 0.0, 0
    for g in np.unique(groups):
        members = groups == g
        n = int(members.sum())
        if n < 3:
            continue
        tau = kendall_tau(values[members].tolist(), accuracy[members].tolist())
        # constant values in a group (parameter count within its own groups): tau undefined
        per_group[str(int(g))] = {"n": n, "tau": round(tau, 4) if np.isfinite(tau) else None}
        if np.isfinite(tau):
            weighted += tau * n * (n - 1) / 2
            pairs += n * (n - 1) // 2
    return {"groups": per_group, "pair_weighted_tau": round(weighted / pairs, 4) if pairs else None}


def ranker_metrics(values: Sequence[float], accuracy: Sequence[float], params: Sequence[int],
                   arch_ids: Sequence[int], bench_rank: Optional[Dict[int, int]] = None,
                   top: int = 5) -> dict:
    """How well ``values`` (higher = predicted better) rank the cells by test ``accuracy``.

    Returns a dict: ``tau`` (Kendall tau-b), ``rho`` (Spearman), ``tau_within_params``
    (tau inside each group of equal parameter count and their pair-weighted mean),
    ``top`` (the ``top`` highest-valued cells: id, test accuracy, true rank in the
    sample (1 = most accurate) and, with ``bench_rank``, among all live bench cells).
    """
    values, accuracy = np.asarray(values, float), np.asarray(accuracy, float)
    params = np.asarray(params)
    acc_rank = len(accuracy) + 1 - _ranks(accuracy)                  # 1 = best (ties averaged)
    picks = []
    for i in np.argsort(-values, kind="mergesort")[:top]:           # first of equals wins
        pick = {"arch_id": int(arch_ids[i]), "value": float(values[i]),
                "test_acc": float(accuracy[i]), "rank_in_sample": float(acc_rank[i])}
        if bench_rank is not None:
            pick["rank_in_bench"] = int(bench_rank[int(arch_ids[i])])
        picks.append(pick)
    return {"tau": round(kendall_tau(values.tolist(), accuracy.tolist()), 4),
            "rho": round(spearman_rho(values.tolist(), accuracy.tolist()), 4),
            "tau_within_params": _tau_within_groups(values, accuracy, params),
            "top": picks}


def _combination(name: str, score: np.ndarray, params: np.ndarray) -> np.ndarray:
    """A ranker of :data:`COMBINATIONS` from a score and the parameter count (higher = better)."""
    if name == "rank mean":
        return (_ranks(score) + _ranks(params)) / 2
    if name == "params, then score":
        dense = np.unique(params, return_inverse=True)[1]            # 0, 1, ... per size
        return dense + (_ranks(score) - 0.5) / len(score)            # ties broken by the score
    raise ValueError(f"combination must be one of {COMBINATIONS}; got {name!r}.")


def _bootstrap_difference(a: np.ndarray, b: np.ndarray, accuracy: np.ndarray,
                          resamples: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap of ``tau(a) - tau(b)``: mean and 95 % interval over resampled cells."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        idx = rng.integers(0, len(accuracy), len(accuracy))
        diffs.append(kendall_tau_b(a[idx], accuracy[idx]) - kendall_tau_b(b[idx], accuracy[idx]))
    diffs = np.asarray(diffs)
    diffs = diffs[np.isfinite(diffs)]        # a resample with a constant side has no tau
    if not len(diffs):
        return {"mean": None, "ci95": None, "resamples": resamples, "finite": 0}
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"mean": round(float(diffs.mean()), 4), "ci95": [round(float(low), 4),
                                                            round(float(high), 4)],
            "resamples": resamples, "finite": int(len(diffs))}


def pick_by_score(scores: Sequence[float], accuracy: Sequence[float], k: int, repeats: int = 20,
                  seed: int = 0) -> dict:
    """SNASNet as published, on the table: among ``k`` random scored cells keep the best score.

    Args:
        scores, accuracy: ``[N]`` of the scored sample (a uniform sample of live cells,
            so ``k`` cells drawn from it are ``k`` uniform live cells).
        k: candidates per search (the paper: 5000; here <= N).
        repeats: searches, each with its own draw (``default_rng(seed)``).
    Returns:
        ``{"k", "test_acc": {"mean", "sd"}, "picks": [test accuracy of each search]}``;
        the cost is one training (the pick's), plus scoring ``k`` cells.
    """
    scores, accuracy = np.asarray(scores, float), np.asarray(accuracy, float)
    if not 1 <= k <= len(scores):
        raise ValueError(f"k must be in 1..{len(scores)} (the scored cells); got {k}.")
    rng = np.random.default_rng(seed)
    picks = []
    for _ in range(repeats):
        drawn = rng.choice(len(scores), size=k, replace=False)
        picks.append(float(accuracy[drawn[np.argmax(scores[drawn])]]))
    return {"k": k, "test_acc": {"mean": round(float(np.mean(picks)), 3),
                                 "sd": round(float(np.std(picks, ddof=1)), 3) if repeats > 1 else 0.0},
            "picks": picks}


def _published(bench: SpikeNASBench, pickers: dict, accuracy: np.ndarray,
               config: RankConfig) -> dict:
    """Best-of-K by each training-free ranker, next to the tabular searches at K trainings."""
    from .bench_search import TabularSearchConfig, search_curves
    sizes = [K for K in config.picks_k if K <= len(accuracy)]
    out = {"by_ranker": {name: [pick_by_score(values, accuracy, K, config.pick_repeats,
                                              config.seed + K) for K in sizes]
                         for name, values in pickers.items()},
           "one_random_live_cell": round(float(bench.test_acc[bench.connected].mean()), 3),
           "searches_on_val": {}}
    for K in sizes:                 # these train K cells each; a training-free pick trains one
        out["searches_on_val"][K] = {
            method: search_curves(bench, TabularSearchConfig(method, budget=K),
                                  seeds=range(config.pick_repeats)).summary([K])["at"].get(K)
            for method in ("random", "evolution")}
    return out


# ---- the study -------------------------------------------------------------------------

def rank_study(bench: SpikeNASBench, data_dir, config: RankConfig = RankConfig(),
               device: Union[str, torch.device] = "cpu",
               checkpoint: Optional[Union[str, os.PathLike]] = None) -> dict:
    """Sample, score and rank (module docstring); a JSON-ready dict.

    Keys: ``config`` (``asdict``), ``network`` (which network and channels), ``cells``
    (per cell: arch id, pruned id, params, test and val accuracy, scores, per-batch
    scores, firing rates, seconds), ``rankers`` (:func:`ranker_metrics` of every score,
    of ``params``, of the firing-rate statistics and of :data:`COMBINATIONS`),
    ``beats_params`` (bootstrap of tau(ranker) - tau(params) for the combinations
    and scores), ``snasnet_as_published`` (``by_ranker``: :func:`pick_by_score` per K
    for every training-free ranker; ``searches_on_val``: random search and regularized
    evolution selecting on the bench's validation accuracy with K trainings, over
    ``pick_repeats`` seeds; ``one_random_live_cell``), ``seconds``.

    ``checkpoint``: a JSON-lines file; every scored cell is appended to it, and a
    rerun with the same settings skips the cells it holds (a long CPU run resumes).
    """
    start = time.perf_counter()
    arch_ids = sample_live_cells(bench, config.cells, config.seed)
    rows = np.array([bench.index(int(a)) for a in arch_ids])
    images = scoring_images(data_dir, config.batches, config.batch_size, config.seed)
    done, on_cell = {}, None
    if checkpoint is not None:
        path, key = Path(checkpoint), _config_key(config)
        done = _read_checkpoint(path, key)

        def on_cell(arch_id, entry):
            append_json_line(path, {"key": key, "arch_id": arch_id, "entry": entry})
    scored = score_cells(arch_ids, images, config, bench.pruned_ids[rows], device, done, on_cell)
    accuracy = bench.test_acc[rows].astype(float)
    params = bench.params[rows].astype(np.int64)

    live = bench.connected
    order = np.argsort(-bench.test_acc[live], kind="mergesort")
    bench_rank = {int(a): r + 1 for r, a in enumerate(bench.arch_ids[live][order])}

    def metrics(values):
        return ranker_metrics(values, accuracy, params, arch_ids, bench_rank)

    rankers = {f"score {k}": metrics(v) for k, v in scored["scores"].items()}
    rankers["params"] = metrics(params)
    for group, values in scored["rates"].items():
        rankers[f"firing rate {group}"] = metrics(values)
    combined = {f"{name} ({k})": _combination(name, np.asarray(v), params)
                for k, v in scored["scores"].items() for name in COMBINATIONS}
    beats = {}
    for label, values in combined.items():
        rankers[label] = metrics(values)
        beats[label] = _bootstrap_difference(values, params.astype(float), accuracy,
                                             seed=config.seed)
    for k, v in scored["scores"].items():
        beats[f"score {k}"] = _bootstrap_difference(np.asarray(v), params.astype(float),
                                                    accuracy, seed=config.seed)
    pickers = {f"score {k}": v for k, v in scored["scores"].items()}
    pickers["params"] = params
    pickers.update(combined)
    published = _published(bench, pickers, accuracy, config)
    cells = [{"arch_id": int(a), "pruned_id": int(bench.pruned_ids[r]),
              "params": int(bench.params[r]), "test_acc": float(bench.test_acc[r]),
              "val_acc": round(float(bench.final_val_acc[r]), 3),
              "scores": {k: scored["scores"][k][i] for k in config.kernels},
              "per_batch": {k: scored["per_batch"][k][i] for k in config.kernels},
              "rates": {g: scored["rates"][g][i] for g in scored["rates"]},
              "seconds": round(scored["seconds"][i], 3)}
             for i, (a, r) in enumerate(zip(arch_ids, rows))]
    return {"config": dataclasses.asdict(config),
            "network": {"name": config.network, "channels": config.channels,
                        "bn_stats": "per_step" if config.network == "scoring" else "pooled",
                        "down_spike": config.network == "training",
                        "cell": "pruned (a cell's score is its pruned cell's)"},
            "bench": {"source": bench.source, "fingerprint": bench.fingerprint,
                      "live": int(live.sum()),
                      "live_test_acc": {"mean": round(float(bench.test_acc[live].mean()), 3),
                                        "max": float(bench.test_acc[live].max())}},
            "sample_test_acc": {"mean": round(float(accuracy.mean()), 3),
                                "sd": round(float(accuracy.std(ddof=1)), 3)},
            "cells": cells, "rankers": rankers, "beats_params": beats,
            "snasnet_as_published": published,
            "score_seconds": {"mean": round(float(np.mean(scored["seconds"])), 3),
                              "total": round(float(np.sum(scored["seconds"])), 1)},
            "seconds": round(time.perf_counter() - start, 1)}
