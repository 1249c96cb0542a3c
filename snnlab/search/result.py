"""One result type for every search: :class:`SearchResult`, its JSON file, and the old files.

Every search in snnlab (SNASNet's training-free search, DARTS, MA-DARTS,
SpikeDHS) returns a :class:`SearchResult`:

==============  ==================================================================
field           what it holds
==============  ==================================================================
``method``      the registry name (``"snasnet"``, ``"darts"``, ``"madarts"``,
                ``"spikedhs"``; see :mod:`snnlab.search.registry`)
``genotype``    the found architecture as its own type (``CellGenotype``,
                ``Genotype``, ``SpikeDHSGenotype``), a plain dict for an unknown type
``history``     one dict per epoch (differentiable searches) or per scored
                candidate in scoring order (training-free search)
``cost``        ``seconds``, ``epochs`` or ``candidates``/``draws``, ``images_seen``
``metrics``     what was measured of the found architecture: ``accuracy`` (val),
                ``spikes`` (NoS per image), ``energy_uj``, ``score``; None where
                not measured
``config``      the search settings (the method's config dataclass as a dict)
``provenance``  profile, dataset, device, versions (and, from the CLI, command,
                commit, date)
``extras``      method-specific records (e.g. SpikeDHS's ``dgs_trajectory``)
==============  ==================================================================

The file is strict JSON (NaN and inf are written as null), written atomically
(:func:`snnlab.safeio.write_json_atomic`). :meth:`SearchResult.from_dict` also reads the
two formats of earlier releases: the training-free ``SearchResult`` of
``snnlab.trainfree`` (``method`` ``"random"``/``"evolution"``, ``ranking``) and
the result dicts of ``run_darts_search`` / ``madarts_search`` /
``run_spikedhs_search`` (``method``, ``genotype``, ``history``, ``seconds``).

Example::

    result = SearchResult.load("darts.json")
    result.genotype            # a snnlab.genotypes.Genotype
    result.metrics["spikes"]   # spikes per image of the final supernet on the val half
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from ..safeio import read_json, strict_json, write_json_atomic

__all__ = ["RESULT_FORMAT", "GENOTYPE_TYPES", "register_genotype_type", "genotype_type_name",
           "genotype_from_dict", "SearchResult", "trainfree_result", "differentiable_result",
           "run_as_dict", "given", "write_json_atomic"]

RESULT_FORMAT = "snnlab-search-result-1"

GENOTYPE_TYPES: dict = {
    "CellGenotype": "snnlab.snasnet_space:CellGenotype",
    "Genotype": "snnlab.genotypes:Genotype",
    "SpikeDHSGenotype": "snnlab.spikedhs:SpikeDHSGenotype",
}
"""Genotype type name (stored in the file) -> class, or ``"module:Class"`` imported on first use."""

_LEGACY_TRAINFREE = ("random", "evolution")           # trainfree.SearchResult's old methods
_LEGACY_GENOTYPES = {"darts": "Genotype", "madarts": "Genotype", "spikedhs": "SpikeDHSGenotype"}


# ----------------------------------------------------------------------------- JSON files

# ----------------------------------------------------------------------------- genotype types

def register_genotype_type(cls: type, name: Optional[str] = None) -> type:
    """Make ``cls`` (with ``to_dict()`` / ``from_dict()``) readable back from result files.

    Usable as a class decorator. ``name`` defaults to the class name.
    """
    if not (callable(getattr(cls, "to_dict", None)) and callable(getattr(cls, "from_dict", None))):
        raise TypeError(f"{getattr(cls, '__name__', cls)!r} needs to_dict() and a classmethod "
                        "from_dict() to be stored in a search result.")
    GENOTYPE_TYPES[name or cls.__name__] = cls
    return cls


def _genotype_class(name: str) -> type:
    entry = GENOTYPE_TYPES.get(name)
    if entry is None:
        raise ValueError(f"unknown genotype type {name!r}; known: {sorted(GENOTYPE_TYPES)}. "
                         "Register yours with snnlab.search.register_genotype_type(cls).")
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = GENOTYPE_TYPES[name] = getattr(importlib.import_module(module), attr)
    return entry


def genotype_type_name(genotype: Any) -> Optional[str]:
    """The registered type name of ``genotype`` (None for a dict or an unregistered type)."""
    cls = type(genotype)
    for name, entry in GENOTYPE_TYPES.items():
        if entry is cls or (isinstance(entry, str) and entry.endswith(":" + cls.__name__)
                            and _genotype_class(name) is cls):
            return name
    return None


def genotype_from_dict(type_name: Optional[str], data: Any) -> Any:
    """The genotype object of a stored dict; the dict itself when ``type_name`` is None."""
    if type_name is None:
        return data
    return _genotype_class(type_name).from_dict(data)


def _genotype_dict(genotype: Any) -> Any:
    to_dict = getattr(genotype, "to_dict", None)
    return to_dict() if callable(to_dict) else genotype


# ----------------------------------------------------------------------------- the result

@dataclass(frozen=True, eq=False)
class SearchResult:
    """What a search found and what it cost; one type for every method (module docstring).

    Two results are equal when their :meth:`to_dict` forms are: a result equals
    itself read back from its file.

    The training-free search's fields of earlier releases stay readable as
    properties: :attr:`ranking` (candidates best first), :attr:`best`,
    :attr:`best_score`, :attr:`candidates`, :attr:`draws`, :attr:`seconds`,
    :attr:`settings` and :meth:`best_genotype`.
    """

    method: str
    genotype: Any
    history: tuple = ()
    cost: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"SearchResult.method must be a method name; got {self.method!r}.")
        object.__setattr__(self, "history", tuple(dict(row) for row in self.history))

    # ---- JSON ----------------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON-ready dict of the file (genotype as its dict, type name beside it)."""
        return strict_json({
            "format": RESULT_FORMAT, "method": self.method,
            "genotype_type": genotype_type_name(self.genotype),
            "genotype": _genotype_dict(self.genotype),
            "history": list(self.history), "cost": dict(self.cost),
            "metrics": dict(self.metrics), "config": dict(self.config),
            "provenance": dict(self.provenance), "extras": dict(self.extras)})

    @classmethod
    def from_dict(cls, data: dict) -> "SearchResult":
        """Inverse of :meth:`to_dict`; also reads the result formats of earlier releases."""
        if not isinstance(data, dict):
            raise ValueError(f"a search result is a JSON object; got {type(data).__name__}.")
        if data.get("format") == RESULT_FORMAT:
            return cls._from_current(data)
        if data.get("method") in _LEGACY_TRAINFREE or "ranking" in data:
            return cls._from_trainfree(data)
        if data.get("method") in _LEGACY_GENOTYPES and "genotype" in data:
            return cls._from_differentiable(data)
        known = ("format", "method", "genotype")
        raise ValueError(f"not a SearchResult: missing field(s) "
                         f"{[k for k in known if k not in data]}; expected a file written by "
                         "SearchResult.save or `python -m snnlab search ... --out`.")

    @classmethod
    def _from_current(cls, data: dict) -> "SearchResult":
        missing = [k for k in ("method", "genotype") if k not in data]
        if missing:
            raise ValueError(f"not a SearchResult: missing field(s) {missing}.")
        history = data.get("history") or []
        if data["method"] == "snasnet":                 # a null score was -inf (singular K)
            history = [_score_back(row) for row in history]
        return cls(method=data["method"],
                   genotype=genotype_from_dict(data.get("genotype_type"), data["genotype"]),
                   history=tuple(history), cost=dict(data.get("cost") or {}),
                   metrics=dict(data.get("metrics") or {}), config=dict(data.get("config") or {}),
                   provenance=dict(data.get("provenance") or {}),
                   extras=dict(data.get("extras") or {}))

    @classmethod
    def _from_trainfree(cls, data: dict) -> "SearchResult":
        """The training-free result of earlier releases (``ranking``, ``best``, ...)."""
        needed = ("method", "ranking", "best", "seconds", "candidates", "draws", "settings")
        missing = [k for k in needed if k not in data]
        if missing:
            raise ValueError(f"not a SearchResult: missing field(s) {missing}.")
        if not data["ranking"] or not data["best"]:   # nothing scored: no cell to retrain
            raise ValueError("not a usable SearchResult: its ranking is empty (no cell was "
                             "scored); rerun the search with --candidates >= 1.")
        history = sorted((_score_back(r) for r in data["ranking"]), key=lambda r: r["order"])
        genotype = data["best"]
        if isinstance(genotype, dict) and "matrix" in genotype:
            genotype = genotype_from_dict("CellGenotype", genotype)
        return trainfree_result(data["method"], genotype, history, data["seconds"],
                                data["draws"], dict(data["settings"]),
                                dict(data.get("provenance") or {}))

    @classmethod
    def _from_differentiable(cls, data: dict) -> "SearchResult":
        """A result dict of ``run_darts_search``/``madarts_search``/``run_spikedhs_search``."""
        method = data["method"]
        provenance = {k: data[k] for k in ("profile", "dataset", "device", "snnlab_version",
                                           "torch_version") if k in data}
        provenance.update(data.get("provenance") or {})
        extras = {k: data[k] for k in ("dgs_trajectory",) if k in data}
        genotype = genotype_from_dict(_LEGACY_GENOTYPES[method], data["genotype"])
        return differentiable_result(method, genotype, data.get("history") or [],
                                     data.get("seconds"), dict(data.get("config") or {}),
                                     provenance, extras)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write :meth:`to_dict` as strict JSON, atomically (:func:`write_json_atomic`)."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "SearchResult":
        """Read a result file of this release or an earlier one."""
        data = read_json(path, "search result", "Write one with `python -m snnlab search "
                                                "METHOD ... --out FILE`.")
        if not isinstance(data, dict):
            raise ValueError(f"{str(path)!r} does not hold a SearchResult object.")
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchResult):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None                                   # mutable dict fields: not hashable

    def replace(self, **changes: Any) -> "SearchResult":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_legacy_dict(self) -> dict:
        """The result dict that ``run_darts_search`` and ``run_spikedhs_search`` returned
        before this type existed (``method``, ``profile``, ``dataset``, ``config``,
        ``genotype`` as a dict, ``history``, ``seconds``, ``device``, versions, and
        SpikeDHS's ``dgs_trajectory``); kept for one release, for the chapters."""
        prov = self.provenance
        out = {"method": self.method, "profile": prov.get("profile"),
               "dataset": prov.get("dataset"), "config": dict(self.config),
               "genotype": _genotype_dict(self.genotype), "history": list(self.history)}
        out.update({k: v for k, v in self.extras.items()})
        out.update(seconds=self.cost.get("seconds"), device=prov.get("device"),
                   snnlab_version=prov.get("snnlab_version"),
                   torch_version=prov.get("torch_version"))
        return out

    # ---- the training-free search's view -------------------------------------
    @property
    def ranking(self) -> tuple:
        """Scored candidates best first (ties: the earlier one); rows with a ``score``."""
        rows = [r for r in self.history if "score" in r]
        return tuple(sorted(rows, key=lambda r: (-_score_key(r["score"]), r.get("order", 0))))

    @property
    def best(self) -> Any:
        """The found genotype as a dict."""
        return _genotype_dict(self.genotype)

    @property
    def best_score(self) -> Optional[float]:
        return self.metrics.get("score")

    @property
    def candidates(self) -> int:
        """Distinct genotypes scored (training-free) or epochs run (differentiable)."""
        return int(self.cost.get("candidates", self.cost.get("epochs", len(self.history))))

    @property
    def draws(self) -> int:
        return int(self.cost.get("draws", self.candidates))

    @property
    def seconds(self) -> Optional[float]:
        return self.cost.get("seconds")

    @property
    def settings(self) -> dict:
        """The search settings (same as ``config``; the training-free name)."""
        return self.config

    def best_genotype(self, genotype_cls: Optional[type] = None) -> Any:
        """The found genotype; ``genotype_cls.from_dict(best)`` when a class is given."""
        if genotype_cls is not None:
            return genotype_cls.from_dict(self.best)
        if isinstance(self.genotype, dict) and "matrix" in self.genotype:
            return genotype_from_dict("CellGenotype", self.genotype)
        return self.genotype


