"""Checkpoints that prove their integrity and refuse a run they do not belong to.

:func:`save_checkpoint` writes a state dict with ``torch.save`` atomically
(:func:`snnlab.safeio.atomic_file`) and adds two entries:

* ``"integrity"``: the SHA-256 of the state's content (:func:`state_digest`: every
  tensor's dtype, shape and bytes, every other value's ``repr``, in order). Bytes
  changed on disk make ``torch.load`` fail or change some value, so
  :func:`read_checkpoint` either cannot read the file or finds a different digest;
  both are clear errors, and a damaged checkpoint is never resumed.
* ``"fingerprint"`` (when given): a dict of what must be the same when the run is
  resumed, e.g. :func:`model_fingerprint` (architecture text, parameter names and
  shapes) and :func:`loader_fingerprint` (batch size, batches per epoch, dataset size,
  a hash of its labels). A config dataclass is compared separately (``config``).

:func:`rng_state` / :func:`set_rng_state` save and restore every RNG a training epoch
draws from (Python, NumPy, torch CPU and CUDA, the loader's generator), so a resumed
run continues exactly where it stopped.

A value that is None on either side (a wrapped loader without ``batch_size``, say)
is unknown and not compared. Checkpoints written before the integrity entry existed
are read with a warning.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np
import torch
from torch import nn

from .safeio import atomic_file

__all__ = ["save_checkpoint", "read_checkpoint", "state_digest", "model_fingerprint",
           "loader_fingerprint", "rng_state", "set_rng_state", "loader_generator",
           "RESUME_FREE_FIELDS"]

# Config fields that may change between a run and its resumption without changing
# the result; every other field must match the checkpoint.
RESUME_FREE_FIELDS = ("checkpoint_every",)


# ----------------------------------------------------------------------------- digests

def _feed(h, obj: Any) -> None:
    """Hash ``obj`` into ``h`` by content, walking dicts, lists and tuples in order."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        h.update(f"A{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(b"D%d" % len(obj))
        for key, value in obj.items():
            _feed(h, key)
            _feed(h, value)
    elif isinstance(obj, (list, tuple)):
        h.update((b"L%d" if isinstance(obj, list) else b"U%d") % len(obj))
        for value in obj:
            _feed(h, value)
    else:                                  # str, int, float, bool, None: repr is exact
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def state_digest(state: dict) -> str:
    """SHA-256 (hex) of a checkpoint's content, its ``"integrity"`` entry left out."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "integrity"})
    return h.hexdigest()


def _short_hash(tensor: torch.Tensor) -> str:
    h = hashlib.sha256()
    _feed(h, tensor)
    return h.hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> dict:
    """What identifies a model's architecture: its printed form and its parameter shapes.

    Two networks with the same parameter shapes but different ops (a DARTS cell with
    another genotype, a LIF with another threshold) print differently, so the text
    tells them apart where ``load_state_dict`` would not. Memory addresses in the
    text (``<function f at 0x...>``) are removed, since they change between processes.
    """
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(model))
    shapes = [[name, list(t.shape)] for name, t in model.state_dict().items()]
    return {"model": type(model).__name__, "architecture": text, "state_shapes": shapes}


def loader_fingerprint(loader: Iterable) -> dict:
    """The facts of a training loader that change the result of a resumed run.

    ``batch_size`` (the global batch of a sharded loader, :func:`snnlab.distributed.shard_loader`),
    ``batches_per_epoch``, ``dataset`` (class name), ``dataset_size`` and
    ``labels_sha`` (a hash of the labels, in dataset order: another dataset or split
    changes it). A fact the loader does not expose is None (not compared).
    """
    dataset = getattr(loader, "dataset", None)
    labels = None
    if dataset is not None:
        labels = getattr(dataset, "labels", None)
        tensors = getattr(dataset, "tensors", None)          # a TensorDataset: (x, y)
        if labels is None and isinstance(tensors, tuple) and len(tensors) >= 2:
            labels = tensors[-1]
    try:
        batches = len(loader)                                 # type: ignore[arg-type]
    except TypeError:
        batches = None
    try:
        size = len(dataset) if dataset is not None else None
    except TypeError:
        size = None
    batch_size = getattr(loader, "batch_size", None)
    shards = getattr(getattr(loader, "sampler", None), "num_replicas", None)
    if batch_size is not None and isinstance(shards, int):   # DistributedSampler: the global
        batch_size *= shards                                  # batch, so any world size resumes
    return {
        "batch_size": batch_size,
        "batches_per_epoch": batches,
        "dataset": type(dataset).__name__ if dataset is not None else None,
        "dataset_size": size,
        "labels_sha": (_short_hash(torch.as_tensor(np.asarray(labels)))
                       if labels is not None else None),
    }


# ----------------------------------------------------------------------------- RNG states

def loader_generator(loader: Iterable) -> Optional[torch.Generator]:
    """The generator that orders a DataLoader's batches (and seeds its workers), if any."""
    generator = getattr(loader, "generator", None)
    if generator is None:
        generator = getattr(getattr(loader, "sampler", None), "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def rng_state(loader: Iterable) -> dict:
    """Every RNG a training epoch can draw from, in plain types (loadable with weights_only)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "loader": None,
    }
    generator = loader_generator(loader)
    if generator is not None:
        state["loader"] = generator.get_state()
    return state


def set_rng_state(state: dict, loader: Iterable) -> None:
    """Restore what :func:`rng_state` saved, the training loader's generator included."""
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator = loader_generator(loader)
    if state.get("loader") is not None:
        if generator is None:
            raise ValueError("the checkpoint holds the state of the training loader's generator, "
                             "but this train_loader has none; build it the same way as before "
                             "(e.g. snnlab.data.make_loaders(bundle, batch_size, seed)).")
        generator.set_state(state["loader"])



# ----------------------------------------------------------------------------- write / read

def save_checkpoint(path: Union[str, os.PathLike], state: dict,
                    fingerprint: Optional[dict] = None) -> None:
    """Write ``state`` with ``torch.save`` atomically, with its integrity hash.

    Args:
        path: the checkpoint file (its folder is created).
        state: a dict of tensors and plain values (loadable with ``weights_only=True``).
        fingerprint: what a resumed run must match (see the module doc); stored as
            ``state["fingerprint"]`` and checked by :func:`read_checkpoint`.
    If anything fails (a full disk: an OSError naming the path and the fix), the file at
    ``path``, if any, is unchanged and no temp file is left.
    """
    state = dict(state)
    if fingerprint is not None:
        state["fingerprint"] = fingerprint
    state["integrity"] = {"sha256": state_digest(state)}
    with atomic_file(path, "wb", what="checkpoint") as f:
        torch.save(state, f)


def _differences(saved: dict, now: dict, skip: Iterable[str] = (),
                 none_is_unknown: bool = False) -> list:
    """``"field: checkpoint A vs now B"`` for every field of ``now`` that differs.

    With ``none_is_unknown`` (fingerprints) a None on either side is not compared; in a
    config None is a setting (``grad_clip=None``: no clipping) and is compared.
    """
    diffs = []
    for key in now:
        a, b = saved.get(key), now[key]
        if key in skip or a == b or (none_is_unknown and (a is None or b is None)):
            continue
        if key == "architecture":
            diffs.append(f"architecture: {_first_difference(str(a), str(b))}")
        elif key == "state_shapes":
            diffs.append("parameter names or shapes differ")
        else:
            diffs.append(f"{key}: checkpoint {a!r} vs now {b!r}")
    return diffs


def _first_difference(a: str, b: str) -> str:
    """The first line where two printed models differ."""
    for line_a, line_b in zip(a.splitlines(), b.splitlines()):
        if line_a != line_b:
            return f"checkpoint has {line_a.strip()!r}, now {line_b.strip()!r}"
    return "one printed model is longer than the other"


def read_checkpoint(path: Union[str, os.PathLike], fmt, what: str, config: Optional[dict] = None,
                    config_name: str = "config", kind: str = "", fresh: str = "run",
                    fingerprint: Optional[dict] = None) -> dict:
    """Read a checkpoint onto the CPU; check its integrity, format, config and fingerprint.

    The one reader behind :func:`snnlab.train.load_checkpoint` and the search loops' resume.

    Args:
        path: the checkpoint file.
        fmt: the ``"format"`` value the writer stored; ``what`` names it in the error.
        config: the current config as a dict; every field but ``checkpoint_every``
            must equal the stored one (ValueError naming each difference).
        config_name, kind, fresh: words for the messages ("DartsConfig", "search ",
            "search").
        fingerprint: the current run's fingerprint; every field known on both sides must
            equal the stored one (ValueError naming each difference).
    Returns:
        the stored state dict.
    Raises:
        FileNotFoundError (no file), RuntimeError (unreadable, corrupted: the digest does not
        match, or another format), ValueError (config or fingerprint differ).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind}checkpoint {str(path)!r} does not exist; pass resume=False "
                                f"to start a fresh {fresh}, or the path of an existing checkpoint.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which and how to recover
        raise RuntimeError(f"could not read {kind}checkpoint {str(path)!r} ({type(err).__name__}: "
                           f"{err}). It is damaged or not a checkpoint: delete it and start a "
                           f"fresh {fresh}.") from err
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise RuntimeError(f"{str(path)!r} is not {what} (format {fmt}); it was written by "
                           "something else.")
    _check_integrity(state, path, kind, fresh)
    if config is not None:
        diffs = _differences(state.get("config", {}), config, skip=RESUME_FREE_FIELDS)
        if diffs:
            raise ValueError(f"checkpoint {str(path)!r} was written with a different {config_name} "
                             f"({'; '.join(diffs)}). Resume with the same config, or start a "
                             f"fresh {fresh} (resume=False) or another checkpoint path.")
    if fingerprint is not None and state.get("fingerprint") is not None:
        diffs = _differences(state["fingerprint"], fingerprint, none_is_unknown=True)
        if diffs:
            raise ValueError(f"{kind}checkpoint {str(path)!r} was written for a different model, "
                             f"data or batch size ({'; '.join(diffs)}). Resume with the same "
                             f"model, data and batch size, or start a fresh {fresh} with "
                             "another checkpoint path.")
    return state


def _check_integrity(state: dict, path: Path, kind: str, fresh: str) -> None:
    stored = state.get("integrity")
    if stored is None:
        warnings.warn(f"{kind}checkpoint {str(path)!r} carries no integrity hash (written by an "
                      "older snnlab); it is read unchecked.", stacklevel=3)
        return
    if not isinstance(stored, dict) or stored.get("sha256") != state_digest(state):
        raise RuntimeError(f"{kind}checkpoint {str(path)!r} is corrupted: its content does not "
                           "match the SHA-256 stored when it was written (bytes changed on disk "
                           "or in a copy). Resuming it would continue from wrong weights: delete "
                           f"it and start a fresh {fresh}, or restore a good copy.")
