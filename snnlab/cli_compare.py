"""``python -m snnlab compare``: chapter 7's study, every method side by side.

Runs each contender of :data:`snnlab.compare.CONTENDERS` at every seed
(:func:`snnlab.compare.compare`), one JSON line per run in ``--rows`` (a killed study
resumes from it), then writes the rows, the mean +- sd per contender and the
provenance to ``--out``::

    python -m snnlab compare --profile tiny --seeds 3 --search-epochs 4 \\
        --rows runs/compare.jsonl --out book/results/compare_tiny.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

__all__ = ["add_compare", "run_compare"]


def run_compare(args: argparse.Namespace) -> int:
    """Run the study, print the summary, write rows + summary + provenance to ``--out``."""
    from .cli_common import provenance
    from .compare import CONTENDERS, compare, summarise
    from .profiles import get_profile
    from .safeio import write_json_atomic
    from .train import resolve_device

    profile = get_profile(args.profile)
    if args.retrain_epochs is not None:
        profile = dataclasses.replace(profile, epochs=args.retrain_epochs)
    names = [c.name for c in CONTENDERS]
    chosen = [c for c in CONTENDERS if not args.only or c.name in args.only]
    if args.only and len(chosen) != len(args.only):
        raise SystemExit(f"--only: unknown contender among {args.only}; choose from {names}")
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    from . import search as _search_registry
    _search_registry.search_names()             # import every method now, before the long run
    rows = compare(profile, chosen, seeds=range(args.first_seed, args.first_seed + args.seeds), search_epochs=args.search_epochs,
                   candidates=args.candidates, rows_path=args.rows, device=device,
                   log=lambda line: print(line, file=sys.stderr, flush=True))
    summary = summarise(rows)
    study = {"profile": profile.name, "dataset": profile.dataset, "seeds": args.seeds,
             "search_epochs": args.search_epochs,
             "candidates": args.candidates or profile.snasnet.candidates,
             "retrain_epochs": profile.epochs,
             "recipe": "baseline (training_recipe(profile, 'baseline')) for every contender",
             "contenders": [dataclasses.asdict(c) for c in chosen],
             "rows": rows, "summary": summary,
             "provenance": {**provenance(getattr(args, "argv", sys.argv), device),
                            "seconds": time.perf_counter() - t0,
                            "note": "seconds count this invocation; rows read back from --rows "
                                    "keep their own search/train seconds"}}
    if args.out:
        write_json_atomic(Path(args.out), study)
    print(json.dumps(summary, indent=2))
    return 0


def add_compare(subparsers: argparse._SubParsersAction) -> None:
    """Register ``compare`` under the top-level parser."""
    p = subparsers.add_parser(
        "compare", help="every search method side by side (chapter 7)",
        description="Search with every method, retrain each found network with one recipe, "
                    "measure accuracy, spikes, energy, parameters and search cost; several seeds.")
    p.add_argument("--profile", default=None, help="run settings (default: $SNNLAB_PROFILE)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--first-seed", type=int, default=0,
                   help="start at this seed (run seeds in separate processes, then merge)")
    p.add_argument("--search-epochs", type=int, default=4,
                   help="epochs of every differentiable search (default 4)")
    p.add_argument("--candidates", type=int, default=None,
                   help="cells the training-free search scores (default: the profile's)")
    p.add_argument("--retrain-epochs", type=int, default=None,
                   help="override the profile's baseline epochs for every retraining")
    p.add_argument("--only", nargs="+", default=None, help="run only these contenders (names)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N")
    p.add_argument("--rows", default=None, help="JSON-lines file of finished runs (resume)")
    p.add_argument("--out", default=None, help="write rows, summary and provenance here")
    p.set_defaults(run=run_compare)


if __name__ == "__main__":                      # python -m snnlab.cli_compare ...
    parser = argparse.ArgumentParser(prog="python -m snnlab.cli_compare")
    add_compare(parser.add_subparsers(dest="command"))
    arguments = parser.parse_args(["compare", *sys.argv[1:]])
    arguments.argv = ["compare", *sys.argv[1:]]     # provenance() adds "python -m snnlab"
    sys.exit(arguments.run(arguments))
