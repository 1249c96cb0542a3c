"""Searches shared by many worker processes through an Optuna study (optional: ``snnlab[scale]``).

A training-free search scores candidates that do not depend on each other, and a
tabular search's seeds are independent runs: both split across workers with no
scheduler of our own. The work is a fixed, seeded list of items and **trial k
evaluates item k** (Optuna numbers a study's trials 0, 1, 2, ... in the order
workers ask for them, atomically in its storage):

* :func:`run_snasnet_study`: item k is the k-th distinct genotype that
  :func:`snnlab.trainfree.random_search` draws with the same seed, scored with the
  same per-candidate weights seed; the collected :class:`~snnlab.search.SearchResult`
  has the same history (genotypes, scores, order, spikes) as the single-process
  search, only the seconds differ (bit for bit when workers use as many torch
  threads as the single process did: a convolution summed in another order can
  move a membrane by a rounding error, and rarely flip a spike and a score).
* :func:`run_tabular_study`: item k is ``seeds[k]``: one
  :func:`snnlab.bench_search.run_tabular_search` per seed; the traces equal the
  single-process ones.

Each worker runs ``study.optimize`` until the study holds as many trials as items
(a trial started past the end, when two workers ask at once, is pruned at once).
A failed item leaves a ``FAIL`` trial and collecting the study names it.

Storage (``storage=``), all of Optuna's own:

* ``"sqlite:///study.db"`` (default): a file, nothing to start; processes of one
  machine (or a shared disk that honours file locks) share it;
* ``"postgresql://user:pass@host/db"`` (or MySQL): workers on several machines, e.g.
  a Slurm array whose tasks each run ``python -m snnlab search snasnet --storage
  postgresql://... --study-name s1 --workers 1``;
* ``"journal:/shared/path/study.log"``: Optuna's journal file storage, for several
  machines on a shared file system without a database server.

A command started with the same study name and settings *joins* the study; other
settings are refused (the study records them). Each command waits until every item
is done, then collects the whole study. A worker killed mid-trial leaves its trial
``RUNNING``: its item is missing until the study is recreated.

Random (not evolutionary) SNASNet search only: evolution's next candidate depends
on the previous scores, so it cannot be split this way.
"""
from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import random
import time
from types import SimpleNamespace
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np
import torch

__all__ = ["make_storage", "candidate_sequence", "run_study", "collect_study",
           "run_snasnet_study", "run_tabular_study"]

DEFAULT_STORAGE = "sqlite:///snnlab_study.db"
_SQLITE_LOCK_TIMEOUT_S = 60      # concurrent writers wait for SQLite's lock instead of failing


def _optuna():
    try:
        import optuna
    except ImportError as err:
        raise ImportError("the shared searches need Optuna: pip install 'snnlab[scale]' "
                          "(or pip install optuna).") from err
    return optuna


def make_storage(storage: str):
    """An Optuna storage from a URL: ``sqlite:///file.db``, an RDB URL, or ``journal:PATH``."""
    optuna = _optuna()
    if not isinstance(storage, str) or not storage:
        raise ValueError(f"storage must be a URL like 'sqlite:///study.db', "
                         f"'postgresql://user@host/db' or 'journal:/path/study.log'; got {storage!r}.")
    if storage.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend
        return optuna.storages.JournalStorage(JournalFileBackend(storage[len("journal:"):]))
    if "://" not in storage:
        raise ValueError(f"storage {storage!r} is not a URL; for a file write 'sqlite:///{storage}'.")
    engine = {"connect_args": {"timeout": _SQLITE_LOCK_TIMEOUT_S}} if storage.startswith("sqlite") else None
    return optuna.storages.RDBStorage(storage, engine_kwargs=engine)


# ----------------------------------------------------------------------------- the engine

_OPEN_TRIES = 8                 # attempts to create/join a study on a brand-new database


