"""Multi-objective selection: the accuracy-vs-spikes Pareto front, and a pick from it.

A spiking network is judged on two axes at least: accuracy (higher is better)
and spikes per image (lower is better; energy follows them). AutoSNN,
MA-DARTS and EMO-SNAS all use the spike count as a second objective. A point
*dominates* another when it is no worse on every objective and better on one;
the **Pareto front** is the set of points no other point dominates.

Points can be plain dicts (``{"accuracy": 0.91, "spikes": 8e4}``),
:class:`~snnlab.search.result.SearchResult` objects (their ``metrics``), or any
object with the objectives as attributes. Objectives named in :data:`MAXIMIZE`
are maximised, all others minimised; pass ``maximize=`` to say otherwise.

Example:
    >>> pts = [{"accuracy": 0.90, "spikes": 100}, {"accuracy": 0.85, "spikes": 50},
    ...        {"accuracy": 0.80, "spikes": 60}]
    >>> [p["spikes"] for p in pareto_front(pts)]
    [100, 50]
    >>> pick(pts, budget={"spikes": 80})["accuracy"]
    0.85
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence

__all__ = ["MAXIMIZE", "objective_values", "dominates", "pareto_front", "pick",
           "candidate_points"]

MAXIMIZE = frozenset({"accuracy", "val_acc", "test_acc", "score"})
"""Objectives maximised by default; every other objective (spikes, energy, params, seconds)
is minimised."""


def objective_values(point: Any, objectives: Sequence[str]) -> Optional[tuple]:
    """The point's values of ``objectives``, or None when one is missing, None or NaN.

    A :class:`~snnlab.search.result.SearchResult` is read through its ``metrics``.
    """
    source = getattr(point, "metrics", point)
    values = []
    for name in objectives:
        value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
        if value is None or isinstance(value, bool):
            return None
        value = float(value)
        if math.isnan(value):
            return None
        values.append(value)
    return tuple(values)


def _signs(objectives: Sequence[str], maximize: Optional[Iterable[str]]) -> tuple:
    if isinstance(objectives, str) or len(objectives) < 1:
        raise ValueError(f"objectives must be a sequence of names, e.g. ('accuracy', 'spikes'); "
                         f"got {objectives!r}.")
    up = MAXIMIZE if maximize is None else frozenset(maximize)
    return tuple(1.0 if name in up else -1.0 for name in objectives)


def dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[float]) -> bool:
    """Whether values ``a`` dominate ``b``: no worse everywhere, better somewhere
    (``signs``: +1 maximise, -1 minimise, per objective)."""
    no_worse = all(s * x >= s * y for x, y, s in zip(a, b, signs))
    return no_worse and any(s * x > s * y for x, y, s in zip(a, b, signs))


def pareto_front(points: Iterable[Any], objectives: Sequence[str] = ("accuracy", "spikes"),
                 maximize: Optional[Iterable[str]] = None) -> list:
    """The points no other point dominates, in their input order.

    Args:
        points: dicts, SearchResults or objects with the objectives as attributes.
            A point missing an objective (or holding None/NaN) is left out.
        objectives: names; those in :data:`MAXIMIZE` (or in ``maximize``) are
            maximised, the others minimised.
        maximize: the names to maximise, replacing :data:`MAXIMIZE`.
    Returns:
        the non-dominated points (equal points all stay), as the objects given.
    """
    signs = _signs(objectives, maximize)
    scored = [(p, v) for p in points if (v := objective_values(p, objectives)) is not None]
    return [p for p, v in scored if not any(dominates(w, v, signs) for _, w in scored)]


def pick(points: Iterable[Any], objectives: Sequence[str] = ("accuracy", "spikes"),
         maximize: Optional[Iterable[str]] = None,
         budget: Optional[Mapping[str, float]] = None) -> Any:
    """One point of the front: the best on the first objective within ``budget``.

    Args:
        points, objectives, maximize: as :func:`pareto_front`.
        budget: bounds on objectives, e.g. ``{"spikes": 1e5}`` (at most 1e5 spikes
            per image; a maximised objective's bound is a minimum instead).
    Returns:
        the chosen point; ties on the first objective go to the better second
        objective, then to the earlier point.
    Raises:
        ValueError: no point has every objective, or none meets the budget.
    """
    signs = _signs(objectives, maximize)
    budget = dict(budget or {})
    names = list(objectives) + [k for k in budget if k not in objectives]
    up = MAXIMIZE if maximize is None else frozenset(maximize)
    front = pareto_front(points, objectives, maximize)
    allowed = []
    for p in front:
        values = objective_values(p, names)
        if values is None:
            continue
        inside = all((v >= budget[n]) if n in up else (v <= budget[n])
                     for n, v in zip(names, values) if n in budget)
        if inside:
            allowed.append((p, values[:len(objectives)]))
    if not allowed:
        raise ValueError(f"no point meets the budget {budget} on objectives {tuple(objectives)} "
                         f"({len(front)} on the front); relax the budget.")
    best = max(range(len(allowed)),
               key=lambda i: (tuple(s * v for s, v in zip(signs, allowed[i][1])), -i))
    return allowed[best][0]


def candidate_points(result: Any) -> list:
    """Every architecture a search looked at, as points for :func:`pareto_front`.

    Training-free search: one point per scored candidate (``genotype``, ``score``,
    ``spikes`` when measured, ``order``). Differentiable search: one point per
    epoch's derived genotype (``genotype``, ``accuracy`` = the supernet's val
    accuracy, ``spikes`` = its NoS per image on the val half, ``epoch``).
    """
    points = []
    for row in result.history:
        if "score" in row:
            points.append({"genotype": row.get("genotype"), "score": row["score"],
                           "spikes": row.get("spikes"), "order": row.get("order")})
        else:
            points.append({"genotype": row.get("genotype"), "accuracy": row.get("val_acc"),
                           "spikes": row.get("val_nos", row.get("nos")),
                           "epoch": row.get("epoch")})
    return points
