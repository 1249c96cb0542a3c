"""``python -m snnlab search``: every registered search on the command line.

The parser is built from :data:`snnlab.search.SEARCH_METHODS`: ``search --list``
lists the methods, ``search METHOD --help`` shows a method's own flags (from its
registry entry) and the common ones, ``--set FIELD=VALUE`` sets any field of the
method's config. Every method writes the one
:class:`~snnlab.search.SearchResult` format with ``--out`` and prints a short JSON
summary; ``python -m snnlab train --genotype RESULT.json`` retrains what any of
them found (:func:`build_searched_model`, through the registry's ``build_network``).

Under ``torchrun`` the differentiable searches (darts, madarts, spikedhs) run
data-parallel, the batch size being the global batch of all processes::

    python -m torch.distributed.run --nproc_per_node 2 -m snnlab search darts --epochs 1

This module imports :mod:`snnlab.cli_common`, never :mod:`snnlab.cli`.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

from torch import nn

from . import distributed
from .cli_common import add_resume_arguments, add_run_arguments, load_run, provenance
from .safeio import write_or_fallback
from .search import SearchResult, get_search, search_names
from .train import resolve_device

__all__ = ["add_search", "read_search_result", "build_searched_model", "parse_setting"]


def read_search_result(path: Path) -> Optional[SearchResult]:
    """The :class:`~snnlab.search.SearchResult` in ``path`` (any method, this release's
    format or an earlier one), or None when the file is missing or holds something else."""
    try:
        return SearchResult.load(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def build_searched_model(result: Any, profile, bundle, auxiliary: bool = False) -> nn.Module:
    """The network to retrain from a search result, sized by ``profile``: the registry's
    ``build_network`` of ``result.method`` (a result dict is read with ``from_dict``)."""
    if isinstance(result, dict):
        result = SearchResult.from_dict(result)
    return get_search(result.method).build_network(result, profile, bundle, auxiliary=auxiliary)


def parse_setting(text: str, fields: dict) -> tuple:
    """``"FIELD=VALUE"`` -> ``(field, value)``; the value as a Python literal (``3``,
    ``0.1``, ``True``, ``None``, ``(0.5, 0.999)``), else as a string."""
    name, sep, raw = text.partition("=")
    if not sep or name not in fields:
        raise argparse.ArgumentTypeError(f"--set takes FIELD=VALUE with FIELD one of "
                                         f"{sorted(fields)}; got {text!r}.")
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return name, raw


def _summary(method, result: SearchResult, args: argparse.Namespace) -> dict:
    """The JSON printed on stdout: what was found and what it cost (the file has the rest)."""
    out = {"method": result.method, "profile": result.provenance.get("profile"),
           "genotype": result.best, "metrics": result.metrics, "cost": result.cost,
           "seconds": result.seconds, "device": result.provenance.get("device"), "out": args.out,
           "retrain": f"python -m snnlab train --genotype {args.out or 'RESULT.json'}"}
    if method.differentiable:
        last = result.history[-1] if result.history else {}
        out.update(epochs=len(result.history), val_acc=last.get("val_acc"),
                   val_nos=last.get("val_nos", last.get("nos")))
    else:                                 # the training-free search's summary, as before
        from .snasnet import CellGenotype
        cell = lambda g: CellGenotype.from_dict(g).to_string()           # noqa: E731
        c = result.config
        space = c["space"]["kind"] if isinstance(c["space"], dict) else c["space"]
        out.update(search="snasnet", method=c["strategy"], space=space,
                   candidates=result.candidates, draws=result.draws, best=cell(result.best),
                   best_score=result.best_score,
                   top=[{"genotype": cell(e["genotype"]), "score": e["score"]}
                        for e in result.ranking[:5]],
                   candidates_per_second=result.candidates / result.seconds,
                   kernel=c["kernel"], mode=c["mode"],
                   reset_between_batches=c["reset_between_batches"])
    return out


def _run(args: argparse.Namespace) -> int:
    """A search; under torchrun a differentiable one runs data-parallel
    (:mod:`snnlab.distributed`) and rank 0 alone prints and writes."""
    method = get_search(args.search_method)
    if "WORLD_SIZE" not in os.environ:
        return _search(args, method)
    if not method.differentiable:
        raise ValueError(f"the {method.name} search is not data-parallel, so torchrun would run "
                         "the same search in every process; share it between workers with "
                         "--storage and --workers (an Optuna study) instead.")
    backend = "gloo" if resolve_device(args.device).type == "cpu" else None
    with distributed.process_group(backend) as info:
        return _search(args, method, info.local_rank)


def _search(args: argparse.Namespace, method, local_rank: int = 0) -> int:
    """Build the method's config from the profile and the flags, search, report, write."""
    overrides = method.overrides(args) if method.overrides is not None else {}
    if getattr(args, "epochs", None) is not None:
        overrides["epochs"] = args.epochs
    overrides.update(dict(args.set or []))
    profile, device, bundle = load_run(args)
    device = distributed.device_for_rank(device, local_rank)
    config = method.config(profile, **overrides)
    kwargs = {"checkpoint": args.checkpoint, "resume": args.resume} if method.resumable else {}
    if getattr(args, "storage", None) is not None:     # snasnet: a study shared by workers
        from .optuna_search import run_snasnet_study
        result = run_snasnet_study(config, bundle, storage=args.storage, workers=args.workers,
                                   study_name=args.study_name, device=device)
    else:
        result = method.search(config, bundle, device=device, **kwargs)
    if not distributed.is_main_process():
        return 0
    result = result.replace(provenance={**result.provenance, "profile": profile.name,
                                        "dataset": profile.dataset,
                                        **({"processes": distributed.world_size()}
                                           if distributed.in_process_group() else {}),
                                        **provenance(args.argv, device)})
    print(json.dumps(_summary(method, result, args), indent=2))
    if args.out is not None:
        write_or_fallback(args.out, result.save, "--out")
    return 0


