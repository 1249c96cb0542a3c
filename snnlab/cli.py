"""The command line: ``python -m snnlab <command> ...`` (or the ``snnlab`` script).

Commands:

* ``train``: train a model on a profile's dataset, evaluate it on the test split,
  print a JSON summary (accuracy, spikes and energy per image, parameters,
  seconds, provenance) and write it to ``--out``::

      python -m snnlab train --model baseline --profile tiny
      python -m snnlab train --model baseline --profile colab --download --out r.json
      python -m snnlab train --genotype result.json --profile tiny   # a searched cell

* ``search snasnet``: SNASNet's training-free search (random, as in the paper, or
  evolution) over the Fw or Bw cell space; writes the
  :class:`~snnlab.trainfree.SearchResult` (ranking, best cell, settings,
  provenance) to ``--out`` and prints a short JSON summary::

      python -m snnlab search snasnet --space bw --candidates 100 --profile tiny --out r.json

The CLI only parses arguments and builds the library's dataclasses
(:class:`~snnlab.profiles.Profile`, :class:`~snnlab.train.TrainConfig`); library
code never sees an argparse namespace.

Extension points: a new command is a function ``add(subparsers)`` appended to
:data:`COMMANDS` that registers a subparser with ``set_defaults(run=...)``; a new
search method is a function ``add(methods)`` appended to :data:`SEARCHES` that
registers its parser under ``search`` the same way (as ``snasnet`` does); a new
``--model`` is a builder ``(profile, bundle) -> nn.Module`` added to :data:`MODELS`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from .data import DataBundle, load_dataset, make_loaders
from .models import SpikingCNN
from .cli_bench import add_bench
from .cli_search import (add_search_darts, add_search_madarts, add_search_spikedhs,
                         build_searched_model, read_search_result)
from .profiles import PROFILES, Profile, get_profile, seed_everything, training_recipe
from .train import TrainConfig, evaluate, fit, resolve_device, snnlab_version

__all__ = ["main", "build_parser", "MODELS", "COMMANDS", "SEARCHES", "build_baseline",
           "load_genotype"]


def build_baseline(profile: Profile, bundle: DataBundle) -> nn.Module:
    """The hand-designed :class:`~snnlab.models.SpikingCNN` sized by the profile."""
    return SpikingCNN(in_channels=bundle.in_channels, num_classes=bundle.num_classes,
                      widths=profile.widths, T=profile.T, image_size=bundle.image_size,
                      tau=profile.tau)


# --model name -> builder(profile, bundle) -> nn.Module. A searched SNASNet cell is
# trained with `train --genotype` instead (its builder also needs the genotype).
MODELS: dict[str, Callable[[Profile, DataBundle], nn.Module]] = {"baseline": build_baseline}


def _strict_json(obj):
    """``obj`` with every float NaN/inf replaced by None: strict JSON that every parser reads."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_json(v) for v in obj]
    return obj


