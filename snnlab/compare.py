"""Chapter 7's comparison: every search method on one data set, one budget, one recipe.

A *contender* is one way of getting a network: a search method with its switches
(SNASNet's score, DARTS, MA-DARTS, SpikeDHS with or without DGS and the temporal
search) or a baseline that searches nothing (a random SNASNet cell, the hand-designed
:class:`~snnlab.models.SpikingCNN`). :func:`run_contender` searches, builds the found
network, retrains it with **one recipe for everyone** (the profile's baseline recipe,
:func:`snnlab.profiles.training_recipe`) and measures it on the test split: accuracy,
spikes and energy per image, parameters, and what the search cost (seconds, images
seen). The one exception to the one recipe is the learning rate of a network family that
registers its own (``SearchMethod.retrain_overrides``: SNASNet cells, searched or random). :func:`compare` does that for every contender and seed, one JSON line per run
(so a killed study resumes where it stopped), and :func:`summarise` turns the rows
into mean +- sd per contender.

Budgets: the differentiable searches get the same number of epochs on the same 50/50
split of the training set (``search_epochs``), so they see the same images; SNASNet
scores ``snasnet_candidates`` untrained cells on two fixed batches (forward passes
only). Each row records the images and seconds it actually took.
"""
from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from .data import load_dataset, make_loaders
from .profiles import Profile, seed_everything
from .safeio import append_json_line, read_json_lines
from .train import TrainConfig, evaluate, fit, resolve_device

__all__ = ["Contender", "CONTENDERS", "run_contender", "compare", "summarise", "read_rows",
           "verdict", "mean_difference"]


@dataclass(frozen=True)
class Contender:
    """One way of getting a network.

    Attributes:
        name: the label in tables and plots.
        method: ``"snasnet"``, ``"darts"``, ``"madarts"``, ``"spikedhs"`` (a search) or
            ``"random_cell"``, ``"baseline"`` (no search).
        switches: keyword switches of the method (``{"dgs": True}``, ``{"attention": "eca"}``).
    """

    name: str
    method: str
    switches: dict = field(default_factory=dict)


CONTENDERS: tuple = (
    Contender("SNASNet (score)", "snasnet"),
    Contender("DARTS", "darts"),
    Contender("MA-DARTS (ECA)", "madarts", {"attention": "eca"}),
    Contender("SpikeDHS", "spikedhs"),
    Contender("SpikeDHS +DGS +temporal", "spikedhs", {"dgs": True, "temporal": True}),
    Contender("random cell", "random_cell"),
    Contender("hand-designed CNN", "baseline"),
)
"""The contenders of chapter 7, searched methods first."""


