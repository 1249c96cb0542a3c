"""SNASNet training-free search speed: candidates scored per second.

    python benchmarks/snasnet_score.py [--candidates 40] [--threads 1 2]
        [--out benchmarks/results/snasnet_score_cpu.json]
    python benchmarks/snasnet_score.py --device cuda --data-root DIR [--profile colab|paper]

A candidate costs: seeding, building the untrained SNASNet (``build_snasnet``),
and scoring it (``snasnet_score``: ``--batches`` forward passes of
``--batch-size`` images in train mode, one kernel per LIF per step, one
``slogdet`` per batch). ``random_search`` runs the whole loop, so
``candidates_per_s`` is what a user of ``python -m snnlab search snasnet`` gets.
A second pass over the first ``--breakdown`` cells splits the time into build,
plain forward passes (no hooks) and the kernel overhead (score minus forward).

CPU: the tiny profile (digits 8x8). CUDA: CIFAR-10 batches (``--data-root``
holding ``cifar-10-batches-py``, or ``--download``) on the colab or paper profile.
The official setting is 2 batches of 256 per candidate (model_snn.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import torch

from _provenance import provenance, write_json
from snnlab.data import load_dataset
from snnlab.profiles import get_profile, seed_everything
from snnlab.snasnet import SNASNetSpace, build_snasnet
from snnlab.trainfree import random_search, sample_batches, snasnet_score


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def breakdown(result, space, profile, bundle, batches, device, cells: int) -> dict:
    """Median seconds per candidate of build, plain forwards and score, on ranked cells."""
    from snnlab.snasnet import CellGenotype
    build_s, forward_s, score_s = [], [], []
    for entry in sorted(result.ranking, key=lambda e: e["order"])[:cells]:
        genotype = CellGenotype.from_dict(entry["genotype"])
        seed_everything(0)
        t0 = time.perf_counter()
        model = build_snasnet(genotype, profile, bundle).to(device)
        _sync(device)
        t1 = time.perf_counter()
        model.train()
        with torch.no_grad():
            for x in batches:
                model(x.to(device))
        _sync(device)
        t2 = time.perf_counter()
        snasnet_score(model, batches, device=device)
        _sync(device)
        t3 = time.perf_counter()
        build_s.append(t1 - t0)
        forward_s.append(t2 - t1)
        score_s.append(t3 - t2)
    return {"cells": len(build_s), "build_s": statistics.median(build_s),
            "forward_s": statistics.median(forward_s), "score_s": statistics.median(score_s),
            "kernel_overhead_s": statistics.median(s - f for s, f in zip(score_s, forward_s))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", default=None,
                        help="default: tiny on cpu, colab on cuda")
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--batches", type=int, default=2, help="official: 2")
    parser.add_argument("--batch-size", type=int, default=256, help="official: 256")
    parser.add_argument("--spaces", nargs="+", default=["fw", "bw"], choices=["fw", "bw"])
    parser.add_argument("--breakdown", type=int, default=10,
                        help="cells re-run to split build / forward / kernel time")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch CPU thread counts to measure, e.g. 1 2 (default: torch's "
                             "choice); on a shared machine 1 thread suffers least from others")
    parser.add_argument("--out", default=None, help="write a JSON result with provenance")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    profile = get_profile(args.profile or ("colab" if device.type == "cuda" else "tiny"))
    bundle = load_dataset(profile.dataset, root=args.data_root, download=args.download,
                          seed=profile.seed)
    batches = sample_batches(bundle.train, args.batches, args.batch_size, seed=0)

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = []
    for threads, kind in [(n, k) for n in (args.threads or [torch.get_num_threads()])
                          for k in args.spaces]:
        torch.set_num_threads(threads)
        space = SNASNetSpace(kind)
        build = lambda g: build_snasnet(g, profile, bundle)             # noqa: E731
        random_search(space, build, batches, 2, seed=123, progress=False, device=device)  # warm-up
        _sync(device)
        result = random_search(space, build, batches, args.candidates, seed=0, progress=False,
                               device=device)
        _sync(device)
        row = {"space": kind, "threads": threads, "candidates": result.candidates,
               "seconds": result.seconds, "candidates_per_s": result.candidates / result.seconds,
               "best_score": result.best_score,
               "median_score": statistics.median(e["score"] for e in result.ranking)}
        row.update(breakdown(result, space, profile, bundle, batches, device, args.breakdown))
        rows.append(row)

    print(f"profile {profile.name} ({profile.dataset}, T={profile.T}, "
          f"C={profile.snasnet.channels}), {args.batches} batches x {args.batch_size} images, device {device}")
    print(f"{'space':>5} {'threads':>7} {'cands':>6} {'cand/s':>8} {'build ms':>9} "
          f"{'forward ms':>11} {'kernel ms':>10} {'best':>9} {'median':>9}")
    for r in rows:
        print(f"{r['space']:>5} {r['threads']:>7} {r['candidates']:>6} "
              f"{r['candidates_per_s']:>8.2f} {1e3 * r['build_s']:>9.1f} "
              f"{1e3 * r['forward_s']:>11.1f} "
              f"{1e3 * r['kernel_overhead_s']:>10.1f} {r['best_score']:>9.2f} "
              f"{r['median_score']:>9.2f}")
    if args.out:
        write_json(args.out, {
            "benchmark": "snasnet_training_free_score", "provenance": provenance(device),
            # other processes on a shared machine slow a CPU run: record the load
            "load_average_1_5_15min": {"before": load_before,
                                       "after": os.getloadavg() if load_before else None},
            "settings": {"profile": dataclasses.asdict(profile), "batches": args.batches,
                         "batch_size": args.batch_size, "kernel": "sahd", "mode": "train",
                         "reset_between_batches": True, "seed": 0},
            "rows": rows})


if __name__ == "__main__":
    main()
