"""SNASNet's training-free searches: random (the paper's) and regularized evolution.

:func:`random_search` and :func:`evolutionary_search` take a space, a builder and
scoring batches and score candidates with :func:`snnlab.trainfree.snasnet_score`
(each genotype once, with weights seeded by the search seed and the genotype).
:func:`run_snasnet` builds all three from a :class:`SNASNetSearchConfig` (itself
built from a profile), so the search runs like every other registered method:
``run_snasnet(config, bundle) -> SearchResult``.

Every scored candidate's row in ``result.history`` also holds ``spikes``: its
spikes per image while scored (untrained), the second objective of
:func:`snnlab.search.pareto_front` (score vs spikes).

Example::

    config = SNASNetSearchConfig.from_profile(get_profile("tiny"), space="bw", candidates=20)
    result = run_snasnet(config, load_dataset("digits"))
    result.genotype, result.metrics["score"], result.metrics["spikes"]
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import random
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np
import torch
from torch import nn

from .neurons import LIF
from .profiles import Profile, seed_everything
from .search.config import check_fields, config_from_profile, settings_of
from .search.result import SearchResult, trainfree_result
from .train import _want_progress, resolve_device
from .trainfree import KERNELS, SCORE_MODES, _as_batches, snasnet_score

__all__ = ["SNASNetSearchConfig", "STRATEGIES", "random_search", "evolutionary_search",
           "run_snasnet", "build_snasnet_network"]

STRATEGIES = ("random", "evolution")


@dataclass(frozen=True)
class SNASNetSearchConfig:
    """Settings of one training-free SNASNet search.

    Search: ``strategy`` (``"random"``, the paper's, or ``"evolution"``), ``space``
    (``"fw"`` forward cells, ``"bw"`` also backward edges), ``candidates`` distinct
    cells to score (paper: 5000), evolution's ``population`` and ``sample_size``.
    Score: ``kernel`` (:data:`snnlab.trainfree.KERNELS`), BN ``mode`` while scoring,
    ``reset_between_batches``, ``batches`` of ``batch_size`` images (official: 2 of 256).
    Scored network (the macro net of every candidate): ``channels``, ``fc``,
    ``votes``, ``last_pool``, ``T``. ``seed``: draws, batches and weights.
    """

    strategy: str = "random"
    space: str = "fw"
    candidates: int = 100
    population: int = 20
    sample_size: int = 5
    kernel: str = "sahd"
    mode: str = "train"
    reset_between_batches: bool = True
    batches: int = 2
    batch_size: int = 256
    channels: int = 16
    fc: int = 128
    votes: int = 10
    last_pool: int = 2
    T: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, positive=("candidates", "population", "sample_size", "batches",
                                     "channels", "fc", "votes", "last_pool", "T"),
                     choices={"strategy": STRATEGIES, "space": ("fw", "bw"),
                              "kernel": KERNELS, "mode": SCORE_MODES})
        if self.batch_size < 2:
            raise ValueError(f"SNASNetSearchConfig.batch_size must be >= 2 (the kernel compares "
                             f"samples); got {self.batch_size!r}.")
        if self.sample_size > self.population:
            raise ValueError(f"SNASNetSearchConfig.sample_size ({self.sample_size}) must be <= "
                             f"population ({self.population}).")

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> "SNASNetSearchConfig":
        """The profile's SNASNet settings (``snasnet_*``, ``T``, ``seed``), then ``overrides``.

        Example:
            >>> from snnlab.profiles import get_profile
            >>> SNASNetSearchConfig.from_profile(get_profile("tiny"), space="bw").space
            'bw'
        """
        s = settings_of(profile, "snasnet")
        base = dict(candidates=s.candidates, batch_size=s.score_batch_size, channels=s.channels,
                    fc=s.fc, votes=s.votes, last_pool=s.last_pool, T=profile.T,
                    seed=profile.seed)
        return config_from_profile(cls, profile, base, overrides)


def _builder(config: SNASNetSearchConfig, bundle):
    """``genotype -> SNASNet`` at the config's size, for the bundle's images."""
    from .snasnet import SNASNet

    def build(genotype):
        return SNASNet(genotype, in_channels=bundle.in_channels, num_classes=bundle.num_classes,
                       C=config.channels, T=config.T, image_size=bundle.image_size,
                       fc_hidden=config.fc, votes_per_class=config.votes,
                       last_pool=config.last_pool)
    return build


def run_snasnet(config: SNASNetSearchConfig, bundle,
                device: Union[str, torch.device, None] = None, checkpoint=None,
                resume: bool = False, progress: Optional[bool] = None) -> SearchResult:
    """Score ``config.candidates`` untrained cells on ``bundle.train`` images; keep the best.

    Args:
        config: a :class:`SNASNetSearchConfig`.
        bundle: a :class:`~snnlab.data.DataBundle`; scoring batches come from its
            ``train`` set (:func:`snnlab.trainfree.sample_batches`, seeded).
        device: None picks CUDA when available.
        checkpoint, resume: not supported (a training-free search has no state worth
            keeping between candidates); must be None / False.
        progress: ``tqdm.auto`` bar; None follows ``$SNNLAB_PROGRESS`` / the terminal.
    Returns:
        a :class:`~snnlab.search.result.SearchResult` with ``method="snasnet"``;
        ``history`` holds every candidate in scoring order, ``ranking`` best first;
        ``config`` the config's fields and the score's settings (``input_shape``,
        ``alpha``, ``eps``, ...).
    """
    from .snasnet import SNASNetSpace
    from .trainfree import sample_batches
    if not isinstance(config, SNASNetSearchConfig):
        raise TypeError(f"config must be a SNASNetSearchConfig; got {type(config).__name__}.")
    if checkpoint is not None or resume:
        raise ValueError("the training-free search takes no checkpoint: it keeps no training "
                         "state; rerun it (same seed, same result) instead of resuming.")
    device = resolve_device(device)
    batches = sample_batches(bundle.train, batches=config.batches,
                             batch_size=config.batch_size, seed=config.seed)
    kwargs = dict(seed=config.seed, progress=progress, kernel=config.kernel, mode=config.mode,
                  reset_between_batches=config.reset_between_batches, device=device)
    space, build = SNASNetSpace(kind=config.space), _builder(config, bundle)
    if config.strategy == "evolution":
        result = evolutionary_search(space, build, batches, config.candidates,
                                     population=config.population,
                                     sample_size=config.sample_size, **kwargs)
    else:
        result = random_search(space, build, batches, config.candidates, **kwargs)
    return result.replace(
        config={**result.config, **dataclasses.asdict(config)},
        provenance={"dataset": getattr(bundle, "name", None), **result.provenance})


def build_snasnet_network(result: Union[SearchResult, Any], profile: Profile, bundle,
                          auxiliary: bool = False):
    """The found cell's :class:`~snnlab.snasnet.SNASNet`, sized by the profile for retraining.

    ``result``: a SearchResult or a :class:`~snnlab.snasnet.CellGenotype`.
    ``auxiliary``: SNASNet has no auxiliary head; must be False.
    """
    from .snasnet import build_snasnet
    if auxiliary:
        raise ValueError("SNASNet networks have no auxiliary head; retrain with aux_weight=0.")
    genotype = result.best_genotype() if isinstance(result, SearchResult) else result
    return build_snasnet(genotype, profile, bundle)


# ----------------------------------------------------------------------------- searches

def _genotype_key(genotype) -> str:
    """A canonical string of a genotype (its ``to_dict()`` as sorted JSON): the dedupe key."""
    to_dict = getattr(genotype, "to_dict", None)
    if not callable(to_dict):
        raise TypeError(f"genotypes must have a to_dict() method; got {type(genotype).__name__}.")
    return json.dumps(to_dict(), sort_keys=True)


def _candidate_seed(seed: int, key: str) -> int:
    """Seed of one candidate's weights: depends on the search seed and the genotype only,
    so a genotype gets the same initial weights in every search (random or evolution)."""
    digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class _Run:
    """Scores genotypes once each, keeps the books (order, timing, draws), drives the bar."""

    def __init__(self, method, build_model, batches, candidates, seed, progress, score_kwargs):
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"candidates must be an int >= 1 (paper: 5000); got {candidates!r}.")
        if not callable(build_model):
            raise TypeError("build_model must be a callable genotype -> nn.Module.")
        allowed = set(inspect.signature(snasnet_score).parameters) - {"model", "batches"}
        unknown = sorted(set(score_kwargs) - allowed)
        if unknown:
            raise TypeError(f"unknown score argument(s) {unknown}; valid: {sorted(allowed)}.")
        self.method, self.build_model, self.seed = method, build_model, seed
        self.batches = _as_batches(batches)
        self.candidates, self.score_kwargs = candidates, score_kwargs
        self.max_draws = 20 * candidates + 1000
        self.entries: dict[str, dict] = {}
        self.draws = 0
        self.start = time.perf_counter()
        # every candidate reseeds the global RNGs; the caller gets its own states back
        self.rng_states = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
                           torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None)
        self.bar = None
        if _want_progress(progress):
            from tqdm.auto import tqdm
            self.bar = tqdm(total=candidates, desc=f"{method} search", unit="cand", leave=False)

    def more(self) -> bool:
        return len(self.entries) < self.candidates and self.draws < self.max_draws

    def evaluate(self, genotype) -> Optional[dict]:
        """Score ``genotype`` unless it was scored before; return its new entry, or None."""
        self.draws += 1
        key = _genotype_key(genotype)
        if key in self.entries:
            return None
        t0 = time.perf_counter()
        seed_everything(_candidate_seed(self.seed, key))
        model = self.build_model(genotype)
        with _SpikeCount(model) as count:        # the candidate's second objective
            score = snasnet_score(model, self.batches, **self.score_kwargs)
        images = sum(b.shape[0] for b in self.batches)
        entry = {"genotype": json.loads(key), "score": score, "order": len(self.entries),
                 "seconds": time.perf_counter() - t0, "spikes": count.total() / images,
                 "_genotype": genotype}
        self.entries[key] = entry
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(best=f"{max(e['score'] for e in self.entries.values()):.2f}",
                                 refresh=False)
        return entry

    def close(self) -> None:
        """Close the progress bar and restore the global RNG states (also after an error)."""
        if self.bar is not None:
            self.bar.close()
        python, numpy, torch_cpu, cuda = self.rng_states
        random.setstate(python)
        np.random.set_state(numpy)
        torch.set_rng_state(torch_cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)

    def result(self, space, settings: dict) -> SearchResult:
        if len(self.entries) < self.candidates:
            warnings.warn(f"{self.method} search scored {len(self.entries)} distinct genotypes "
                          f"of the {self.candidates} asked for: {self.draws} draws found no "
                          "more (the space is small); the result holds all it found.")
        ranking = sorted(self.entries.values(), key=lambda e: (-e["score"], e["order"]))
        if ranking[0]["score"] == -math.inf:
            warnings.warn("every candidate scored -inf (a singular kernel: silent or identical "
                          "spike codes), so the ranking is arbitrary. At initialisation, "
                          "mode='eval' often silences the network (BN running statistics do "
                          "not normalise yet); score with mode='train'.")
        best = ranking[0]["_genotype"]
        rows = sorted(({k: v for k, v in e.items() if k != "_genotype"} for e in ranking),
                      key=lambda e: e["order"])
        score = dict(inspect.signature(snasnet_score).parameters)
        score = {k: self.score_kwargs.get(k, p.default) for k, p in score.items()
                 if k not in ("model", "batches")}
        score["device"] = None if score["device"] is None else str(score["device"])
        shape = tuple(self.batches[0].shape)
        settings = {"seed": self.seed, "space": _describe_space(space),
                    "batches": len(self.batches), "batch_size": shape[0],
                    "input_shape": list(shape[1:]), **settings, **score}
        return trainfree_result(self.method, best, rows, time.perf_counter() - self.start,
                                self.draws, settings)


class _SpikeCount:
    """Forward hooks summing every LIF's output spikes while a candidate is scored."""

    def __init__(self, model: nn.Module):
        self.sum: Union[float, torch.Tensor] = 0.0
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()
                        if isinstance(m, LIF)]

    def _hook(self, module: nn.Module, args, output) -> None:
        spikes = output[0] if isinstance(output, tuple) else output       # [S, B, ...]
        self.sum = self.sum + spikes.detach().sum(dtype=torch.float64)

    def total(self) -> float:
        return float(self.sum)

    def __enter__(self) -> "_SpikeCount":
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()