def _params(model: nn.Module) -> int:
    """Parameters of the deployed network (an auxiliary head is not part of it)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not name.startswith("auxiliary_head."))


def _family_lr(method: str, profile: Profile) -> Optional[float]:
    """The retraining learning rate a registered method asks for, or None (the recipe's)."""
    if method == "baseline":
        return None
    from .search import get_search
    overrides = get_search(method).retrain_overrides
    return (overrides(profile) or {}).get("lr") if overrides else None


def _random_cell(profile: Profile, bundle):
    """One cell drawn as SNASNet's sampler draws them (seeded by the profile): no search."""
    from .snasnet import SNASNetSpace, build_snasnet
    genotype = SNASNetSpace(kind="fw").sample(random.Random(profile.seed))
    return build_snasnet(genotype, profile, bundle), {"seconds": 0.0, "images": 0,
                                                       "genotype": genotype.to_dict()}


def _search(contender: Contender, profile: Profile, bundle, device, search_epochs: int,
            candidates: Optional[int] = None):
    """Run the contender's registered search; the found network and what it cost."""
    from .search import get_search
    method = get_search(contender.method)
    if method.differentiable:
        budget = {"epochs": search_epochs}
    else:                                       # a training-free search: cells scored
        budget = {"candidates": candidates} if candidates else {}
    config = method.config(profile, **{**budget, **contender.switches})
    result = method.search(config, bundle, device=device, progress=False)
    cost = {"seconds": result.cost["seconds"], "images": result.cost.get("images_seen"),
            "genotype": result.to_dict()["genotype"],
            "search_accuracy": result.metrics.get("accuracy"),
            "search_spikes": result.metrics.get("spikes")}
    for key in ("epochs", "candidates"):
        if key in result.cost:
            cost[key] = result.cost[key]
    return method.build_network(result, profile, bundle), cost


def run_contender(contender: Contender, profile: Profile, bundle, seed: int,
                  search_epochs: int, device=None, candidates: Optional[int] = None) -> dict:
    """Search (if any), retrain with the baseline recipe, measure on test: one row.

    Args:
        contender: what to run.
        profile: the run's profile; ``seed`` replaces its seed (search and retraining).
        bundle: the data (:func:`snnlab.data.load_dataset`), the same for every contender.
        search_epochs: epochs of every differentiable search (same images for each).
        candidates: cells a training-free search scores (default: the profile's).
    Returns:
        ``{"contender", "method", "seed", "accuracy", "nos_per_image",
        "energy_per_image_uJ", "params", "search_seconds", "search_images",
        "train_seconds", "genotype", ...}``.
    """
    from .cli import build_baseline
    profile = dataclasses.replace(profile, seed=seed)
    device = resolve_device(device)
    seed_everything(seed)
    if contender.method == "random_cell":
        model, cost = _random_cell(profile, bundle)
    elif contender.method == "baseline":
        model, cost = build_baseline(profile, bundle), {"seconds": 0.0, "images": 0}
    else:                                       # any registered search (ValueError lists them)
        model, cost = _search(contender, profile, bundle, device, search_epochs, candidates)
    seed_everything(seed)                       # retraining starts from the same RNG state
    # one recipe for all (the baseline's epochs, optimizer, schedule, batch size), with the
    # learning rate of the network's family: SNASNet cells (searched or random) train at
    # their own (chapter 3 measured it); at the baseline's they stall near chance on tiny
    family = "snasnet" if contender.method == "random_cell" else contender.method
    lr = _family_lr(family, profile)
    config = TrainConfig.from_profile(profile, **({"lr": lr} if lr is not None else {}))
    loaders = make_loaders(bundle, batch_size=profile.batch_size, seed=seed,
                           num_workers=profile.num_workers)
    t0 = time.perf_counter()
    fit(model, loaders.train, None, config, device=device, progress=False)
    train_seconds = time.perf_counter() - t0
    test = evaluate(model, loaders.test, device=device, count_spikes=True)
    return {"contender": contender.name, "method": contender.method,
            "switches": contender.switches, "seed": seed,
            "accuracy": test["accuracy"], "nos_per_image": test["nos_per_image"],
            "energy_per_image_uJ": test["energy_per_image_uJ"], "params": _params(model),
            "search_seconds": cost.pop("seconds"), "search_images": cost.pop("images"),
            "train_seconds": train_seconds, "train_epochs": config.epochs,
            "train_lr": config.lr, **cost}


def read_rows(path: Union[str, os.PathLike, None]) -> List[dict]:
    """The rows of a study's JSON-lines file (a line cut by a killed run is dropped)."""
    return read_json_lines(path)


def compare(profile: Profile, contenders: Sequence[Contender] = CONTENDERS,
            seeds: Sequence[int] = (0, 1, 2), search_epochs: int = 4,
            candidates: Optional[int] = None, rows_path: Union[str, os.PathLike, None] = None, device=None,
            log: Callable[[str], None] = print) -> List[dict]:
    """Run every contender at every seed; rows already in ``rows_path`` are kept (resume).

    The data set is loaded once per seed (its validation split depends on the seed) and
    shared by every contender of that seed.
    """
    done = read_rows(rows_path) if rows_path else []
    have = {(r["contender"], r["seed"]) for r in done}
    rows = list(done)
    for seed in seeds:
        bundle = None
        for contender in contenders:
            if (contender.name, seed) in have:
                continue
            if bundle is None:
                bundle = load_dataset(profile.dataset, seed=seed, val_fraction=profile.val_fraction)
            row = run_contender(contender, profile, bundle, seed, search_epochs, device,
                                candidates)
            rows.append(row)
            if rows_path:
                append_json_line(rows_path, row)
            log(f"seed {seed} {contender.name}: acc {row['accuracy']:.3f}, "
                f"{row['nos_per_image']:.0f} spikes/image, search {row['search_seconds']:.0f} s")
    return rows


METRICS = ("accuracy", "nos_per_image", "energy_per_image_uJ", "params", "search_seconds",
           "search_images", "train_seconds")


def summarise(rows: Iterable[dict], metrics: Sequence[str] = METRICS) -> Dict[str, dict]:
    """Mean and sample sd (ddof=1) of each metric per contender, in first-seen order.

    Returns:
        ``{contender: {"seeds": n, metric: {"mean", "sd"}, ...}}``; sd is None for one seed.
    """
    groups: Dict[str, List[dict]] = {}
    for row in rows:
        groups.setdefault(row["contender"], []).append(row)
    out = {}
    for name, group in groups.items():
        entry = {"seeds": len(group), "method": group[0]["method"]}
        for metric in metrics:
            values = np.array([float(r[metric]) for r in group], dtype=float)
            sd = float(values.std(ddof=1)) if len(values) > 1 else None
            entry[metric] = {"mean": float(values.mean()), "sd": sd}
        out[name] = entry
    return out


def verdict(summary: Dict[str, dict], a: str, b: str, metric: str = "accuracy") -> str:
    """How contender ``a`` stands against ``b`` on ``metric``, judged by the seed spread.

    ``"higher"`` or ``"lower"`` only when the intervals mean +- sd do not overlap;
    otherwise ``"within spread"``: three seeds cannot tell these two apart on this metric.
    A deliberately cautious rule for a handful of seeds, not a significance test.
    """
    x, y = summary[a][metric], summary[b][metric]
    sx, sy = x["sd"] or 0.0, y["sd"] or 0.0
    if x["mean"] - sx > y["mean"] + sy:
        return "higher"
    if x["mean"] + sx < y["mean"] - sy:
        return "lower"
    return "within spread"


def mean_difference(a: dict, b: dict, n_a: int, n_b: int) -> Tuple[float, float]:
    """``mean_a - mean_b`` and its standard error ``sqrt(sd_a^2/n_a + sd_b^2/n_b)`` (Welch).

    Args:
        a, b: ``{"mean", "sd"}`` over ``n_a`` and ``n_b`` independent repeats (seeds). For
            "one random cell" pass the population's sd with ``n = 1``: one draw.
    Returns:
        ``(difference, standard error)``; a difference of 2-3 standard errors or more is
        unlikely to be seed noise.
    """
    if n_a < 1 or n_b < 1:
        raise ValueError(f"n_a and n_b must be >= 1; got {n_a} and {n_b}.")
    se = math.sqrt((a["sd"] or 0.0) ** 2 / n_a + (b["sd"] or 0.0) ** 2 / n_b)
    return a["mean"] - b["mean"], se
