"""Searches on SpikeNAS-Bench's table: random search, regularized evolution, local search.

No network is trained: "evaluating" a cell looks up the validation accuracy that
SpikeNAS-Bench logged for it (:mod:`snnlab.bench`) and charges the seconds its
training took. Each search **selects on validation accuracy only**: it is given
the validation column and the cost, never the test column. Test accuracy is read
afterwards, for the cell each search would have returned (its best by
validation so far): :func:`search_curves` turns that into curves of test accuracy
and regret against the number of cells evaluated, over many seeds.

* random search: distinct cells uniformly at random (the SNASNet paper's sampler
  with a trained "score"; Li & Talwalkar 2019 as a NAS baseline);
* regularized evolution (Real et al., AAAI 2019, Algorithm 1): a population of
  ``population`` cells; each cycle samples ``sample_size`` members uniformly (with
  replacement), mutates the best of them on one edge, evaluates the child, appends
  it and removes the *oldest* member (aging, not the worst);
* local search (White et al., UAI 2021): evaluate every neighbour of the current
  cell (all single-edge changes, in random order), move to the best one if it beats
  the current cell, else restart from a random unevaluated cell.

Counting: the budget counts *distinct* cells. Asking again for a cell already
evaluated is free (a look-up in one's own logs), so a search that only revisits
cells stops after ``100 * budget`` queries and its curve keeps its last value.
Cells whose input never reaches the output are skipped unless ``include_dead``:
that needs no training to see. Everything is deterministic under ``seed``.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

import numpy as np

from .bench import NUM_ARCHS, SpikeNASBench, arch_id_to_codes, codes_to_arch_id

__all__ = ["SEARCH_METHODS", "TabularSearchConfig", "SearchTrace", "SearchCurves",
           "run_tabular_search", "search_curves"]

SEARCH_METHODS = ("random", "evolution", "local")


@dataclass(frozen=True)
class TabularSearchConfig:
    """One search on the table.

    Args:
        method: one of :data:`SEARCH_METHODS`.
        budget: distinct cells to evaluate.
        seed: seed of every draw (``numpy.random.default_rng(seed)``).
        val_epoch: select on the validation accuracy after this many epochs and
            charge that fraction of each cell's training time (the bench's own
            ``early_stop_40`` is ``val_epoch=40``); ``None``: each cell's last epoch
            and its whole training time.
        include_dead: also evaluate cells whose input never reaches the output.
        population: evolution's population (ours: 10 cells, a tenth of a 100-cell budget).
        sample_size: evolution's tournament (ours: 3, in Real et al.'s range).
    """

    method: str = "evolution"
    budget: int = 100
    seed: int = 0
    val_epoch: Optional[int] = None
    include_dead: bool = False
    population: int = 10
    sample_size: int = 3

    def __post_init__(self):
        if self.method not in SEARCH_METHODS:
            raise ValueError(f"method must be one of {SEARCH_METHODS}; got {self.method!r}.")
        for name in ("budget", "population", "sample_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}.")
        if self.val_epoch is not None and (not isinstance(self.val_epoch, int)
                                           or self.val_epoch < 1):
            raise ValueError(f"val_epoch must be None (last epoch) or an epoch >= 1; got "
                             f"{self.val_epoch!r}.")


@dataclass(frozen=True, eq=False)
class SearchTrace:
    """What one search saw, in evaluation order (``n <= budget`` distinct cells).

    Attributes:
        config: the :class:`TabularSearchConfig`.
        arch_ids: ``[n]`` cells evaluated. val_acc: ``[n]`` their validation accuracy (%).
        seconds: ``[n]`` cumulative simulated training time.
        incumbent_ids: ``[n]`` the best cell by validation accuracy after each evaluation
            (the first one evaluated wins ties): what the search would return.
    """

    config: TabularSearchConfig
    arch_ids: np.ndarray
    val_acc: np.ndarray
    seconds: np.ndarray
    incumbent_ids: np.ndarray


class _Evaluator:
    """The search's only view of the bench: validation accuracy and cost, no test column."""

    def __init__(self, bench: SpikeNASBench, config: TabularSearchConfig):
        if config.val_epoch is None:
            self.fitness = bench.final_val_acc.astype(np.float64)          # [N]
            self.cost = bench.train_seconds.copy()                          # [N]
        else:
            self.fitness = bench.val_acc_at(config.val_epoch).astype(np.float64)
            self.cost = bench.train_seconds * np.minimum(1.0, config.val_epoch / bench.epochs)
        self.row = np.full(NUM_ARCHS, -1, dtype=np.int64)                  # id -> row
        self.row[bench.arch_ids] = np.arange(len(bench))
        usable = np.isfinite(self.fitness) & (bench.connected | config.include_dead)
        self.candidates = bench.arch_ids[usable]                            # [M] ascending
        self.usable = np.zeros(NUM_ARCHS, dtype=bool)
        self.usable[self.candidates] = True
        if not len(self.candidates):
            raise ValueError("no cell of this table can be evaluated (all dead or without "
                             "a validation accuracy at val_epoch).")
        self.budget, self.queries, self.max_queries = config.budget, 0, 100 * config.budget
        self.seen: dict = {}                                                # id -> val, in order

    @property
    def done(self) -> bool:
        return (len(self.seen) >= min(self.budget, len(self.candidates))
                or self.queries >= self.max_queries)

    def evaluate(self, arch_id: int) -> float:
        """Validation accuracy of a usable cell; a new cell spends one unit of budget."""
        self.queries += 1
        if arch_id not in self.seen:
            self.seen[arch_id] = float(self.fitness[self.row[arch_id]])
        return self.seen[arch_id]

    def random_unseen(self, rng: np.random.Generator) -> Optional[int]:
        for _ in range(1000):                      # cheap rejection while most cells are new
            arch_id = int(self.candidates[rng.integers(len(self.candidates))])
            if arch_id not in self.seen:
                return arch_id
        fresh = [int(a) for a in self.candidates if int(a) not in self.seen]
        return int(fresh[rng.integers(len(fresh))]) if fresh else None


