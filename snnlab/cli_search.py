"""The differentiable searches on the command line: ``search darts|madarts|spikedhs``.

Each subcommand builds the run from a profile, calls the library's one entry point
(:func:`snnlab.darts_search.run_darts_search`, :func:`snnlab.madarts.madarts_search`,
:func:`snnlab.spikedhs_search.run_spikedhs_search`), writes the full result (history
included) with ``--out`` and prints a short JSON summary. ``python -m snnlab train
--genotype RESULT.json`` retrains what any of them found (:func:`build_searched_model`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Callable, Optional

from torch import nn

from .data import load_dataset
from .profiles import PROFILES, get_profile
from .train import resolve_device

__all__ = ["DIFFERENTIABLE_SEARCHES", "read_search_result", "build_searched_model"]

DIFFERENTIABLE_SEARCHES = ("darts", "madarts", "spikedhs")


def read_search_result(path: Path) -> Optional[dict]:
    """The result dict of a differentiable search written with ``--out``, else None."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if isinstance(data, dict) and data.get("method") in DIFFERENTIABLE_SEARCHES and "genotype" in data:
        return data
    return None


def build_searched_model(result: dict, profile, bundle, auxiliary: bool = False) -> nn.Module:
    """The network to retrain from a darts/madarts/spikedhs result, sized by ``profile``.

    DARTS cells get ``darts_eval_layers``/``darts_eval_channels``, MA-DARTS cells
    ``madarts_eval_layers``/``madarts_eval_channels`` (as chapter 5), SpikeDHS
    ``spikedhs_retrain_filters``. ``auxiliary`` adds the auxiliary head that a recipe
    with ``aux_weight > 0`` trains.
    """
    method = result["method"]
    if method == "spikedhs":
        from .spikedhs_search import build_spikedhs_network
        return build_spikedhs_network(result, profile, bundle, auxiliary=auxiliary)
    from .darts import build_darts_network
    from .genotypes import Genotype
    genotype = Genotype.from_dict(result["genotype"])
    config = result.get("config", {})
    if method == "madarts":
        profile = dataclasses.replace(profile, darts_eval_layers=profile.madarts_eval_layers,
                                      darts_eval_channels=profile.madarts_eval_channels)
    return build_darts_network(genotype, profile, bundle,
                               attention=config.get("attention", "none"),
                               attention_placement=config.get("attention_placement",
                                                              "cell_output"),
                               auxiliary=auxiliary)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="run settings (default: $SNNLAB_PROFILE, else tiny)")
    parser.add_argument("--epochs", type=int, default=None, help="override the search epochs")
    parser.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    parser.add_argument("--data-root", default=None,
                        help="folder holding the datasets (default: $SNNLAB_DATA, else ./data)")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR from the official site if it is missing")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--checkpoint", default=None,
                        help="search checkpoint, written atomically after every epoch")
    parser.add_argument("--resume", action="store_true",
                        help="continue the search saved in --checkpoint (same settings)")
    parser.add_argument("--out", default=None,
                        help="write the full result (history, genotype, provenance) here")


def _run(args: argparse.Namespace, search: Callable[..., dict], **switches) -> int:
    """Load the profile's data, run ``search``, stamp provenance, print a summary."""
    from .cli import _provenance, _write_json_atomic    # the one provenance rule
    profile = get_profile(args.profile)
    if args.seed is not None:
        profile = dataclasses.replace(profile, seed=args.seed)
    device = resolve_device(args.device)
    bundle = load_dataset(profile.dataset, root=args.data_root, download=args.download,
                          seed=profile.seed, val_fraction=profile.val_fraction)
    result = search(profile, bundle, epochs=args.epochs, device=device,
                    checkpoint=args.checkpoint, resume=args.resume, **switches)
    result["provenance"] = _provenance(args, device)
    if args.out is not None:
        _write_json_atomic(Path(args.out), result)
    last = result["history"][-1]
    print(json.dumps({
        "method": result["method"], "profile": profile.name, "genotype": result["genotype"],
        "epochs": len(result["history"]), "val_acc": last.get("val_acc"),
        "val_nos": last.get("val_nos"), "seconds": result["seconds"], "device": str(device),
        "out": args.out,
        "retrain": f"python -m snnlab train --genotype {args.out or 'RESULT.json'}",
    }, indent=2))
    return 0


def _run_darts(args: argparse.Namespace) -> int:
    from .darts_search import run_darts_search
    return _run(args, run_darts_search, order=args.order)


def _run_madarts(args: argparse.Namespace) -> int:
    from .madarts import madarts_search
    return _run(args, madarts_search, order=args.order, attention=args.attention,
                placement=args.placement)


def _run_spikedhs(args: argparse.Namespace) -> int:
    from .spikedhs_search import run_spikedhs_search
    return _run(args, run_spikedhs_search, dgs=args.dgs, temporal=args.temporal)


def add_search_darts(methods: argparse._SubParsersAction) -> None:
    p = methods.add_parser("darts", help="spiking DARTS: differentiable cell search",
                           description="Spiking DARTS (Liu et al., ICLR 2019, with LIF nodes).")
    p.add_argument("--order", type=int, choices=(1, 2), default=1,
                   help="1: first-order architect; 2: second order (virtual step + HVP)")
    _common(p)
    p.set_defaults(run=_run_darts)


def add_search_madarts(methods: argparse._SubParsersAction) -> None:
    from .attention import ATTENTIONS, PLACEMENTS
    p = methods.add_parser("madarts", help="MA-DARTS (our reconstruction): DARTS with attention",
                           description="MA-DARTS (Man et al. 2024), reconstructed: spiking "
                                       "DARTS with attention blocks; NoS per cell every epoch.")
    p.add_argument("--order", type=int, choices=(1, 2), default=1)
    p.add_argument("--attention", choices=sorted(ATTENTIONS), default="eca")
    p.add_argument("--placement", choices=sorted(PLACEMENTS), default="cell_output")
    _common(p)
    p.set_defaults(run=_run_madarts)


def add_search_spikedhs(methods: argparse._SubParsersAction) -> None:
    p = methods.add_parser("spikedhs", help="SpikeDHS: cell + layer-path search (+DGS, +time)",
                           description="SpikeDHS (Che et al., NeurIPS 2022): hierarchical "
                                       "search; --dgs searches the surrogate sharpness b, "
                                       "--temporal the time constants (our reconstruction).")
    p.add_argument("--dgs", action="store_true", help="search Dspike's b per stage (DGS)")
    p.add_argument("--temporal", action="store_true", help="search time constants per stage")
    _common(p)
    p.set_defaults(run=_run_spikedhs)
