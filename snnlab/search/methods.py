"""The built-in searches, registered in :data:`snnlab.search.registry.SEARCH_METHODS`.

Each entry ties a method's config, its one-call search (``run_*``), its
retraining builder and its command-line flags together; the code of each method
stays in its own module (:mod:`snnlab.snasnet_search`, :mod:`snnlab.darts_search`,
:mod:`snnlab.spikedhs_search`). Imported on the first registry lookup.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Tuple

from torch import nn

from ..darts_search import DartsConfig, run_darts
from ..genotypes import Genotype
from ..profiles import Profile
from .config import settings_of
from ..snasnet_space import CellGenotype
from ..snasnet_search import SNASNetSearchConfig, build_snasnet_network, run_snasnet
from ..spikedhs import SpikeDHSGenotype
from ..spikedhs_search import SpikeDHSConfig, build_spikedhs_network, run_spikedhs
from .registry import SearchMethod, register_search
from .result import SearchResult

__all__ = ["MADartsConfig", "build_darts_result", "build_madarts_result"]


@dataclass(frozen=True)
class MADartsConfig(DartsConfig):
    """:class:`~snnlab.darts_search.DartsConfig` with MA-DARTS's default attention (ECA on
    every cell's output); ``attention="none"`` is plain spiking DARTS."""

    attention: str = "eca"


def _genotype_and_config(result: Any, genotype_cls: type) -> Tuple[Any, dict]:
    """``(genotype, config dict)`` of a SearchResult, a result dict or a bare genotype."""
    if isinstance(result, dict) and "genotype" in result:
        result = SearchResult.from_dict(result)
    if isinstance(result, SearchResult):
        return result.genotype, result.config
    if isinstance(result, dict):
        return genotype_cls.from_dict(result), {}
    if isinstance(result, genotype_cls):
        return result, {}
    raise TypeError(f"expected a SearchResult or a {genotype_cls.__name__}; got "
                    f"{type(result).__name__}.")


def build_darts_result(result: Any, profile: Profile, bundle, auxiliary: bool = False
                       ) -> nn.Module:
    """The DARTS network of a result, sized by ``profile.darts.eval_layers``/``eval_channels``,
    with the search's attention and placement (none for plain DARTS)."""
    from ..darts import build_darts_network
    genotype, config = _genotype_and_config(result, Genotype)
    return build_darts_network(genotype, profile, bundle,
                               attention=config.get("attention", "none"),
                               attention_placement=config.get("attention_placement",
                                                              "cell_output"),
                               auxiliary=auxiliary)


def build_madarts_result(result: Any, profile: Profile, bundle, auxiliary: bool = False
                         ) -> nn.Module:
    """As :func:`build_darts_result`, sized by ``profile.madarts.eval_layers``/``eval_channels``
    (chapter 5's retraining size)."""
    madarts = settings_of(profile, "madarts")
    sized = dataclasses.replace(profile, darts=dataclasses.replace(
        profile.darts, eval_layers=madarts.eval_layers, eval_channels=madarts.eval_channels))
    return build_darts_result(result, sized, bundle, auxiliary)


def _build_spikedhs_result(result: Any, profile: Profile, bundle, auxiliary: bool = False
                           ) -> nn.Module:
    if isinstance(result, dict) and "genotype" in result:
        result = SearchResult.from_dict(result)
    return build_spikedhs_network(result, profile, bundle, auxiliary=auxiliary)


# ----------------------------------------------------------------------------- CLI flags