def _describe_space(space) -> dict:
    """The JSON-able facts of a search space (kind, ops, size where it has them)."""
    facts = {"type": type(space).__name__}
    for name in ("kind", "ops", "size", "require_input_output_edge"):
        value = getattr(space, name, None)
        if value is not None:
            facts[name] = list(value) if isinstance(value, tuple) else value
    return facts


def _check_space(space, *methods: str) -> None:
    for name in methods:
        if not callable(getattr(space, name, None)):
            raise TypeError(f"space must have a {name}(...) method (see "
                            f"snnlab.snasnet.SNASNetSpace); {type(space).__name__} has none.")


def random_search(space, build_model: Callable[..., nn.Module], batches: Iterable,
                  candidates: int, seed: int = 0, progress: Optional[bool] = None,
                  **score_kwargs) -> SearchResult:
    """The paper's search: draw genotypes at random, score each, the best score wins.

    Draws continue until ``candidates`` distinct genotypes are scored (a repeat is
    counted in ``draws`` but not rescored), or the space runs out (a warning).

    Args:
        space: has ``sample(rng: random.Random) -> genotype``; genotypes have ``to_dict()``.
        build_model: ``genotype -> nn.Module`` (untrained), e.g.
            ``lambda g: build_snasnet(g, profile, bundle)``.
        batches: image batches scored for every candidate (see :func:`sample_batches`).
        candidates: distinct genotypes to score (paper: 5000).
        seed: seeds the draws (``random.Random(seed)``) and, with the genotype, each
            candidate's weights (``seed_everything`` before ``build_model``), so the
            same seed gives the same ranking and a genotype gets the same weights in
            every search. The global RNG states are restored afterwards.
        progress: ``tqdm.auto`` bar; None follows ``$SNNLAB_PROGRESS`` / the terminal.
        **score_kwargs: passed to :func:`snasnet_score` (kernel, mode, device, ...).
    Returns:
        a :class:`~snnlab.search.SearchResult` with ``method="snasnet"`` and
        ``config["strategy"] == "random"``; ``ranking`` lists the candidates best first.

    Reference: SNASNet ``model_snn.py`` ``find_best_neuroncell`` (argmax of scores).
    """
    _check_space(space, "sample")
    run = _Run("random", build_model, batches, candidates, seed, progress, score_kwargs)
    rng = random.Random(seed)
    try:
        while run.more():
            run.evaluate(space.sample(rng))
    finally:
        run.close()
    return run.result(space, {"candidates": candidates})