def _score_back(row: dict) -> dict:
    """A stored candidate row with a null score read back as -inf (a singular kernel)."""
    row = dict(row)
    if "score" in row and row["score"] is None:
        row["score"] = -math.inf
    return row


def _score_key(score: Optional[float]) -> float:
    return -math.inf if score is None or score != score else score


# ----------------------------------------------------------------------------- builders

def trainfree_result(strategy: str, genotype: Any, history: list, seconds: float, draws: int,
                     settings: dict, provenance: Optional[dict] = None,
                     nos_key: str = "spikes") -> SearchResult:
    """The :class:`SearchResult` of a training-free search (``method="snasnet"``).

    Args:
        strategy: ``"random"`` or ``"evolution"`` (stored as ``config["strategy"]``).
        genotype: the best-scoring genotype.
        history: one row per distinct candidate in scoring order: ``genotype`` (dict),
            ``score``, ``order``, ``seconds`` (and ``spikes`` where measured).
        seconds, draws: wall time and genotypes drawn (repeats included).
        settings: score and search settings (seed, space, kernel, batches, ...).
    """
    rows = [dict(r) for r in history]
    best = max(rows, key=lambda r: (_score_key(r["score"]), -r["order"])) if rows else {}
    batches, batch_size = settings.get("batches"), settings.get("batch_size")
    images = (len(rows) * batches * batch_size) if batches and batch_size else None
    return SearchResult(
        method="snasnet", genotype=genotype, history=tuple(rows),
        cost={"seconds": seconds, "candidates": len(rows), "draws": draws,
              "images_seen": images},
        metrics={"score": best.get("score"), "spikes": best.get(nos_key), "accuracy": None,
                 "energy_uj": None},
        config={"strategy": strategy, **settings}, provenance=dict(provenance or {}))