def _list(args: argparse.Namespace) -> int:
    """``search --list``: one line per registered method."""
    for name in search_names():
        print(f"{name:12s} {get_search(name).summary}")
    return 0


def _add_method(methods: argparse._SubParsersAction, name: str) -> None:
    method = get_search(name)
    p = methods.add_parser(name, help=method.summary,
                           description=method.description or method.summary)
    if method.add_arguments is not None:
        method.add_arguments(p)
    add_run_arguments(p)
    fields = method.config_fields()
    if "epochs" in fields:
        p.add_argument("--epochs", type=int, default=None, help="override the search epochs")
    if method.resumable:
        add_resume_arguments(p, "search")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   type=lambda text: parse_setting(text, fields),
                   help=f"set any {method.config_cls.__name__} field, e.g. --set seed=3 "
                        "(repeatable)")
    p.add_argument("--out", default=None,
                   help="write the SearchResult (genotype, history, cost, provenance) here")
    p.set_defaults(run=_run)


def add_search(subparsers: argparse._SubParsersAction) -> None:
    """The ``search`` command: ``--list`` and one subcommand per registered method."""
    p = subparsers.add_parser("search", help="search an architecture (search --list: methods)",
                              description="Architecture search; pick a method "
                                          "(search --list shows them).")
    p.add_argument("--list", action="store_true", help="list the registered search methods")
    p.set_defaults(run=run_list_or_help, list_parser=p)
    methods = p.add_subparsers(dest="search_method", metavar="method")
    for name in search_names():
        _add_method(methods, name)


def run_list_or_help(args: argparse.Namespace) -> int:
    """``search`` without a method: the list with ``--list``, else the help (status 2)."""
    if getattr(args, "list", False):
        return _list(args)
    args.list_parser.print_help(sys.stderr)
    return 2