def _neighbours(arch_id: int, usable: np.ndarray) -> list:
    """Usable cells that differ from ``arch_id`` on exactly one edge (at most 6 x 4 = 24)."""
    codes = list(arch_id_to_codes(arch_id))
    out = []
    for k in range(6):
        for code in range(5):
            if code != codes[k]:
                other = codes_to_arch_id(codes[:k] + [code] + codes[k + 1:])
                if usable[other]:
                    out.append(other)
    return out


def _mutate(arch_id: int, usable: np.ndarray, rng: np.random.Generator) -> int:
    """One edge gets another op, uniformly (Real et al.'s op mutation); redrawn if unusable."""
    options = _neighbours(arch_id, usable)
    return int(options[rng.integers(len(options))]) if options else arch_id


def _random_search(ev: _Evaluator, rng: np.random.Generator, config) -> None:
    for arch_id in rng.permutation(ev.candidates)[:config.budget]:
        ev.evaluate(int(arch_id))


def _evolution(ev: _Evaluator, rng: np.random.Generator, config) -> None:
    population: deque = deque()                        # oldest on the left
    while len(population) < config.population and not ev.done:
        arch_id = ev.random_unseen(rng)
        if arch_id is None:
            return
        ev.evaluate(arch_id)
        population.append(arch_id)
    while not ev.done:
        sample = [population[rng.integers(len(population))] for _ in range(config.sample_size)]
        parent = max(sample, key=lambda a: ev.seen[a])
        child = _mutate(parent, ev.usable, rng)
        ev.evaluate(child)
        population.append(child)
        population.popleft()                           # aging: the oldest dies, not the worst


def _local_search(ev: _Evaluator, rng: np.random.Generator, config) -> None:
    current = ev.random_unseen(rng)
    while current is not None and not ev.done:
        best, best_val = current, ev.evaluate(current)
        for other in rng.permutation(_neighbours(current, ev.usable)):
            if ev.done:
                return
            value = ev.evaluate(int(other))
            if value > best_val:
                best, best_val = int(other), value
        current = best if best != current else ev.random_unseen(rng)   # local optimum: restart


_SEARCHES = {"random": _random_search, "evolution": _evolution, "local": _local_search}


