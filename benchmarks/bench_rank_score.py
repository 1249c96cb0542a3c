"""Seconds to score one SpikeNAS-Bench candidate, next to its plain forward passes.

    python benchmarks/bench_rank_score.py --bench DIR --data DIR [--cells 5] [--width 0.0625]
        [--network scoring] [--threads 1] [--out benchmarks/results/bench_rank_score_cpu.json]

The setting of the rank study (``snnlab.bench_rank``, ``python -m snnlab bench rank``):
SpikeNAS-Bench's scoring network at ``C = 128 * width``, T = 5, 2 batches of 256
CIFAR-10 training images. For each of ``--cells`` sampled live cells, in the same
run and on the same batches:

* ``build_s``: seeding and building the untrained network (pruned cell);
* ``forward_s``: the plain forward passes, hook-free (train mode, no grad), once per batch;
* ``score_s``: ``scores_per_batch`` with the three kernels (one forward per batch with
  the hooks, the kernels and one slogdet per kernel and batch);
* ``score_one_kernel_s``: ``snasnet_score`` with the paper's kernel only.

``overhead`` = score / forward: the cost of the score machinery; ``candidates_per_s``
= 1 / (build + score). Other work on the machine skews the seconds: the provenance
records the load average.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from _provenance import provenance, write_json
from snnlab.bench import load_bench
from snnlab.bench_rank import RankConfig, build_bench_net, sample_live_cells, scoring_images
from snnlab.profiles import seed_everything
from snnlab.trainfree import scores_per_batch, snasnet_score


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(arch_id: int, images, config: RankConfig, device: torch.device) -> dict:
    """Build, plain forward, multi-kernel score and one-kernel score of one cell, in seconds."""
    seed_everything(arch_id)
    t0 = time.perf_counter()
    model = build_bench_net(arch_id, config.network, config.width, config.T).to(device)
    _sync(device)
    t1 = time.perf_counter()
    model.train()
    with torch.no_grad():
        for x in images:
            model(x.to(device))
    _sync(device)
    t2 = time.perf_counter()
    scores_per_batch(model, images, kernels=config.kernels, device=device)
    _sync(device)
    t3 = time.perf_counter()
    snasnet_score(model, images, kernel="sahd", device=device)
    _sync(device)
    t4 = time.perf_counter()
    return {"arch_id": int(arch_id), "build_s": t1 - t0, "forward_s": t2 - t1,
            "score_s": t3 - t2, "score_one_kernel_s": t4 - t3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", required=True, help="SpikeNAS-Bench clone")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--data", required=True, help="folder holding cifar-10-batches-py")
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--width", type=float, default=0.0625)
    parser.add_argument("--network", default="scoring", choices=("scoring", "training"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/bench_rank_score_cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = RankConfig(cells=max(2, args.cells), width=args.width, network=args.network)
    start = time.perf_counter()
    bench = load_bench(args.bench, cache_dir=args.cache_dir)
    images = scoring_images(args.data, config.batches, config.batch_size, config.seed)
    rows = [measure(int(a), images, config, device)
            for a in sample_live_cells(bench, args.cells, seed=1)]
    median = {k: round(statistics.median(r[k] for r in rows), 3)
              for k in ("build_s", "forward_s", "score_s", "score_one_kernel_s")}
    summary = {**median,
               "overhead_score_over_forward": round(median["score_s"] / median["forward_s"], 3),
               "candidates_per_s": round(1 / (median["build_s"] + median["score_s"]), 4)}
    write_json(args.out, {
        "setting": {"network": args.network, "channels": config.channels, "T": config.T,
                    "batches": config.batches, "batch_size": config.batch_size,
                    "kernels": list(config.kernels), "cells": args.cells},
        "median": summary, "cells": [{k: (round(v, 3) if isinstance(v, float) else v)
                                      for k, v in r.items()} for r in rows],
        "seconds": round(time.perf_counter() - start, 1),
        "provenance": provenance(device)})
    print(summary)


if __name__ == "__main__":
    main()