def _write_json_atomic(path: Path, obj: dict) -> None:
    """Write strict JSON (NaN/inf as null) to a temp file beside ``path``, then ``os.replace``
    it into place: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_strict_json(obj), f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _provenance(args: argparse.Namespace, device: torch.device) -> dict:
    """How a result was made: device, machine, versions, commit, the exact command, the date (UTC)."""
    return {
        "device": str(device),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_threads": torch.get_num_threads(),
        "snnlab_version": snnlab_version(),
        "torch_version": str(torch.__version__),
        "commit": _git_commit(),
        "command": "python -m snnlab " + shlex.join(args.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _git_commit() -> str:
    """The short commit of the source tree snnlab runs from ('unknown' outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_genotype(source: str):
    """A :class:`~snnlab.snasnet.CellGenotype` from a search result file or a matrix string.

    Args:
        source: the path of a JSON file written by ``search snasnet --out`` (its best
            cell), or, when no such file exists, the official 4-row connection matrix,
            e.g. ``"0303 0030 2002 0200"``.
    Returns:
        ``(genotype, description of where it came from)``.
    """
    from .snasnet import CellGenotype
    from .trainfree import SearchResult
    path = Path(source)
    if path.is_file():
        result = SearchResult.load(path)
        return (result.best_genotype(CellGenotype),
                f"{path} (best of {result.candidates}, score {result.best_score:.4g})")
    if path.suffix == ".json":
        raise FileNotFoundError(f"--genotype {source!r}: no such file. Write one with "
                                "`python -m snnlab search snasnet ... --out FILE`.")
    try:
        return CellGenotype.from_string(source), "matrix given on the command line"
    except (ValueError, TypeError) as err:
        raise ValueError(f"--genotype {source!r} is neither a search result file nor a "
                         f"connection matrix like '0303 0030 2002 0200' ({err}).") from err


def _run_train(args: argparse.Namespace) -> int:
    """``train``: build the run's dataclasses from ``args``, fit, evaluate on test, report."""
    t0 = time.perf_counter()
    profile = get_profile(args.profile)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed),
                                   ("batch_size", args.batch_size)) if v is not None}
    profile = dataclasses.replace(profile, **overrides)
    device = resolve_device(args.device)       # None: cuda if available, else cpu
    searched = read_search_result(Path(args.genotype)) if args.genotype is not None else None
    # a found darts / madarts / spikedhs network retrains with its method's recipe
    recipe = searched["method"] if searched is not None else "baseline"
    settings = training_recipe(profile, recipe)
    epochs = args.epochs if args.epochs is not None else settings["epochs"]
    batch_size = args.batch_size if args.batch_size is not None else settings["batch_size"]
    config = TrainConfig.from_profile(profile, recipe, epochs=epochs)
    if args.genotype is not None and searched is None:   # a bad genotype fails before loading data
        genotype, source = load_genotype(args.genotype)
        config = TrainConfig.from_profile(profile, epochs=epochs, lr=profile.snasnet.lr)

    seed_everything(profile.seed)
    bundle = load_dataset(profile.dataset, root=args.data_root, download=args.download,
                          seed=profile.seed, val_fraction=profile.val_fraction)
    loaders = make_loaders(bundle, batch_size=batch_size, seed=profile.seed,
                           num_workers=profile.num_workers)
    extra = {}
    if searched is not None:                  # a darts / madarts / spikedhs result
        model_name = searched["method"]
        model = build_searched_model(searched, profile, bundle, auxiliary=config.aux_weight > 0)
        extra = {"genotype_dict": searched["genotype"], "genotype_source": args.genotype}
    elif args.genotype is not None:
        from .snasnet import build_snasnet
        model_name = "snasnet"
        model = build_snasnet(genotype, profile, bundle)
        extra = {"genotype": genotype.to_string(), "genotype_dict": genotype.to_dict(),
                 "genotype_source": source}
    else:
        model_name = args.model
        model = MODELS[args.model](profile, bundle)
    history = fit(model, loaders.train, loaders.val, config, device=device,
                  checkpoint=args.checkpoint, resume=args.resume)
    test = evaluate(model, loaders.test, device=device, count_spikes=True, amp=config.amp)

    summary = {
        "model": model_name,
        **extra,
        "profile": profile.name,
        "dataset": profile.dataset,
        "accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_images": test["images"],
        "val_accuracy": history[-1]["val_acc"] if history else None,
        "nos_per_image": test["nos_per_image"],
        "sops_per_image": test["sops_per_image"],
        "macs_per_image": test["macs_per_image"],
        "energy_per_image_uJ": test["energy_per_image_uJ"],
        # as DARTS's count_parameters_in_MB: the auxiliary head is not part of the model
        "params": sum(p.numel() for name, p in model.named_parameters()
                      if not name.startswith("auxiliary_head.")),
        "seconds": time.perf_counter() - t0,
        **_provenance(args, device),
        "profile_settings": profile.to_dict(),
        "batch_size": batch_size,
        "config": dataclasses.asdict(config),
        "history": history,
    }
    print(json.dumps(summary, indent=2))
    if args.out is not None:
        _write_json_atomic(Path(args.out), summary)
    return 0


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on a profile's dataset and evaluate it on the test split",
        description="Train, evaluate on the test split, print a JSON summary.")
    p.add_argument("--model", choices=sorted(MODELS), default="baseline",
                   help="which network to train (default: baseline, the hand-designed SpikingCNN)")
    p.add_argument("--genotype", default=None, metavar="RESULT.json|MATRIX",
                   help="train a searched network instead of --model: the result file of "
                        "`search snasnet|darts|madarts|spikedhs --out`, or an official SNASNet "
                        "connection matrix such as '0303 0030 2002 0200'. A darts, madarts or "
                        "spikedhs network retrains with its method's recipe (see "
                        "snnlab.profiles.training_recipe); SNASNet cells train with the "
                        "profile's snasnet.lr")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="run settings (default: $SNNLAB_PROFILE, else tiny)")
    p.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    p.add_argument("--batch-size", type=int, default=None,
                   help="override the profile's batch size")
    p.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    p.add_argument("--data-root", default=None,
                   help="folder holding the datasets (default: $SNNLAB_DATA, else ./data)")
    p.add_argument("--download", action="store_true",
                   help="download CIFAR from the official site if it is missing")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file, written atomically after every epoch")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --checkpoint (same settings)")
    p.add_argument("--out", default=None, help="also write the JSON summary to this file")
    p.set_defaults(run=_run_train)


