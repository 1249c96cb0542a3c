"""The search-method registry: every search is data, as the candidate ops are.

:data:`SEARCH_METHODS` maps a method name to a :class:`SearchMethod`: its
config dataclass (built from a profile), its ``search(config, data)`` that
returns a :class:`~snnlab.search.result.SearchResult`, and its
``build_network(result, profile, bundle)`` that builds the found architecture
for retraining. The command line (``python -m snnlab search --list``,
``search METHOD``, ``train --genotype RESULT.json``) and chapter 7 read only
this table; a new method is one :func:`register_search` call in your own code.

Built in (registered by :mod:`snnlab.search.methods` on first lookup):

==========  ===============================================  ==========================
name        what                                             config
==========  ===============================================  ==========================
snasnet     training-free: score untrained cells (random     ``SNASNetSearchConfig``
            search as the paper, or regularized evolution)
darts       spiking DARTS cell search                        ``DartsConfig``
madarts     DARTS + attention, NoS per cell (reconstructed)  ``MADartsConfig``
spikedhs    cell + layer path (+ DGS ``b``, + time consts)   ``SpikeDHSConfig``
==========  ===============================================  ==========================

Example::

    method = get_search("darts")
    config = method.config(profile, epochs=2)            # DartsConfig.from_profile
    result = method.search(config, bundle)               # SearchResult
    model = method.build_network(result, profile, bundle)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

__all__ = ["SearchMethod", "SEARCH_METHODS", "register_search", "unregister_search",
           "get_search", "search_names"]


@dataclass(frozen=True)
class SearchMethod:
    """One registered search.

    Attributes:
        name: registry key, also ``SearchResult.method`` of its results.
        summary: one line for ``search --list``.
        config_cls: frozen dataclass with ``from_profile(profile, **overrides)``.
        search: ``search(config, data, *, device=None, checkpoint=None, resume=False,
            progress=None) -> SearchResult``; ``data`` is a
            :class:`~snnlab.data.DataBundle`.
        build_network: ``build_network(result, profile, bundle, *, auxiliary=False)
            -> nn.Module``, the found architecture sized by the profile for
            retraining; ``result`` a SearchResult (or its genotype).
        genotype_cls: the type of ``SearchResult.genotype``.
        recipe: the retraining recipe (:func:`snnlab.profiles.training_recipe`).
        retrain_overrides: ``(profile) -> dict`` of :class:`~snnlab.train.TrainConfig`
            fields on top of the recipe (SNASNet: its own learning rate).
        add_arguments: ``(argparse parser) -> None``, the method's own CLI flags.
        overrides: ``(argparse namespace) -> dict``: config fields from those flags.
        differentiable: True for the bilevel (weights + architecture) searches.
        resumable: whether ``search`` accepts ``checkpoint`` / ``resume``.
        description: longer text for ``search METHOD --help`` (default: ``summary``).
    """

    name: str
    summary: str
    config_cls: type
    search: Callable[..., Any]
    build_network: Callable[..., Any]
    genotype_cls: type
    recipe: str = "baseline"
    retrain_overrides: Optional[Callable[[Any], dict]] = None
    add_arguments: Optional[Callable[[Any], None]] = None
    overrides: Optional[Callable[[Any], dict]] = None
    differentiable: bool = True
    resumable: bool = True
    description: str = ""

    def config(self, profile, **overrides: Any):
        """The method's config from a profile, then ``overrides`` (its ``from_profile``)."""
        return self.config_cls.from_profile(profile, **overrides)

    def config_fields(self) -> Dict[str, Any]:
        """``{field name: default}`` of the config dataclass (what ``--set`` accepts)."""
        return {f.name: (f.default if f.default is not dataclasses.MISSING else None)
                for f in dataclasses.fields(self.config_cls)}


SEARCH_METHODS: Dict[str, SearchMethod] = {}
"""The registry: method name -> :class:`SearchMethod`. Read it through :func:`get_search`."""

_BUILTINS_LOADED = False


def _load_builtins() -> None:
    """Import :mod:`snnlab.search.methods` once (it registers the built-in searches)."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        from . import methods  # noqa: F401  (registers snasnet, darts, madarts, spikedhs)


def register_search(method: SearchMethod, *, replace: bool = False) -> SearchMethod:
    """Add ``method`` to :data:`SEARCH_METHODS` under ``method.name``.

    Args:
        method: a :class:`SearchMethod`.
        replace: allow overwriting a method of that name (re-running a notebook cell).
    Returns:
        ``method``.
    """
    if not isinstance(method, SearchMethod):
        raise TypeError(f"register_search takes a SearchMethod; got {type(method).__name__}.")
    if not method.name or not method.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"a search name is letters, digits, '-' and '_'; got {method.name!r}.")
    for attr in ("search", "build_network"):
        if not callable(getattr(method, attr)):
            raise TypeError(f"SearchMethod {method.name!r}: {attr} must be callable.")
    if not callable(getattr(method.config_cls, "from_profile", None)):
        raise TypeError(f"SearchMethod {method.name!r}: config_cls "
                        f"{method.config_cls.__name__} needs a from_profile(profile, **overrides).")
    if method.name in SEARCH_METHODS and not replace:
        raise ValueError(f"search {method.name!r} is already registered; pass replace=True to "
                         f"overwrite it. Registered: {sorted(SEARCH_METHODS)}.")
    SEARCH_METHODS[method.name] = method
    return method


def unregister_search(name: str) -> None:
    """Remove a registered search (meant for your own; a removed built-in stays removed until
    the interpreter restarts)."""
    if name not in SEARCH_METHODS:
        raise KeyError(f"no search named {name!r}; registered: {sorted(SEARCH_METHODS)}.")
    del SEARCH_METHODS[name]


def get_search(name: str) -> SearchMethod:
    """The registered search ``name`` (ValueError listing the names otherwise)."""
    _load_builtins()
    method = SEARCH_METHODS.get(name)
    if method is None:
        raise ValueError(f"unknown search method {name!r}; registered: {search_names()}. "
                         "Add one with snnlab.search.register_search(SearchMethod(...)).")
    return method


def search_names() -> list:
    """Names of every registered search, built-ins first, in registration order."""
    _load_builtins()
    return list(SEARCH_METHODS)