def _create_or_load(storage: str, study_name: str):
    """``create_study(load_if_exists=True)`` that survives a simultaneous first start.

    Two commands that open the same *new* database at the same moment both create its
    tables; one of them then fails (``table studies already exists``, or a duplicate
    row in ``alembic_version``). Nothing is lost: the other command made the tables,
    so trying again after a short wait joins them.
    """
    optuna = _optuna()
    from sqlalchemy.exc import IntegrityError, OperationalError
    for attempt in range(1, _OPEN_TRIES + 1):
        try:
            return optuna.create_study(storage=make_storage(storage), study_name=study_name,
                                       direction="maximize", load_if_exists=True)
        except (OperationalError, IntegrityError):
            if attempt == _OPEN_TRIES:
                raise
            time.sleep(0.1 * attempt + random.random() * 0.1)   # let the other finish


def _open_study(storage: str, study_name: str, settings: dict):
    """Create the study, or join it if its recorded settings are these."""
    study = _create_or_load(storage, study_name)
    recorded = study.user_attrs.get("settings")
    wanted = json.loads(json.dumps(settings))                    # as JSON stores it
    if recorded is None:
        study.set_user_attr("settings", wanted)
    elif recorded != wanted:
        diff = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
        raise ValueError(f"study {study_name!r} in {storage} was started with other settings "
                         f"(differing: {diff}); use another --study-name or the same settings.")
    return study


def _worker(storage: str, study_name: str, items: int, task: Callable, threads: int) -> None:
    """One worker: take trials until the study holds ``items`` of them; trial k runs task(k)."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)         # our process: no per-trial log
    torch.set_num_threads(threads)
    study = optuna.load_study(study_name=study_name, storage=make_storage(storage))

    def objective(trial):
        if trial.number >= items:
            raise optuna.TrialPruned()                           # asked past the end: nothing left
        value, attrs = task(trial.number)
        for key, item in attrs.items():
            trial.set_user_attr(key, item)
        return value

    study.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(items, states=None)])


def run_study(storage: str, study_name: str, items: int, task: Callable, settings: dict,
              workers: int = 2, threads: Optional[int] = None, poll_s: float = 1.0,
              timeout_s: Optional[float] = None) -> List[dict]:
    """Run ``task(k)`` for ``k < items`` on ``workers`` processes sharing one study.

    Args:
        storage, study_name: where the study lives (module docstring); a study of that
            name with the same ``settings`` is joined.
        items: number of work items. task: a picklable callable ``k -> (value, attrs)``,
            ``value`` a float (maximised; ``-inf`` allowed), ``attrs`` a JSON-able dict.
        settings: JSON-able dict of everything that defines the items (refuses a join
            with other settings).
        workers: processes started here (``spawn``); 0 only collects.
        threads: torch threads per worker (default: this process's count / workers).
        poll_s, timeout_s: how often, and how long at most, to wait for items other
            machines are still running.
    Returns:
        :func:`collect_study`'s rows.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an int >= 0; got {workers!r}.")
    _open_study(storage, study_name, settings)
    threads = threads or max(1, torch.get_num_threads() // max(workers, 1))
    context = multiprocessing.get_context("spawn")                  # no forked torch state
    processes = [context.Process(target=_worker, args=(storage, study_name, items, task, threads))
                 for _ in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers} workers exited with an error "
                           f"(exit codes {failed}); the study keeps the trials they finished.")
    start = time.monotonic()
    while True:
        rows = collect_study(storage, study_name, items, allow_running=True)
        if rows is not None:
            return rows
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"study {study_name!r}: items still running elsewhere after "
                               f"{timeout_s} s.")
        time.sleep(poll_s)


def collect_study(storage: str, study_name: str, items: int, allow_running: bool = False
                  ) -> Optional[List[dict]]:
    """The finished items of a study: ``[{"k", "value", **attrs}]`` in item order.

    Returns None when ``allow_running`` and some item is still running or not begun;
    otherwise raises if an item failed or is missing.
    """
    optuna = _optuna()
    study = optuna.load_study(study_name=study_name, storage=make_storage(storage))
    done = {}
    pending, failed = [], []
    for trial in study.get_trials(deepcopy=False):
        if trial.number >= items:
            continue
        if trial.state == optuna.trial.TrialState.COMPLETE:
            done[trial.number] = {"k": trial.number, "value": trial.value, **trial.user_attrs}
        elif trial.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING):
            pending.append(trial.number)
        else:
            failed.append(trial.number)
    missing = [k for k in range(items) if k not in done and k not in pending and k not in failed]
    if failed:
        raise RuntimeError(f"study {study_name!r}: items {failed} failed (see the workers' "
                           "errors); rerun under a new study name.")
    if pending or missing:
        if allow_running:
            return None
        raise RuntimeError(f"study {study_name!r}: items {sorted(pending + missing)} are not "
                           "finished.")
    return [done[k] for k in range(items)]


