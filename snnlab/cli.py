"""The command line: ``python -m snnlab <command> ...`` (or the ``snnlab`` script).

Commands:

* ``train``: train a model on a profile's dataset, evaluate it on the test split,
  print a JSON summary (accuracy, spikes and energy per image, parameters,
  seconds, provenance) and write it to ``--out``::

      python -m snnlab train --model baseline --profile tiny
      python -m snnlab train --model baseline --profile colab --download --out r.json
      python -m snnlab train --genotype result.json --profile tiny   # a searched cell

  Under ``torchrun`` it trains data-parallel (:mod:`snnlab.distributed`): the batch
  size is the global batch, split over the processes; rank 0 prints and writes::

      python -m torch.distributed.run --nproc_per_node 2 -m snnlab train --profile tiny

* ``search METHOD``: any search of the registry (:mod:`snnlab.search`; ``search
  --list`` lists them): SNASNet's training-free search, DARTS, MA-DARTS, SpikeDHS.
  Writes the one :class:`~snnlab.search.SearchResult` format to ``--out`` and
  prints a short JSON summary (:mod:`snnlab.cli_search`)::

      python -m snnlab search snasnet --space bw --candidates 100 --profile tiny --out r.json
      python -m snnlab search darts --epochs 2 --set seed=1 --out darts.json

The CLI only parses arguments and builds the library's dataclasses
(:class:`~snnlab.profiles.Profile`, :class:`~snnlab.train.TrainConfig`); library
code never sees an argparse namespace.

Extension points: a new command is a function ``add(subparsers)`` appended to
:data:`COMMANDS` that registers a subparser with ``set_defaults(run=...)``; a new
search method is a :class:`snnlab.search.SearchMethod` given to
:func:`snnlab.search.register_search` (its flags come with it); a new ``--model`` is
a builder ``(profile, bundle) -> nn.Module`` added to :data:`MODELS`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from .data import DataBundle, load_dataset, make_loaders
from .models import SpikingCNN
from .cli_bench import add_bench
from .cli_compare import add_compare
from . import distributed
from .cli_common import add_resume_arguments, add_run_arguments, provenance
from .profiles import Profile, get_profile, seed_everything, training_recipe
from .safeio import check_output_paths, write_json_atomic, write_or_fallback
from .train import TrainConfig, evaluate, fit, resolve_device

__all__ = ["main", "build_parser", "MODELS", "COMMANDS", "build_baseline", "load_genotype"]


def build_baseline(profile: Profile, bundle: DataBundle) -> nn.Module:
    """The hand-designed :class:`~snnlab.models.SpikingCNN` sized by the profile."""
    return SpikingCNN(in_channels=bundle.in_channels, num_classes=bundle.num_classes,
                      widths=profile.widths, T=profile.T, image_size=bundle.image_size,
                      tau=profile.tau)


# --dtype name -> the model's parameter dtype (fit and evaluate cast the images to it)
DTYPES = {"float32": torch.float32, "float64": torch.float64}

# --model name -> builder(profile, bundle) -> nn.Module. A searched SNASNet cell is
# trained with `train --genotype` instead (its builder also needs the genotype).
MODELS: dict[str, Callable[[Profile, DataBundle], nn.Module]] = {"baseline": build_baseline}


def _write_json_atomic(path: Path, obj: dict) -> None:
    """Strict JSON (NaN/inf as null), written atomically (:func:`snnlab.safeio.write_json_atomic`);
    if the write fails, saved in the temp folder instead (OutputNotWritten says where)."""
    write_or_fallback(path, lambda target: write_json_atomic(target, obj), "--out")


# Arguments that name files a command writes; every other argument naming an existing
# file is an input, which no output may overwrite.
OUTPUT_ARGS = ("out", "checkpoint")


def _check_outputs(args: argparse.Namespace) -> None:
    """Check every output path of any command before its work starts (safeio's rules).

    A ``--checkpoint`` of a command with ``--resume`` must not exist unless resuming
    (``bench rank`` has no ``--resume``: its checkpoint always resumes)."""
    outputs = {f"--{name}": getattr(args, name) for name in OUTPUT_ARGS
               if getattr(args, name, None) is not None}
    inputs = {f"--{name.replace('_', '-')}": value for name, value in vars(args).items()
              if name not in OUTPUT_ARGS and name != "argv" and isinstance(value, str)
              and value and Path(value).is_file()}
    resumable = ({"--checkpoint": bool(args.resume)} if hasattr(args, "resume") else None)
    check_output_paths(outputs, inputs, resumable)


def _provenance(args: argparse.Namespace, device: torch.device) -> dict:
    """How a result was made (:func:`snnlab.cli_common.provenance` of the command line)."""
    return provenance(args.argv, device)


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
        try:
            result = SearchResult.load(path)
            return (result.best_genotype(CellGenotype),
                    f"{path} (best of {result.candidates}, score {result.best_score:.4g})")
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"--genotype {source!r} is not a usable SNASNet search result "
                             f"({type(err).__name__}: {err}). Expected the JSON written by "
                             "`python -m snnlab search snasnet --out FILE` (a non-empty ranking "
                             "of cells); write it again.") from err
    if path.suffix == ".json":
        raise FileNotFoundError(f"--genotype {source!r}: no such file. Write one with "
                                "`python -m snnlab search snasnet ... --out FILE`.")
    try:
        return CellGenotype.from_string(source), "matrix given on the command line"
    except (ValueError, TypeError) as err:
        raise ValueError(f"--genotype {source!r} is neither a search result file nor a "
                         f"connection matrix like '0303 0030 2002 0200' ({err}).") from err


def _run_train(args: argparse.Namespace) -> int:
    """``train``: in the process group torchrun describes (if any), build the run's
    dataclasses from ``args``, fit, evaluate on test, report (rank 0)."""
    device = resolve_device(args.device)       # None: cuda if available, else cpu
    with distributed.process_group("gloo" if device.type == "cpu" else None) as info:
        return _train_in_group(args, distributed.device_for_rank(device, info.local_rank))


def _train_loader(bundle: DataBundle, loaders, batch_size: int, profile: Profile):
    """The training loader: under torchrun (any number of processes) this process's shard
    of every global batch of ``batch_size`` images; else ``make_loaders``' seeded one."""
    if not distributed.in_process_group():
        return loaders.train
    return distributed.shard_loader(bundle.train, batch_size, seed=profile.seed,
                                    num_workers=profile.num_workers)


def _check_global_batch(batch_size: int) -> None:
    """Under torchrun the batch size is split evenly over the processes: refuse one that
    does not divide (before any data is loaded)."""
    processes = distributed.world_size()
    if batch_size % processes:
        suggestion = max(processes, batch_size // processes * processes)
        raise ValueError(f"the batch size {batch_size} is the global batch of the {processes} "
                         f"processes and must divide by {processes}: pass --batch-size "
                         f"{suggestion} (or another multiple of {processes}), or launch a number "
                         f"of processes that divides {batch_size}.")


def _train_in_group(args: argparse.Namespace, device: torch.device) -> int:
    """``train`` on ``device``; rank 0 alone prints and writes the summary (and checkpoints)."""
    t0 = time.perf_counter()
    from .cli_search import read_search_result
    from .search import get_search
    profile = get_profile(args.profile)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed),
                                   ("batch_size", args.batch_size)) if v is not None}
    profile = dataclasses.replace(profile, **overrides)
    searched = read_search_result(Path(args.genotype)) if args.genotype is not None else None
    # a found network retrains with its search method's recipe (the registry says which)
    method = get_search(searched.method) if searched is not None else None
    recipe = method.recipe if method is not None else "baseline"
    settings = training_recipe(profile, recipe)
    epochs = args.epochs if args.epochs is not None else settings["epochs"]
    batch_size = args.batch_size if args.batch_size is not None else settings["batch_size"]
    _check_global_batch(batch_size)
    retrain = method.retrain_overrides(profile) if method and method.retrain_overrides else {}
    config = TrainConfig.from_profile(profile, recipe, epochs=epochs, **retrain)
    if args.genotype is not None and searched is None:   # a bad genotype fails before loading data
        genotype, source = load_genotype(args.genotype)
        config = TrainConfig.from_profile(profile, epochs=epochs, lr=profile.snasnet.lr)

    seed_everything(profile.seed)
    bundle = load_dataset(profile.dataset, root=args.data_root, download=args.download,
                          seed=profile.seed, val_fraction=profile.val_fraction)
    loaders = make_loaders(bundle, batch_size=batch_size, seed=profile.seed,
                           num_workers=profile.num_workers)
    extra = {}
    if searched is not None:                  # a result of any registered search
        model_name = searched.method
        model = method.build_network(searched, profile, bundle, auxiliary=config.aux_weight > 0)
        found = searched.best_genotype()
        extra = {"genotype": getattr(found, "to_string", found.__str__)(),
                 "genotype_dict": searched.best, "genotype_source": args.genotype}
    elif args.genotype is not None:
        from .snasnet import build_snasnet
        model_name = "snasnet"
        model = build_snasnet(genotype, profile, bundle)
        extra = {"genotype": genotype.to_string(), "genotype_dict": genotype.to_dict(),
                 "genotype_source": source}
    else:
        model_name = args.model
        model = MODELS[args.model](profile, bundle)
    train_loader = _train_loader(bundle, loaders, batch_size, profile)
    model = distributed.prepare_model(model.to(DTYPES[args.dtype]), device)   # DDP under torchrun
    history = fit(model, train_loader, loaders.val, config, device=device,
                  checkpoint=args.checkpoint, resume=args.resume)
    model = distributed.unwrap(model)         # every rank holds the same weights
    test = evaluate(model, loaders.test, device=device, count_spikes=True, amp=config.amp)
    if not distributed.is_main_process():
        return 0

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
        "processes": distributed.world_size(),
        "dtype": args.dtype,
        "config": dataclasses.asdict(config),
        "history": history,
    }
    print(json.dumps(summary, indent=2))
    if args.out is not None:            # printed first: a failed write loses nothing
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
    p.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    p.add_argument("--batch-size", type=int, default=None,
                   help="override the profile's batch size (under torchrun: the global batch "
                        "of all processes, a multiple of their number)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                   help="the model's floating type (default float32); float64 is for checking "
                        "results, e.g. that N processes equal one")
    add_run_arguments(p)
    add_resume_arguments(p, "run")
    p.add_argument("--out", default=None, help="also write the JSON summary to this file")
    p.set_defaults(run=_run_train)


def _add_search(subparsers: argparse._SubParsersAction) -> None:
    """``search``: built from the search registry by :mod:`snnlab.cli_search` (imported here,
    when the parser is built, so neither CLI module imports the other at import time)."""
    from .cli_search import add_search
    add_search(subparsers)


# Each entry registers one subcommand.
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_train, _add_search, add_bench, add_compare]


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
    try:                                  # before any work: a bad --out must not cost a run
        _check_outputs(args)
    except ValueError as err:
        sys.stderr.write(f"snnlab {args.command}: error: {err}\n")
        return 2
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
    # under torchrun every rank logs the same numbers: rank 0 speaks, the others warn only
    logger.setLevel(logging.INFO if distributed.env_rank() == 0 else logging.WARNING)
    try:
        return args.run(args)
    except (ValueError, RuntimeError, OSError) as err:   # OSError: FileNotFoundError, full disk
        sys.stderr.write(f"snnlab {args.command}: error: {err}\n")
        return 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
