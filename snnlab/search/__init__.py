"""One interface for every architecture search: registry, result, run loop, Pareto selection.

* :mod:`~snnlab.search.registry`: :func:`get_search` ``(name) -> SearchMethod``
  (``config``, ``search``, ``build_network``), :func:`register_search`,
  :func:`search_names`.
* :mod:`~snnlab.search.result`: :class:`SearchResult`, the one result type (JSON
  round trip, reads the formats of earlier releases).
* :mod:`~snnlab.search.loop`: the epoch loop the differentiable searches plug into.
* :mod:`~snnlab.search.pareto`: :func:`pareto_front` and :func:`pick` over
  accuracy, spikes, energy, ...

Example::

    from snnlab.search import get_search, pareto_front
    darts = get_search("darts")
    result = darts.search(darts.config(profile, epochs=2), bundle)   # a SearchResult
    net = darts.build_network(result, profile, bundle)               # to retrain
"""
from .pareto import MAXIMIZE, candidate_points, dominates, pareto_front, pick
from .registry import (SEARCH_METHODS, SearchMethod, get_search, register_search,
                       search_names, unregister_search)
from .result import GENOTYPE_TYPES, SearchResult, register_genotype_type

__all__ = ["SearchMethod", "SEARCH_METHODS", "get_search", "register_search",
           "unregister_search", "search_names", "SearchResult", "GENOTYPE_TYPES",
           "register_genotype_type", "MAXIMIZE", "pareto_front", "pick",
           "dominates", "candidate_points"]