def evolutionary_search(space, build_model: Callable[..., nn.Module], batches: Iterable,
                        candidates: int, population: int = 20, sample_size: int = 5,
                        seed: int = 0, progress: Optional[bool] = None,
                        **score_kwargs) -> SearchResult:
    """Regularized (aging) evolution with the score as fitness; not in the paper.

    1. Fill a population of ``population`` distinct random genotypes.
    2. Repeat until ``candidates`` distinct genotypes are scored: pick
       ``sample_size`` members at random, mutate the best of them
       (``space.mutate(parent, rng)``), score the child if it is new, append it and
       remove the *oldest* member (aging keeps the search from clinging to one
       lucky score). A repeated child is not rescored: the step is drawn again.

    With ``candidates <= population`` this is a random search. Budget, seeding,
    ``build_model``, ``batches`` and the return value are as in :func:`random_search`.

    Args:
        population: members alive at once (Real et al. used 100 for 20k models;
            20 suits budgets of a few hundred).
        sample_size: tournament size; larger means greedier (Real et al.: 25 of 100).

    Reference: Real, Aggarwal, Huang & Le, "Regularized evolution for image
    classifier architecture search", AAAI 2019, Algorithm 1.
    """
    _check_space(space, "sample", "mutate")
    for name, value in (("population", population), ("sample_size", sample_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    if sample_size > population:
        raise ValueError(f"sample_size ({sample_size}) must be <= population ({population}).")
    run = _Run("evolution", build_model, batches, candidates, seed, progress, score_kwargs)
    rng = random.Random(seed)
    alive: deque = deque()
    try:
        while run.more() and len(alive) < population:
            entry = run.evaluate(space.sample(rng))
            if entry is not None:
                alive.append(entry)
        while run.more():
            contenders = rng.sample(list(alive), min(sample_size, len(alive)))
            parent = max(contenders, key=lambda e: e["score"])     # first of equals wins
            child = run.evaluate(space.mutate(parent["_genotype"], rng))
            if child is not None:
                alive.append(child)
                alive.popleft()                                     # the oldest dies
    finally:
        run.close()
    return run.result(space, {"candidates": candidates, "population": population,
                              "sample_size": sample_size})