def _snasnet_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", choices=("fw", "bw"), default="fw",
                   help="fw: forward cells only (5^6); bw: also backward (feedback) edges")
    p.add_argument("--candidates", type=int, default=None,
                   help="distinct cells to score (default: the profile's; paper: 5000)")
    p.add_argument("--method", dest="strategy", choices=("random", "evolution"),
                   default="random",
                   help="random (the paper's) or regularized evolution (default: random)")
    p.add_argument("--population", type=int, default=20, help="evolution: population size")
    p.add_argument("--sample-size", type=int, default=5, help="evolution: tournament size")
    p.add_argument("--kernel", choices=("sahd", "sahd_rate", "hamming"), default="sahd",
                   help="sahd: the paper's sparsity-aware kernel; sahd_rate: SpikeNAS-Bench's; "
                        "hamming: plain NASWOT")
    p.add_argument("--mode", choices=("train", "eval"), default="train",
                   help="BN/dropout mode while scoring (default: train, as the official code)")
    p.add_argument("--no-reset", action="store_true",
                   help="carry membranes from one scoring batch to the next, as the "
                        "official code does (default: every batch starts from rest)")
    p.add_argument("--batches", type=int, default=2,
                   help="scoring batches per candidate (default and official: 2)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per scoring batch (default: the profile's; official: 256)")
    p.add_argument("--storage", default=None,
                   help="share the search through an Optuna study in this storage "
                        "(sqlite:///study.db, postgresql://..., journal:PATH; needs "
                        "snnlab[scale]); the same command on another machine joins it")
    p.add_argument("--workers", type=int, default=1,
                   help="with --storage: worker processes started by this command (default 1)")
    p.add_argument("--study-name", default=None,
                   help="with --storage: the study's name (default: derived from the settings)")


def _snasnet_overrides(args: argparse.Namespace) -> dict:
    out = dict(strategy=args.strategy, space=args.space, population=args.population,
               sample_size=args.sample_size, kernel=args.kernel, mode=args.mode,
               reset_between_batches=not args.no_reset, batches=args.batches)
    if args.candidates is not None:
        out["candidates"] = args.candidates
    if args.batch_size is not None:
        out["batch_size"] = args.batch_size
    return out


def _order_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--order", type=int, choices=(1, 2), default=1,
                   help="1: first-order architect; 2: second order (virtual step + HVP)")


def _madarts_arguments(p: argparse.ArgumentParser) -> None:
    from ..attention import ATTENTIONS, PLACEMENTS
    _order_argument(p)
    p.add_argument("--attention", choices=sorted(ATTENTIONS), default="eca")
    p.add_argument("--placement", choices=sorted(PLACEMENTS), default="cell_output")


def _spikedhs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dgs", action="store_true", help="search Dspike's b per stage (DGS)")
    p.add_argument("--temporal", action="store_true", help="search time constants per stage")


# ----------------------------------------------------------------------------- the table

register_search(SearchMethod(
    name="snasnet", summary="SNASNet: score untrained cells by their spike patterns (no training)",
    description="SNASNet training-free search (Kim et al., ECCV 2022): score untrained cells "
                "with the sparsity-aware Hamming kernel of their spikes, keep the best.",
    config_cls=SNASNetSearchConfig, search=run_snasnet, build_network=build_snasnet_network,
    genotype_cls=CellGenotype, recipe="baseline",
    retrain_overrides=lambda profile: {"lr": settings_of(profile, "snasnet").lr},
    add_arguments=_snasnet_arguments,
    overrides=_snasnet_overrides, differentiable=False, resumable=False), replace=True)

register_search(SearchMethod(
    name="darts", summary="spiking DARTS: differentiable cell search",
    description="Spiking DARTS (Liu et al., ICLR 2019, with LIF nodes).",
    config_cls=DartsConfig, search=run_darts, build_network=build_darts_result,
    genotype_cls=Genotype, recipe="darts", add_arguments=_order_argument,
    overrides=lambda args: {"order": args.order}), replace=True)

register_search(SearchMethod(
    name="madarts", summary="MA-DARTS (our reconstruction): DARTS with attention",
    description="MA-DARTS (Man et al. 2024), reconstructed: spiking DARTS with attention "
                "blocks; NoS per cell every epoch.",
    config_cls=MADartsConfig, search=run_darts, build_network=build_madarts_result,
    genotype_cls=Genotype, recipe="madarts", add_arguments=_madarts_arguments,
    overrides=lambda args: {"order": args.order, "attention": args.attention,
                            "attention_placement": args.placement}), replace=True)

register_search(SearchMethod(
    name="spikedhs", summary="SpikeDHS: cell + layer-path search (+DGS, +time)",
    description="SpikeDHS (Che et al., NeurIPS 2022): hierarchical search; --dgs searches the "
                "surrogate sharpness b, --temporal the time constants (our reconstruction).",
    config_cls=SpikeDHSConfig, search=run_spikedhs, build_network=_build_spikedhs_result,
    genotype_cls=SpikeDHSGenotype, recipe="spikedhs", add_arguments=_spikedhs_arguments,
    overrides=lambda args: {"dgs": args.dgs, "temporal": args.temporal}), replace=True)