def _run_search_snasnet(args: argparse.Namespace) -> int:
    """``search snasnet``: score random or evolved cells without training, keep the best."""
    from .snasnet import SNASNetSpace, build_snasnet
    from .trainfree import evolutionary_search, random_search, sample_batches

    profile = get_profile(args.profile)
    if args.seed is not None:
        profile = dataclasses.replace(profile, seed=args.seed)
    device = resolve_device(args.device)
    candidates = args.candidates if args.candidates is not None else profile.snasnet.candidates
    batch_size = (args.batch_size if args.batch_size is not None
                  else profile.snasnet.score_batch_size)
    space = SNASNetSpace(kind=args.space)
    bundle = load_dataset(profile.dataset, root=args.data_root, download=args.download,
                          seed=profile.seed)
    batches = sample_batches(bundle.train, batches=args.batches, batch_size=batch_size,
                             seed=profile.seed)
    search_kwargs = dict(seed=profile.seed, progress=None, kernel=args.kernel, mode=args.mode,
                         reset_between_batches=not args.no_reset, device=device)
    build = lambda genotype: build_snasnet(genotype, profile, bundle)   # noqa: E731
    if args.method == "evolution":
        result = evolutionary_search(space, build, batches, candidates,
                                     population=args.population,
                                     sample_size=args.sample_size, **search_kwargs)
    else:
        result = random_search(space, build, batches, candidates, **search_kwargs)
    result = dataclasses.replace(result, provenance=_provenance(args, device), settings={
        **result.settings, "profile": profile.name, "dataset": profile.dataset,
        "profile_settings": profile.to_dict()})
    if args.out is not None:
        result.save(args.out)

    def cell(entry: dict) -> str:
        from .snasnet import CellGenotype
        return CellGenotype.from_dict(entry["genotype"]).to_string()

    summary = {
        "method": result.method, "space": args.space, "profile": profile.name,
        "candidates": result.candidates, "draws": result.draws,
        "best": cell(result.ranking[0]), "best_score": result.best_score,
        "top": [{"genotype": cell(e), "score": e["score"]} for e in result.ranking[:5]],
        "seconds": result.seconds, "candidates_per_second": result.candidates / result.seconds,
        "kernel": args.kernel, "mode": args.mode, "reset_between_batches": not args.no_reset,
        "device": str(device), "out": args.out,
    }
    print(json.dumps(summary, indent=2))
    return 0