# ----------------------------------------------------------------------------- SNASNet

def candidate_sequence(space, seed: int, candidates: int) -> tuple:
    """The distinct genotypes :func:`snnlab.trainfree.random_search` scores, in its order.

    Returns ``(genotypes, draws)``: draws from ``random.Random(seed)`` until
    ``candidates`` distinct ones (or the same draw limit as the search).
    """
    from .trainfree import _genotype_key
    rng, found, draws = random.Random(seed), {}, 0
    while len(found) < candidates and draws < 20 * candidates + 1000:    # random_search's limit
        genotype = space.sample(rng)
        draws += 1
        found.setdefault(_genotype_key(genotype), genotype)
    return list(found.values()), draws


class _SNASNetTask:
    """Item k: score the k-th candidate exactly as random_search does (picklable)."""

    def __init__(self, config, batches, image: dict, device: str):
        self.config, self.batches, self.image, self.device = config, batches, image, device
        self._run = None

    def run(self, progress: bool = False):
        from .snasnet import SNASNetSpace
        from .snasnet_search import _builder
        from .trainfree import _Run
        bundle = SimpleNamespace(**self.image)                      # all the builder reads
        c = self.config
        return _Run("random", _builder(c, bundle), self.batches, c.candidates, c.seed, progress,
                    dict(kernel=c.kernel, mode=c.mode, reset_between_batches=c.reset_between_batches,
                         device=torch.device(self.device))), SNASNetSpace(kind=c.space)

    def __call__(self, k: int):
        if self._run is None:
            self._run, space = self.run()
            self.genotypes, _ = candidate_sequence(space, self.config.seed, self.config.candidates)
        if k >= len(self.genotypes):
            raise _optuna().TrialPruned()                           # the space ran out
        entry = self._run.evaluate(self.genotypes[k])
        self._run.close()                                           # restore the global RNGs
        attrs = {key: value for key, value in entry.items() if key not in ("_genotype", "score")}
        attrs["order"] = k
        return entry["score"], attrs


def run_snasnet_study(config, bundle, storage: str = DEFAULT_STORAGE,
                      study_name: Optional[str] = None, workers: int = 2,
                      device: Union[str, torch.device, None] = None, **run_kwargs):
    """:func:`snnlab.snasnet_search.run_snasnet` (random strategy) split across workers.

    Args:
        config: a :class:`~snnlab.snasnet_search.SNASNetSearchConfig` with
            ``strategy="random"``.
        bundle: the data; scoring batches are drawn here, as ``run_snasnet`` does.
        storage, study_name: see the module docstring; the default name is built from
            the config, so the same command on another machine joins.
        workers: processes started by this call. ``**run_kwargs``: see :func:`run_study`.
    Returns:
        the :class:`~snnlab.search.SearchResult` of ``run_snasnet`` (same history
        apart from seconds), ``extras["optuna"]`` naming the study.
    """
    from .snasnet_search import SNASNetSearchConfig
    from .train import resolve_device
    from .trainfree import sample_batches
    if not isinstance(config, SNASNetSearchConfig):
        raise TypeError(f"config must be a SNASNetSearchConfig; got {type(config).__name__}.")
    if config.strategy != "random":
        raise ValueError(f"only strategy='random' splits across workers (evolution's next "
                         f"candidate depends on the last scores); got {config.strategy!r}.")
    start = time.perf_counter()
    device = str(resolve_device(device))
    batches = sample_batches(bundle.train, batches=config.batches,
                             batch_size=config.batch_size, seed=config.seed)
    image = {name: getattr(bundle, name) for name in ("in_channels", "num_classes", "image_size")}
    settings = {"search": "snasnet", **dataclasses.asdict(config), **image,
                "dataset": getattr(bundle, "name", None)}
    study_name = study_name or _default_name(settings)
    task = _SNASNetTask(config, batches, image, device)
    rows = run_study(storage, study_name, config.candidates, task, settings, workers,
                     **run_kwargs)
    return _snasnet_result(task, rows, config, bundle, time.perf_counter() - start,
                           {"storage": storage, "study_name": study_name, "workers": workers})


