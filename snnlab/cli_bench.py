"""SpikeNAS-Bench on the command line: ``python -m snnlab bench search --bench PATH ...``.

Runs the tabular searches of :mod:`snnlab.bench_search` on a clone of
``tju-sun-lab/SpikeNAS-Bench`` (seconds, no training), prints a JSON summary (mean
and sd over seeds of the test accuracy and regret of each search's pick, and the
simulated training hours, after 10, 50, 100 and ``--budget`` cells) and writes it,
with the full curves and provenance, to ``--out``::

    python -m snnlab bench search --bench ../SpikeNAS-Bench --budget 300 --seeds 20 \\
        --cache-dir .cache --out book/results/bench_search.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

__all__ = ["add_bench"]


def _run_bench_search(args: argparse.Namespace) -> int:
    from .bench import load_bench
    from .bench_search import SEARCH_METHODS, TabularSearchConfig, search_curves
    from .cli import _provenance, _write_json_atomic
    start = time.perf_counter()
    bench = load_bench(args.bench, dataset=args.dataset, cache_dir=args.cache_dir,
                       allow_missing=args.allow_missing)
    loaded = time.perf_counter() - start
    methods = SEARCH_METHODS if args.method == "all" else (args.method,)
    at = sorted({n for n in (10, 50, 100, args.budget) if n <= args.budget})
    summary, curves = {}, {}
    for method in methods:
        config = TabularSearchConfig(method, budget=args.budget, val_epoch=args.val_epoch,
                                     include_dead=args.include_dead,
                                     population=args.population, sample_size=args.sample_size)
        result = search_curves(bench, config, seeds=range(args.seeds))
        summary[method] = result.summary(at)
        curves[method] = {"config": dataclasses.asdict(config),
                          "test_acc": result.test_acc.tolist(), "regret": result.regret.tolist(),
                          "hours": result.hours.tolist()}
    out = {"bench": {"source": bench.source, "dataset": bench.dataset, "cells": len(bench),
                     "live": int(bench.connected.sum()), "fingerprint": bench.fingerprint,
                     "load_seconds": round(loaded, 3)},
           "summary": summary,
           "seconds": round(time.perf_counter() - start, 3)}
    if args.out is not None:
        _write_json_atomic(Path(args.out), {**out, "curves": curves,
                                            "provenance": _provenance(args, "cpu")})
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def add_bench(subparsers: argparse._SubParsersAction) -> None:
    """Register ``bench search`` (``bench rank`` needs CIFAR scoring: not yet)."""
    p = subparsers.add_parser("bench", help="SpikeNAS-Bench: searches on the trained table",
                              description="Use a clone of tju-sun-lab/SpikeNAS-Bench.")
    actions = p.add_subparsers(dest="bench_action", metavar="action")
    s = actions.add_parser("search", help="random / evolution / local search on the table",
                           description="Tabular searches that select on the bench's validation "
                           "accuracy and report test accuracy, over several seeds.")
    s.add_argument("--bench", required=True,
                   help="the SpikeNAS-Bench clone (or its zip, or its data folder)")
    s.add_argument("--dataset", default="CIFAR10", help="CIFAR10 (complete), CIFAR100, TinyImagenet")
    s.add_argument("--allow-missing", action="store_true",
                   help="accept a partial table (CIFAR100 and TinyImagenet are partial)")
    s.add_argument("--cache-dir", default=None, help="keep the parsed table here (fast reload)")
    s.add_argument("--method", default="all", choices=("all", "random", "evolution", "local"))
    s.add_argument("--budget", type=int, default=100, help="distinct cells per search")
    s.add_argument("--seeds", type=int, default=20, help="searches per method (seeds 0..N-1)")
    s.add_argument("--val-epoch", type=int, default=None,
                   help="select on val after this epoch and charge that share of the time "
                        "(default: each cell's last epoch)")
    s.add_argument("--include-dead", action="store_true",
                   help="also evaluate cells whose input never reaches the output")
    s.add_argument("--population", type=int, default=10, help="evolution's population")
    s.add_argument("--sample-size", type=int, default=3, help="evolution's tournament size")
    s.add_argument("--out", default=None, help="write the summary, curves and provenance here")
    s.set_defaults(run=_run_bench_search)