def _add_search_snasnet(methods: argparse._SubParsersAction) -> None:
    s = methods.add_parser(
        "snasnet", help="SNASNet: score untrained cells by their spike patterns",
        description="SNASNet training-free search (Kim et al., ECCV 2022): score untrained "
                    "cells with the sparsity-aware Hamming kernel of their spikes, keep the "
                    "best. Prints a JSON summary; --out writes the full ranking.")
    s.add_argument("--space", choices=("fw", "bw"), default="fw",
                   help="fw: forward cells only (5^6); bw: also backward (feedback) edges")
    s.add_argument("--candidates", type=int, default=None,
                   help="distinct cells to score (default: the profile's; paper: 5000)")
    s.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="run settings (default: $SNNLAB_PROFILE, else tiny)")
    s.add_argument("--method", choices=("random", "evolution"), default="random",
                   help="random (the paper's) or regularized evolution (default: random)")
    s.add_argument("--population", type=int, default=20, help="evolution: population size")
    s.add_argument("--sample-size", type=int, default=5, help="evolution: tournament size")
    s.add_argument("--kernel", choices=("sahd", "hamming"), default="sahd",
                   help="sahd: the paper's sparsity-aware kernel; hamming: plain NASWOT")
    s.add_argument("--mode", choices=("train", "eval"), default="train",
                   help="BN/dropout mode while scoring (default: train, as the official code)")
    s.add_argument("--no-reset", action="store_true",
                   help="carry membranes from one scoring batch to the next, as the "
                        "official code does (default: every batch starts from rest)")
    s.add_argument("--batches", type=int, default=2,
                   help="scoring batches per candidate (default and official: 2)")
    s.add_argument("--batch-size", type=int, default=None,
                   help="images per scoring batch (default: the profile's; official: 256)")
    s.add_argument("--seed", type=int, default=None,
                   help="seed of the draws, batches and weights (default: the profile's)")
    s.add_argument("--data-root", default=None,
                   help="folder holding the datasets (default: $SNNLAB_DATA, else ./data)")
    s.add_argument("--download", action="store_true",
                   help="download CIFAR from the official site if it is missing")
    s.add_argument("--device", default=None,
                   help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    s.add_argument("--out", default=None, help="write the SearchResult JSON to this file")
    s.set_defaults(run=_run_search_snasnet)


# Each entry registers one method under `search` (its parser sets run=...).
SEARCHES: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_search_snasnet, add_search_darts, add_search_madarts, add_search_spikedhs]


def _add_search(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("search", help="search an architecture (snasnet: training-free)",
                              description="Architecture search; pick a method.")
    methods = p.add_subparsers(dest="search_method", metavar="method")
    for add in SEARCHES:
        add(methods)


# Each entry registers one subcommand.
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_train, _add_search, add_bench]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m snnlab`` with every command in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="python -m snnlab",
        description="snnlab: neural architecture search for spiking neural networks.")
    subparsers = parser.add_subparsers(dest="command", metavar="command")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command; returns the exit status (0 on success, 1 on an error, 2 on bad usage).

    Example:
        >>> main(["train", "--profile", "tiny", "--epochs", "1"])   # doctest: +SKIP
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    args.argv = argv
    if getattr(args, "resume", False) and args.checkpoint is None:
        parser.error("--resume needs --checkpoint PATH (the run to continue)")
    if args.command == "search":
        for name in ("candidates", "batches", "batch_size", "population", "sample_size"):
            value = getattr(args, name, None)
            if value is not None and value < 1:
                parser.error(f"--{name.replace('_', '-')} must be >= 1; got {value}")
    # progress messages of the library go to stderr; the JSON summary alone to stdout
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("snnlab")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        sys.stderr.write(f"snnlab {args.command}: error: {err}\n")
        return 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