def run_tabular_search(bench: SpikeNASBench, config: TabularSearchConfig) -> SearchTrace:
    """Run one search on the table; see the module docstring for the three methods.

    Returns a :class:`SearchTrace` (no test accuracy in it: read it from the table,
    ``bench.test_acc[bench.index(trace.incumbent_ids[-1])]``, or use :func:`search_curves`).

    Example (needs a clone)::

        trace = run_tabular_search(bench, TabularSearchConfig("evolution", budget=100))
    """
    if not isinstance(bench, SpikeNASBench):
        raise TypeError(f"bench must be a SpikeNASBench (snnlab.bench.load_bench); got "
                        f"{type(bench).__name__}.")
    if not isinstance(config, TabularSearchConfig):
        raise TypeError(f"config must be a TabularSearchConfig; got {type(config).__name__}.")
    ev = _Evaluator(bench, config)
    _SEARCHES[config.method](ev, np.random.default_rng(config.seed), config)
    arch_ids = np.fromiter(ev.seen, dtype=np.int64)                        # [n] in order
    val = np.fromiter(ev.seen.values(), dtype=np.float64)                 # [n]
    best = np.zeros(len(val), dtype=np.int64)                              # running argmax
    for k in range(1, len(val)):
        best[k] = k if val[k] > val[best[k - 1]] else best[k - 1]
    return SearchTrace(config, arch_ids, val, np.cumsum(ev.cost[ev.row[arch_ids]]),
                       arch_ids[best])


@dataclass(frozen=True, eq=False)
class SearchCurves:
    """Curves of one method over seeds; ``[S, budget]`` arrays, column k = after k+1 cells.

    Attributes:
        config: the config of seed 0 (``seed`` varies). seeds: ``[S]``.
        test_acc: test accuracy (%) of the cell each search would return (best by val).
        regret: ``best_test - test_acc``, with ``best_test`` the best test accuracy of
            any cell the search may evaluate (the oracle's pick).
        hours: cumulative simulated training time.
    """

    config: TabularSearchConfig
    seeds: np.ndarray
    test_acc: np.ndarray
    regret: np.ndarray
    hours: np.ndarray
    best_test: float

    def summary(self, at: Iterable[int] = (10, 50, 100)) -> dict:
        """Mean and sd (over seeds, ddof 1) after ``at`` evaluated cells, rounded to 3
        decimals: ``{"method", "seeds", "best_test", "at": {n: {"test_acc": {"mean", "sd"},
        "regret": ..., "hours": ...}}}``."""
        out = {"method": self.config.method, "seeds": len(self.seeds),
               "best_test": self.best_test, "at": {}}
        for n in at:
            if 1 <= n <= self.test_acc.shape[1]:
                k = n - 1
                out["at"][n] = {name: {"mean": round(float(np.mean(a[:, k])), 3),
                                       "sd": round(float(np.std(a[:, k], ddof=1)), 3)
                                       if len(self.seeds) > 1 else 0.0}
                                for name, a in (("test_acc", self.test_acc),
                                                ("regret", self.regret), ("hours", self.hours))}
        return out


def _pad(values: np.ndarray, length: int) -> np.ndarray:
    """A search that stopped early keeps its last value (it returns the same cell)."""
    return np.concatenate([values, np.repeat(values[-1:], length - len(values))])


def search_curves(bench: SpikeNASBench, config: TabularSearchConfig,
                  seeds: Iterable[int] = range(20)) -> SearchCurves:
    """Run ``config`` once per seed and read the test accuracy of each search's pick.

    Args:
        bench: the table. config: the search (its ``seed`` is replaced by each of ``seeds``).
        seeds: at least one seed; the issue's bar is >= 20.
    Returns:
        :class:`SearchCurves` with ``[S, budget]`` arrays.
    """
    seeds = np.array(list(seeds), dtype=np.int64)
    if not len(seeds):
        raise ValueError("seeds must hold at least one seed (e.g. range(20)).")
    usable = _Evaluator(bench, config).candidates
    best_test = float(bench.test_acc[np.searchsorted(bench.arch_ids, usable)].max())
    rows = {"test_acc": [], "hours": []}
    for seed in seeds:
        trace = run_tabular_search(bench, dataclasses.replace(config, seed=int(seed)))
        picked = bench.test_acc[np.searchsorted(bench.arch_ids, trace.incumbent_ids)]
        rows["test_acc"].append(_pad(picked, config.budget))
        rows["hours"].append(_pad(trace.seconds / 3600, config.budget))
    test = np.stack(rows["test_acc"])                                       # [S, budget]
    return SearchCurves(config, seeds, test, best_test - test, np.stack(rows["hours"]),
                        best_test)
