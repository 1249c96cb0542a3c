"""SpikeNAS-Bench on the command line: ``python -m snnlab bench search --bench PATH ...``.

Runs the tabular searches of :mod:`snnlab.bench_search` on a clone of
``tju-sun-lab/SpikeNAS-Bench`` (seconds, no training), prints a JSON summary (mean
and sd over seeds of the test accuracy and regret of each search's pick, and the
simulated training hours, after 10, 50, 100 and ``--budget`` cells) and writes it,
with the full curves and provenance, to ``--out``::

    python -m snnlab bench search --bench ../SpikeNAS-Bench --budget 300 --seeds 20 \\
        --cache-dir .cache --out book/results/bench_search.json

``bench rank`` scores sampled live cells untrained on CIFAR-10 images (the SNASNet
protocol, :mod:`snnlab.bench_rank`) and ranks them against the logged test accuracy::

    python -m snnlab bench rank --bench ../SpikeNAS-Bench --data data --cells 100 \
        --width 0.0625 --checkpoint runs/rank.jsonl --out book/results/spikenas_rank.json

``bench darts`` runs first-order DARTS over the bench's cell space (:mod:`snnlab.bench_darts`;
the defaults are a CPU proxy) and judges each seed's derived cell on the table::

    python -m snnlab bench darts --bench ../SpikeNAS-Bench --data data --seeds 3 \\
        --threads 1 --out book/results/spikenas_darts.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

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
        curves[method] = {"config": dataclasses.asdict(config),   # [seeds, budget] each
                          **{name: np.round(getattr(result, name), 4).tolist()
                             for name in ("test_acc", "regret", "hours")}}
    out = {"bench": {"source": bench.source, "dataset": bench.dataset, "cells": len(bench),
                     "live": int(bench.connected.sum()), "fingerprint": bench.fingerprint,
                     "load_seconds": round(loaded, 3)},
           "summary": summary,
           "seconds": round(time.perf_counter() - start, 3)}
    if args.out is not None:
        _write_json_atomic(Path(args.out), {**out, "curves": curves,
                                            "provenance": {**_provenance(args, "cpu"),
                                                           "seconds": out["seconds"]}})
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _run_bench_rank(args: argparse.Namespace) -> int:
    import torch
    from .bench import load_bench
    from .bench_rank import RankConfig, rank_study
    from .cli import _provenance, _write_json_atomic
    start = time.perf_counter()
    config = RankConfig(cells=args.cells, seed=args.seed, width=args.width,
                        network=args.network, batches=args.batches,
                        batch_size=args.batch_size, T=args.T)
    bench = load_bench(args.bench, dataset="CIFAR10", cache_dir=args.cache_dir,
                       allow_missing=args.allow_missing)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    study = rank_study(bench, args.data, config, device=args.device,
                       checkpoint=args.checkpoint)
    provenance = {**_provenance(args, torch.device(args.device)),
                  "seconds": round(time.perf_counter() - start, 1)}
    if args.checkpoint is not None:
        provenance["note"] = ("seconds count this invocation; cells read back from the "
                              "checkpoint keep the seconds they were scored in")
    summary = {name: {"tau": r["tau"], "rho": r["rho"],
                      "tau_within_params": r["tau_within_params"]["pair_weighted_tau"],
                      "top1_rank_in_sample": r["top"][0]["rank_in_sample"]}
               for name, r in study["rankers"].items()}
    if args.out is not None:
        _write_json_atomic(Path(args.out), {**study, "summary": summary,
                                            "provenance": provenance})
    json.dump({"network": study["network"], "cells": len(study["cells"]), "summary": summary,
               "seconds": provenance["seconds"]}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _run_bench_darts(args: argparse.Namespace) -> int:
    import torch
    from .bench import load_bench
    from .bench_darts import BenchDartsConfig, compare_with_stored, darts_study
    from .cli import _provenance, _write_json_atomic
    from .results import load_result
    start = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = BenchDartsConfig(data_seed=args.data_seed, network=args.network, width=args.width,
                              T=args.T, image_size=args.image_size,
                              train_images=args.train_images, val_images=args.val_images,
                              epochs=args.epochs, warmup_epochs=args.warmup_epochs,
                              batch_size=args.batch_size, lr=args.lr,
                              arch_lr=args.arch_lr, include_zero=args.include_zero)
    bench = load_bench(args.bench, dataset="CIFAR10", cache_dir=args.cache_dir,
                       allow_missing=args.allow_missing)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    study = darts_study(bench, args.data, config, seeds=seeds, device=args.device,
                        progress=lambda line: print(line, file=sys.stderr, flush=True),
                        checkpoint=args.checkpoint)
    stored = {name: load_result(f"spikenas_{name}.json") for name in ("search", "rank")}
    study["comparison"] = {
        "rows": compare_with_stored(study, stored["search"], stored["rank"]),
        "how_cost_is_compared": "DARTS: its own CPU seconds and images seen on the proxy; "
        "tabular searches: the bench's logged GPU hours of the cells they evaluated; SNASNet: "
        "CPU seconds of scoring K untrained cells (spikenas_rank.json). Every method's pick "
        "is then trained once, which no row counts.",
        "sources": {name: result["provenance"]["command"] for name, result in stored.items()}}
    provenance = {**_provenance(args, torch.device(args.device)),
                  "seconds": round(time.perf_counter() - start, 1)}
    if args.checkpoint is not None:
        provenance["note"] = ("seconds count this invocation; runs read back from the "
                              "checkpoint (written by this command, or by separate "
                              "--first-seed processes whose checkpoints were concatenated) "
                              "keep the seconds and CPU seconds they were searched in")
    if args.out is not None:
        _write_json_atomic(Path(args.out), {**study, "provenance": provenance})
    json.dump({"label": study["label"], "summary": study["summary"],
               "seconds": provenance["seconds"]}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _add_table_arguments(parser: argparse.ArgumentParser, missing_help: str,
                         images: bool = False) -> None:
    """The flags every ``bench`` action shares: where the table is (and, with ``images``,
    CIFAR-10), its parsed cache, and whether a partial table is accepted."""
    parser.add_argument("--bench", required=True,
                        help="the SpikeNAS-Bench clone (or its zip, or its data folder)")
    if images:
        parser.add_argument("--data", required=True,
                            help="folder holding cifar-10-batches-py (the official python archive)")
    parser.add_argument("--cache-dir", default=None,
                        help="keep the parsed table here (fast reload)")
    parser.add_argument("--allow-missing", action="store_true", help=missing_help)


def add_bench(subparsers: argparse._SubParsersAction) -> None:
    """Register ``bench search``, ``bench rank`` and ``bench darts``."""
    p = subparsers.add_parser("bench", help="SpikeNAS-Bench: searches on the trained table",
                              description="Use a clone of tju-sun-lab/SpikeNAS-Bench.")
    actions = p.add_subparsers(dest="bench_action", metavar="action")
    s = actions.add_parser("search", help="random / evolution / local search on the table",
                           description="Tabular searches that select on the bench's validation "
                           "accuracy and report test accuracy, over several seeds.")
    _add_table_arguments(s, "accept a partial table (CIFAR100 and TinyImagenet are partial)")
    s.add_argument("--dataset", default="CIFAR10", help="CIFAR10 (complete), CIFAR100, TinyImagenet")
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

    r = actions.add_parser("rank", help="score sampled cells untrained; rank vs test accuracy",
                           description="SNASNet's training-free score (2 batches of CIFAR-10 "
                           "training images, T = 5) of N sampled live cells against the bench's "
                           "test accuracy: Kendall tau-b and Spearman rho of each score and of "
                           "the parameter count, picks, SNASNet as published (best score among "
                           "K), combinations beyond the paper.")
    _add_table_arguments(r, "accept a partial table (sample from the cells it holds)",
                         images=True)
    r.add_argument("--cells", type=int, default=100, help="live cells sampled (>= 2)")
    r.add_argument("--seed", type=int, default=0, help="fixes the sample, images and weights")
    r.add_argument("--width", type=float, default=0.0625,
                   help="width multiplier: C = round(128 * width) (bench: 1.0)")
    r.add_argument("--network", default="scoring", choices=("scoring", "training"),
                   help="scoring: SpikeNAS-Bench's scorer network (per-step BN, no LIF in the "
                        "down block); training: the network the bench trained")
    r.add_argument("--batches", type=int, default=2, help="scoring batches (SNASNet: 2)")
    r.add_argument("--batch-size", type=int, default=256, help="images per batch (SNASNet: 256)")
    r.add_argument("--T", type=int, default=5, help="time steps (SNASNet: 5)")
    r.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    r.add_argument("--checkpoint", default=None,
                   help="JSON-lines file of scored cells; a rerun resumes from it")
    r.add_argument("--out", default=None, help="write the full study and provenance here")
    r.set_defaults(run=_run_bench_rank)

    d = actions.add_parser("darts", help="first-order DARTS over the bench's cell space",
                           description="DARTS over the 6 edges of the bench's cell (5 ops each) "
                           "in the bench's network, seeds 0..N-1; each derived cell judged by "
                           "its true test and val accuracy and rank. The defaults are a CPU "
                           "proxy (snnlab.bench_darts).")
    _add_table_arguments(d, "accept a partial table (a derived cell outside it is an error)",
                         images=True)
    d.add_argument("--seeds", type=int, default=3, help="searches (seeds F..F+N-1)")
    d.add_argument("--first-seed", type=int, default=0,
                   help="F: run seeds in separate processes, then merge their checkpoints")
    d.add_argument("--data-seed", type=int, default=0, help="fixes the images of both halves")
    d.add_argument("--network", default="training", choices=("training", "scoring"),
                   help="training: the network the bench trained; scoring: its scorer network")
    d.add_argument("--width", type=float, default=0.0625,
                   help="width multiplier: C = round(128 * width) (bench: 1.0)")
    d.add_argument("--image-size", type=int, default=16, choices=(16, 32),
                   help="16: CIFAR-10 averaged over 2x2 pixels (proxy); 32: as the bench")
    d.add_argument("--train-images", type=int, default=2000, help="images for the weights")
    d.add_argument("--val-images", type=int, default=2000, help="images for the alphas")
    d.add_argument("--epochs", type=int, default=4, help="passes over both halves")
    d.add_argument("--warmup-epochs", type=int, default=2,
                   help="first epochs that train the weights only (counted in --epochs)")
    d.add_argument("--lr", type=float, default=0.1, help="SGD lr of the weights (bench: 0.1)")
    d.add_argument("--batch-size", type=int, default=25, help="images per step")
    d.add_argument("--arch-lr", type=float, default=3e-3, help="Adam lr of the alphas")
    d.add_argument("--T", type=int, default=5, help="time steps (bench: 5)")
    d.add_argument("--include-zero", action="store_true",
                   help="let zero win an edge in the default derivation (both are stored)")
    d.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    d.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    d.add_argument("--checkpoint", default=None,
                   help="JSON-lines file of finished seeds; a rerun resumes from it")
    d.add_argument("--out", default=None, help="write the runs, summary and provenance here")
    d.set_defaults(run=_run_bench_darts)