def _snasnet_result(task: "_SNASNetTask", rows: List[dict], config, bundle, seconds: float,
                    optuna_facts: dict):
    """Fill a single-process run's books with the study's rows and let it write the result."""
    from .trainfree import _genotype_key
    run, space = task.run(progress=False)
    run.close()
    genotypes, draws = candidate_sequence(space, config.seed, config.candidates)
    for row in rows:
        genotype = genotypes[row["k"]]
        entry = {"genotype": row["genotype"], "score": row["value"], "order": row["order"],
                 "seconds": row["seconds"], "spikes": row["spikes"], "_genotype": genotype}
        run.entries[_genotype_key(genotype)] = entry
    run.draws, run.start = draws, time.perf_counter() - seconds
    result = run.result(space, {"candidates": config.candidates})
    return result.replace(config={**result.config, **dataclasses.asdict(config)},
                          provenance={"dataset": getattr(bundle, "name", None), **result.provenance},
                          extras={**result.extras, "optuna": optuna_facts})


def _default_name(settings: dict) -> str:
    import hashlib
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return f"snnlab-{settings['search']}-{digest}"


# ----------------------------------------------------------------------------- tabular

class _TabularTask:
    """Item k: the tabular search with seed ``seeds[k]`` (picklable)."""

    def __init__(self, bench, config, seeds: Sequence[int]):
        self.bench, self.config, self.seeds = bench, config, [int(s) for s in seeds]

    def __call__(self, k: int):
        from .bench_search import run_tabular_search
        trace = run_tabular_search(self.bench, dataclasses.replace(self.config, seed=self.seeds[k]))
        attrs = {"seed": self.seeds[k], "arch_ids": trace.arch_ids.tolist(),
                 "val_acc": trace.val_acc.tolist(), "seconds": trace.seconds.tolist(),
                 "incumbent_ids": trace.incumbent_ids.tolist()}
        best = float(trace.val_acc.max()) if len(trace.val_acc) else -math.inf
        return best, attrs


def run_tabular_study(bench, config, seeds: Sequence[int] = range(20),
                      storage: str = DEFAULT_STORAGE, study_name: Optional[str] = None,
                      workers: int = 2, **run_kwargs) -> list:
    """One :func:`~snnlab.bench_search.run_tabular_search` per seed, split across workers.

    Args:
        bench: a :class:`~snnlab.bench.SpikeNASBench` (sent to each worker).
        config: a :class:`~snnlab.bench_search.TabularSearchConfig` (its seed is replaced).
        seeds: one search each. storage, study_name, workers, ``**run_kwargs``: as
            :func:`run_snasnet_study`.
    Returns:
        the :class:`~snnlab.bench_search.SearchTrace` of each seed, in ``seeds`` order:
        equal to ``[run_tabular_search(bench, replace(config, seed=s)) for s in seeds]``.
    """
    from .bench_search import SearchTrace, TabularSearchConfig
    if not isinstance(config, TabularSearchConfig):
        raise TypeError(f"config must be a TabularSearchConfig; got {type(config).__name__}.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed (e.g. range(20)).")
    settings = {"search": "tabular", **dataclasses.asdict(config), "seeds": seeds,
                "bench": getattr(bench, "fingerprint", None) or getattr(bench, "source", None)}
    study_name = study_name or _default_name(settings)
    rows = run_study(storage, study_name, len(seeds), _TabularTask(bench, config, seeds),
                     settings, workers, **run_kwargs)
    return [SearchTrace(dataclasses.replace(config, seed=row["seed"]),
                        np.asarray(row["arch_ids"], dtype=np.int64),
                        np.asarray(row["val_acc"], dtype=np.float64),
                        np.asarray(row["seconds"], dtype=np.float64),
                        np.asarray(row["incumbent_ids"], dtype=np.int64)) for row in rows]