def differentiable_result(method: str, genotype: Any, history: list, seconds: Optional[float],
                          config: dict, provenance: Optional[dict] = None,
                          extras: Optional[dict] = None) -> SearchResult:
    """The :class:`SearchResult` of a differentiable search from its per-epoch history.

    ``metrics`` come from the last epoch: ``accuracy`` is its val accuracy
    (``val_acc``), ``spikes`` its NoS per image on the val half (``val_nos`` for
    DARTS/MA-DARTS, ``nos`` for SpikeDHS). ``cost["images_seen"]`` sums the rows'
    ``images`` (weight and architecture steps) when the rows carry them.
    """
    rows = [dict(r) for r in history]
    last = rows[-1] if rows else {}
    seen = [r.get("images") for r in rows]
    images = sum(seen) if rows and all(isinstance(v, int) for v in seen) else None
    return SearchResult(
        method=method, genotype=genotype, history=tuple(rows),
        cost={"seconds": seconds, "epochs": len(rows), "images_seen": images},
        metrics={"accuracy": last.get("val_acc"), "spikes": last.get("val_nos", last.get("nos")),
                 "energy_uj": last.get("val_energy_uj"), "score": None},
        config=dict(config), provenance=dict(provenance or {}), extras=dict(extras or {}))


def run_as_dict(run: Callable[..., SearchResult], config: Any, profile: Any, bundle,
                out: Union[str, os.PathLike, None] = None, **kwargs: Any) -> dict:
    """``run(config, bundle, **kwargs)`` stamped with the profile's name, saved to ``out``
    (if given) and returned as :meth:`SearchResult.to_legacy_dict`: what the
    ``run_*_search(profile, bundle, ...)`` functions of earlier releases returned."""
    result = run(config, bundle, **kwargs)
    result = result.replace(provenance={**result.provenance, "profile": profile.name})
    if out is not None:
        result.save(out)
    return result.to_legacy_dict()


def given(**values: Any) -> dict:
    """The keyword arguments that are not None (optional overrides such as epochs, seed)."""
    return {k: v for k, v in values.items() if v is not None}
