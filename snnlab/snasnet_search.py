"""SNASNet's training-free search as a registered method: one config, one call, one result.

:func:`snnlab.trainfree.random_search` and :func:`~snnlab.trainfree.evolutionary_search`
take a space, a builder and scoring batches; this module builds all three from
a :class:`SNASNetSearchConfig` (itself built from a profile), so the search
runs like every other method: ``run_snasnet(config, bundle) -> SearchResult``.

Every scored candidate's row in ``result.history`` also holds ``spikes``: its
spikes per image while scored (untrained), the second objective of
:func:`snnlab.search.pareto_front` (score vs spikes).

Example::

    config = SNASNetSearchConfig.from_profile(get_profile("tiny"), space="bw", candidates=20)
    result = run_snasnet(config, load_dataset("digits"))
    result.genotype, result.metrics["score"], result.metrics["spikes"]
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from .profiles import Profile
from .search.config import check_fields, config_from_profile, settings_of
from .search.result import SearchResult
from .train import resolve_device

__all__ = ["SNASNetSearchConfig", "STRATEGIES", "run_snasnet", "build_snasnet_network"]

STRATEGIES = ("random", "evolution")


@dataclass(frozen=True)
class SNASNetSearchConfig:
    """Settings of one training-free SNASNet search.

    Search: ``strategy`` (``"random"``, the paper's, or ``"evolution"``), ``space``
    (``"fw"`` forward cells, ``"bw"`` also backward edges), ``candidates`` distinct
    cells to score (paper: 5000), evolution's ``population`` and ``sample_size``.
    Score: ``kernel`` (:data:`snnlab.trainfree.KERNELS`), BN ``mode`` while scoring,
    ``reset_between_batches``, ``batches`` of ``batch_size`` images (official: 2 of 256).
    Scored network (the macro net of every candidate): ``channels``, ``fc``,
    ``votes``, ``last_pool``, ``T``. ``seed``: draws, batches and weights.
    """

    strategy: str = "random"
    space: str = "fw"
    candidates: int = 100
    population: int = 20
    sample_size: int = 5
    kernel: str = "sahd"
    mode: str = "train"
    reset_between_batches: bool = True
    batches: int = 2
    batch_size: int = 256
    channels: int = 16
    fc: int = 128
    votes: int = 10
    last_pool: int = 2
    T: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        from .trainfree import KERNELS, SCORE_MODES
        check_fields(self, positive=("candidates", "population", "sample_size", "batches",
                                     "channels", "fc", "votes", "last_pool", "T"),
                     choices={"strategy": STRATEGIES, "space": ("fw", "bw"),
                              "kernel": KERNELS, "mode": SCORE_MODES})
        if self.batch_size < 2:
            raise ValueError(f"SNASNetSearchConfig.batch_size must be >= 2 (the kernel compares "
                             f"samples); got {self.batch_size!r}.")
        if self.sample_size > self.population:
            raise ValueError(f"SNASNetSearchConfig.sample_size ({self.sample_size}) must be <= "
                             f"population ({self.population}).")

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> "SNASNetSearchConfig":
        """The profile's SNASNet settings (``snasnet_*``, ``T``, ``seed``), then ``overrides``.

        Example:
            >>> from snnlab.profiles import get_profile
            >>> SNASNetSearchConfig.from_profile(get_profile("tiny"), space="bw").space
            'bw'
        """
        s = settings_of(profile, "snasnet")
        base = dict(candidates=s.candidates, batch_size=s.score_batch_size, channels=s.channels,
                    fc=s.fc, votes=s.votes, last_pool=s.last_pool, T=profile.T,
                    seed=profile.seed)
        return config_from_profile(cls, profile, base, overrides)


def _builder(config: SNASNetSearchConfig, bundle):
    """``genotype -> SNASNet`` at the config's size, for the bundle's images."""
    from .snasnet import SNASNet

    def build(genotype):
        return SNASNet(genotype, in_channels=bundle.in_channels, num_classes=bundle.num_classes,
                       C=config.channels, T=config.T, image_size=bundle.image_size,
                       fc_hidden=config.fc, votes_per_class=config.votes,
                       last_pool=config.last_pool)
    return build


def run_snasnet(config: SNASNetSearchConfig, bundle,
                device: Union[str, torch.device, None] = None, checkpoint=None,
                resume: bool = False, progress: Optional[bool] = None) -> SearchResult:
    """Score ``config.candidates`` untrained cells on ``bundle.train`` images; keep the best.

    Args:
        config: a :class:`SNASNetSearchConfig`.
        bundle: a :class:`~snnlab.data.DataBundle`; scoring batches come from its
            ``train`` set (:func:`snnlab.trainfree.sample_batches`, seeded).
        device: None picks CUDA when available.
        checkpoint, resume: not supported (a training-free search has no state worth
            keeping between candidates); must be None / False.
        progress: ``tqdm.auto`` bar; None follows ``$SNNLAB_PROGRESS`` / the terminal.
    Returns:
        a :class:`~snnlab.search.result.SearchResult` with ``method="snasnet"``;
        ``history`` holds every candidate in scoring order, ``ranking`` best first;
        ``config`` the config's fields, ``config["space"]`` the space's facts
        (``{"type", "kind", "ops", "size", ...}``).
    """
    from .snasnet import SNASNetSpace
    from .trainfree import evolutionary_search, random_search, sample_batches
    if not isinstance(config, SNASNetSearchConfig):
        raise TypeError(f"config must be a SNASNetSearchConfig; got {type(config).__name__}.")
    if checkpoint is not None or resume:
        raise ValueError("the training-free search takes no checkpoint: it keeps no training "
                         "state; rerun it (same seed, same result) instead of resuming.")
    device = resolve_device(device)
    batches = sample_batches(bundle.train, batches=config.batches,
                             batch_size=config.batch_size, seed=config.seed)
    kwargs = dict(seed=config.seed, progress=progress, kernel=config.kernel, mode=config.mode,
                  reset_between_batches=config.reset_between_batches, device=device)
    space, build = SNASNetSpace(kind=config.space), _builder(config, bundle)
    if config.strategy == "evolution":
        result = evolutionary_search(space, build, batches, config.candidates,
                                     population=config.population,
                                     sample_size=config.sample_size, **kwargs)
    else:
        result = random_search(space, build, batches, config.candidates, **kwargs)
    # the config's fields, with "space" as the space's facts (type, kind, ops, size)
    return result.replace(
        config={**dataclasses.asdict(config), **result.config},
        provenance={"dataset": getattr(bundle, "name", None), **result.provenance})


def build_snasnet_network(result: Union[SearchResult, Any], profile: Profile, bundle,
                          auxiliary: bool = False):
    """The found cell's :class:`~snnlab.snasnet.SNASNet`, sized by the profile for retraining.

    ``result``: a SearchResult or a :class:`~snnlab.snasnet.CellGenotype`.
    ``auxiliary``: SNASNet has no auxiliary head; must be False.
    """
    from .snasnet import build_snasnet
    if auxiliary:
        raise ValueError("SNASNet networks have no auxiliary head; retrain with aux_weight=0.")
    genotype = result.best_genotype() if isinstance(result, SearchResult) else result
    return build_snasnet(genotype, profile, bundle)
