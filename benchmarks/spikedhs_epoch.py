"""Seconds per SpikeDHS search epoch: spatial only, + DGS, + temporal, + both.

    python benchmarks/spikedhs_epoch.py [--profile tiny] [--device cpu] [--epochs 2]
        [--threads N] [--data-root DIR] [--max-images N]
        [--out benchmarks/results/spikedhs_epoch_cpu.json]

Each variant runs the profile's search (``SpikeDHSConfig.from_profile``) for
``--epochs`` epochs on the profile's dataset and reports the median seconds of an
epoch: the weight and architecture steps over the two halves, the NoS
measurement and, with DGS, one DGS round per epoch (``dgs_every=1``, the profile's
``profile.spikedhs.dgs_batches`` probe batches), timed separately as ``dgs_round_seconds``.
The tiny profile needs no data; CIFAR-10 profiles read ``--data-root``.

On a shared machine pass ``--threads 1`` when other torch processes run: two
threads per process on two busy cores made an epoch ~15x slower here.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from _provenance import provenance, write_json
from snnlab.data import load_dataset
from snnlab.profiles import get_profile
from snnlab.spikedhs_search import run_spikedhs_search

VARIANTS = (("spatial", False, False), ("dgs", True, False), ("temporal", False, True),
            ("dgs+temporal", True, True))


def bench(profile, bundle, name, dgs, temporal, epochs, device, max_images):
    overrides = {"dgs_every": 1}
    if max_images:
        overrides["max_images"] = max_images
    t0 = time.perf_counter()
    result = run_spikedhs_search(profile, bundle, dgs=dgs, temporal=temporal, epochs=epochs,
                                 device=device, progress=False, **overrides)
    total = time.perf_counter() - t0
    history = result["history"]
    epoch_s = [row["seconds"] for row in history]
    dgs_s = [row["dgs"]["seconds"] for row in history if row.get("dgs")]
    cfg = result["config"]
    return {"variant": name, "dgs": dgs, "temporal": temporal, "epochs": len(history),
            "epoch_seconds_median": statistics.median(epoch_s), "epoch_seconds": epoch_s,
            "dgs_round_seconds_median": statistics.median(dgs_s) if dgs_s else None,
            "total_seconds": total,
            "space": {k: cfg[k] for k in ("layers", "levels", "filters", "T", "batch_size",
                                          "max_images", "dgs_batches", "dgs_deltas")},
            "last_val_acc": history[-1]["val_acc"], "path": history[-1]["path"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--data-root", default=None, help="folder holding cifar-10-batches-py")
    parser.add_argument("--max-images", type=int, default=None,
                        help="cap the images of the search split (default: the profile's)")
    parser.add_argument("--variants", default=",".join(v[0] for v in VARIANTS))
    parser.add_argument("--out", default=None, help="write a JSON result with provenance")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    profile = get_profile(args.profile)
    bundle = load_dataset(profile.dataset, root=args.data_root, seed=profile.seed)
    wanted = set(args.variants.split(","))
    rows = [bench(profile, bundle, name, dgs, temporal, args.epochs, device, args.max_images)
            for name, dgs, temporal in VARIANTS if name in wanted]
    print(f"{'variant':>13} {'epoch s':>8} {'DGS round s':>12} {'val acc':>8}")
    for r in rows:
        dgs = r["dgs_round_seconds_median"]
        dgs_s = "-" if dgs is None else f"{dgs:.2f}"
        print(f"{r['variant']:>13} {r['epoch_seconds_median']:>8.2f} {dgs_s:>12} "
              f"{r['last_val_acc']:>8.3f}")
    if args.out:
        write_json(args.out, {"benchmark": "spikedhs_search_epoch", "profile": profile.name,
                              "dataset": profile.dataset, "provenance": provenance(device),
                              "rows": rows})


if __name__ == "__main__":
    main()
