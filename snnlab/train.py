"""Train and evaluate spiking networks: ``fit``, ``evaluate`` and checkpoints.

Training is ordinary backpropagation through time (BPTT): the model unrolls its
``T`` steps inside ``forward``, the loss is the cross-entropy of the time-averaged
logits, and the surrogate gradient of every LIF carries the error through the
spikes (Neftci, Mostafa & Zenke, "Surrogate gradient learning in spiking neural
networks", IEEE Signal Processing Magazine 2019).

``fit`` adds what a long run needs and nothing else:

* a progress bar (``tqdm.auto``) when someone is watching,
* mixed precision on CUDA (bf16 autocast, or fp16 with a ``GradScaler``),
* a cosine learning-rate schedule stepped once per epoch,
* the extras of the DARTS / SpikeDHS retraining recipes, each off by default:
  gradient-norm clipping, cutout, an auxiliary head's loss and a linear
  drop-path ramp (:class:`TrainConfig`),
* checkpoints written atomically (temp file in the same folder, then
  ``os.replace``) after every ``checkpoint_every`` epochs, holding the model,
  optimizer, scheduler, scaler, epoch, history, config and every RNG state, so
  that ``resume=True`` continues a killed run to the same result as a run that
  was never interrupted (bit for bit on CPU; tested),
* checkpoints that carry an integrity hash and a fingerprint of the model and the
  training loader (:mod:`snnlab.checkpoints`): a damaged file, or one of another
  architecture, batch size or dataset, is refused by name instead of resumed,
* a clear error, at once, on a batch with NaN/inf images or labels out of range, and
  on a NaN or infinite loss (naming the first layer that produced it), leaving the
  last good checkpoint,
* data parallelism under ``torchrun`` (:mod:`snnlab.distributed`): give ``fit`` a model
  from ``prepare_model`` and a loader from ``shard_loader``; the epoch's loss and
  accuracy cover the global batch, and rank 0 alone writes checkpoints.

Example::

    config = TrainConfig(epochs=5, lr=3e-3, optimizer="adam")
    history = fit(model, train_loader, val_loader, config, checkpoint="run.pt")
    metrics = evaluate(model, test_loader)      # accuracy, loss, NoS, energy
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import (loader_fingerprint, model_fingerprint, read_checkpoint,
                          save_checkpoint)
# the search loops import these three under their old private names from here
from .checkpoints import loader_generator as _loader_generator
from .checkpoints import rng_state as _rng_state
from .checkpoints import set_rng_state as _set_rng_state
from .guards import check_batch, check_labels, first_nonfinite_module
from .data import cutout
from .distributed import is_main_process, sum_over_processes, unwrap
from .profiles import Profile, seed_everything, training_recipe

__all__ = ["TrainConfig", "OPTIMIZERS", "SCHEDULES", "default_device", "fit", "evaluate",
           "resolve_device", "save_checkpoint", "load_checkpoint", "read_checkpoint",
           "snnlab_version", "PROGRESS_ENV"]

log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "constant")
PROGRESS_ENV = "SNNLAB_PROGRESS"   # "0" / "1" overrides progress=None (the book sets 0)
_CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (``dataclasses.asdict`` goes into checkpoints).

    Attributes:
        epochs: passes over the training loader.
        optimizer: "sgd" (with ``momentum``), "adam" or "adamw".
        lr: initial learning rate.
        lr_min: final learning rate of the cosine schedule (``eta_min``).
        schedule: "cosine" (``CosineAnnealingLR`` over ``epochs``, stepped per
            epoch, as SNASNet and SpikeDHS do) or "constant".
        momentum: SGD momentum; 0.9 as in SNASNet, SpikeDHS and DARTS.
        weight_decay: L2 penalty (decoupled for "adamw").
        label_smoothing: passed to ``F.cross_entropy`` during training only.
        grad_clip: clip the global gradient norm to this value; None for no
            clipping (SpikeDHS and DARTS clip to 5).
        cutout: zero one square of this side per training image
            (:func:`snnlab.data.cutout`; DARTS and SpikeDHS retrain with 16); 0: off.
        aux_weight: weight of the auxiliary head's loss (DARTS, SpikeDHS: 0.4). When
            > 0 the model must return ``(logits, aux_logits)`` in training mode (e.g.
            ``DiscreteNetwork(..., auxiliary=True)``) and the loss is
            ``ce(logits) + aux_weight * ce(aux_logits)``; 0: the model returns logits.
        drop_path_max: when set, ``model.drop_path_prob = drop_path_max * e / epochs``
            before epoch ``e`` (0-based), the linear ramp of quark0 ``train.py`` L100;
            None leaves the model's ``drop_path_prob`` alone.
        amp: mixed precision on CUDA: bf16 autocast where supported, else fp16
            autocast with a ``GradScaler``. Ignored on CPU (full float32).
        channels_last: move the model and the 4-d batches to ``channels_last``
            (faster convolutions on recent GPUs).
        seed: ``seed_everything(seed)`` at the start of a fresh run.
        checkpoint_every: write the checkpoint every this many epochs (and after
            the last one) when ``fit`` gets a ``checkpoint`` path.
    """

    epochs: int = 10
    optimizer: str = "sgd"
    lr: float = 0.1
    lr_min: float = 0.0
    schedule: str = "cosine"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    grad_clip: Optional[float] = None
    cutout: int = 0
    aux_weight: float = 0.0
    drop_path_max: Optional[float] = None
    amp: bool = True
    channels_last: bool = False
    seed: int = 0
    checkpoint_every: int = 1

    def __post_init__(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an int >= 1; got {value!r}.")
        positive_int("epochs")
        positive_int("checkpoint_every")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be one of {OPTIMIZERS}; "
                             f"got {self.optimizer!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule must be one of {SCHEDULES}; "
                             f"got {self.schedule!r}.")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a finite number > 0; got {self.lr!r}.")
        if not 0 <= self.lr_min <= self.lr:
            raise ValueError(f"TrainConfig.lr_min must be in [0, lr={self.lr}]; "
                             f"got {self.lr_min!r}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 1); "
                             f"got {self.label_smoothing!r}.")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None (no clipping); "
                             f"got {self.grad_clip!r}.")
        if isinstance(self.cutout, bool) or not isinstance(self.cutout, int) or self.cutout < 0:
            raise ValueError(f"TrainConfig.cutout must be an int >= 0 (0: off); "
                             f"got {self.cutout!r}.")
        if not (isinstance(self.aux_weight, (int, float)) and self.aux_weight >= 0):
            raise ValueError(f"TrainConfig.aux_weight must be a number >= 0; "
                             f"got {self.aux_weight!r}.")
        if self.drop_path_max is not None and not 0 <= self.drop_path_max < 1:
            raise ValueError(f"TrainConfig.drop_path_max must be in [0, 1) or None; "
                             f"got {self.drop_path_max!r}.")

    @classmethod
    def from_profile(cls, profile: Profile, recipe: str = "baseline",
                     **overrides: Any) -> "TrainConfig":
        """The training settings of a :class:`~snnlab.profiles.Profile`, plus ``overrides``.

        Args:
            profile: the run's profile.
            recipe: ``"baseline"`` (the hand-designed network's recipe), or the
                retraining recipe of a found network: ``"darts"``, ``"madarts"`` or
                ``"spikedhs"`` (:func:`snnlab.profiles.training_recipe`; its
                ``batch_size`` sizes the loaders and is not part of the config).
            overrides: TrainConfig fields to change.

        Example:
            >>> from snnlab.profiles import get_profile
            >>> TrainConfig.from_profile(get_profile("tiny"), epochs=1).epochs
            1
            >>> TrainConfig.from_profile(get_profile("paper"), "darts").aux_weight
            0.4
        """
        if not isinstance(profile, Profile):
            raise TypeError(f"profile must be a snnlab.profiles.Profile; "
                            f"got {type(profile).__name__}. Use get_profile(name).")
        fields = {f.name for f in dataclasses.fields(cls)}
        shared = {k: v for k, v in training_recipe(profile, recipe).items() if k in fields}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"unknown TrainConfig field(s) {unknown}; valid: {sorted(fields)}.")
        return cls(**{**shared, **overrides})


def default_device() -> torch.device:
    """CUDA if available, else CPU: the one place where snnlab picks a device."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def snnlab_version() -> str:
    """The installed snnlab version, or "unknown" when run from a plain checkout."""
    import snnlab
    version = getattr(snnlab, "__version__", None)
    if version:
        return str(version)
    try:
        from importlib.metadata import PackageNotFoundError, version as dist_version
        return dist_version("snnlab")
    except PackageNotFoundError:
        return "unknown"


def resolve_device(device: Union[str, torch.device, None] = None) -> torch.device:
    """``device`` as a ``torch.device``; None gives :func:`default_device`.

    Raises ValueError for a malformed name and RuntimeError for CUDA on a machine without it.
    """
    if device is None:
        return default_device()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be like 'cpu', 'cuda' or 'cuda:0'; got {device!r}.") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(device)!r} was requested but CUDA is not available "
                           "here; pass device='cpu' or device=None (auto).")
    return device


# ----------------------------------------------------------------------------- helpers

def _want_progress(progress: Optional[bool]) -> bool:
    """``progress=None``: $SNNLAB_PROGRESS if set, else on for a terminal or Jupyter kernel."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get(PROGRESS_ENV, "").strip()
    if env:
        return env.lower() not in ("0", "false", "no", "off")
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython
            if get_ipython() is not None and hasattr(get_ipython(), "kernel"):
                return True
        except ImportError:
            pass
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _amp_context(device: torch.device, amp: bool):
    """(autocast context, GradScaler or None) for this device; full precision off CUDA."""
    if not (amp and device.type == "cuda"):
        return nullcontext(), None
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


def _input_dtype(model: nn.Module) -> Optional[torch.dtype]:
    """The dtype of the model's first floating parameter (images are cast to it, so a
    ``model.double()`` trains on float32 data), or None."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool,
               dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    x = x.to(device, dtype=dtype if x.is_floating_point() else None, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs, eta_min=config.lr_min)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


# ----------------------------------------------------------------------------- checkpoints

def load_checkpoint(path: Union[str, os.PathLike], config: Optional[TrainConfig] = None,
                    fingerprint: Optional[dict] = None) -> dict:
    """Read a checkpoint written by :func:`fit` onto the CPU (``map_location="cpu"``).

    Its integrity hash is always checked (:mod:`snnlab.checkpoints`): a damaged file
    raises RuntimeError instead of resuming from wrong weights.

    Args:
        path: the checkpoint file.
        config: when given, its fields must equal the stored config (except
            ``checkpoint_every``), else ValueError naming each differing field.
        fingerprint: when given, the run's model and loader facts
            (:func:`snnlab.checkpoints.model_fingerprint` and ``loader_fingerprint``)
            must equal the stored ones, else ValueError naming each difference.
    Returns:
        The state dict: ``model``, ``optimizer``, ``scheduler``, ``scaler``, ``epoch``,
        ``history``, ``config``, ``rng``, ``snnlab_version``, ``torch_version``,
        ``fingerprint``, ``integrity``.
    """
    return read_checkpoint(path, _CHECKPOINT_FORMAT, "an snnlab training checkpoint",
                           None if config is None else dataclasses.asdict(config), "TrainConfig",
                           kind="", fresh="run", fingerprint=fingerprint)


# ----------------------------------------------------------------------------- evaluate

def evaluate(model: nn.Module, loader: Iterable, device: Union[str, torch.device, None] = None,
             count_spikes: bool = True, amp: bool = False) -> dict:
    """Loss and accuracy of ``model`` on ``loader``, and its spikes and energy per image.

    The model runs in eval mode without gradients (its previous mode is restored).

    Args:
        model: maps images ``[B, C, H, W]`` to logits ``[B, classes]``.
        loader: yields ``(x [B, C, H, W], y [B])``.
        device: where to run (None: :func:`default_device`); the model is moved there.
        count_spikes: attach a :class:`snnlab.monitor.SpikeMonitor` for NoS, SOPs, energy.
        amp: autocast on CUDA as in :func:`fit` (ignored on CPU).
    Returns:
        dict with ``loss`` (mean cross-entropy), ``accuracy`` in [0, 1], ``images``, and with
        ``count_spikes``: ``nos_per_image``, ``sops_per_image``, ``macs_per_image``,
        ``energy_per_image_uJ`` (definitions in :mod:`snnlab.monitor`).
    """
    device = resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    dtype = _input_dtype(model)
    autocast, _ = _amp_context(device, amp)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    images = 0
    monitor = None
    if count_spikes:
        from .monitor import SpikeMonitor  # local: monitor is only needed here
        monitor = SpikeMonitor(model)
    try:
        with torch.no_grad():
            for batch, (x, y) in enumerate(loader):
                where = f"evaluate: batch {batch}"
                check_batch(x, y, where)
                x = _to_device(x, device, False, dtype)
                y = y.to(device, non_blocking=True)
                with autocast:
                    logits = model(x)                                    # [B, classes]
                check_labels(y, logits.shape[-1], where)
                loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
                images += y.shape[0]
    finally:
        if monitor is not None:
            monitor.close()
        model.train(was_training)
    if images == 0:
        raise ValueError("loader yielded no batches; evaluate needs at least one (x, y) batch.")
    result = {"loss": loss_sum.item() / images, "accuracy": correct.item() / images,
              "images": images}
    if monitor is not None:
        s = monitor.summary(images=images)
        result.update(nos_per_image=s.nos_per_image, sops_per_image=s.sops_per_image,
                      macs_per_image=s.macs_per_image, energy_per_image_uJ=s.energy_per_image_uJ)
    return result


# ----------------------------------------------------------------------------- fit

def _training_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   config: TrainConfig, where: str = "fit") -> tuple[torch.Tensor, torch.Tensor]:
    """One training forward: ``(logits [B, classes], loss)``.

    With ``config.aux_weight > 0`` the model returns ``(logits, aux_logits)`` and
    ``loss = ce(logits) + aux_weight * ce(aux_logits)`` (quark0 ``train.py``, DARTS A.2.1).
    """
    out = model(x)
    pair = isinstance(out, (tuple, list)) and len(out) == 2
    if config.aux_weight > 0 and not pair:
        raise TypeError(f"TrainConfig.aux_weight={config.aux_weight} needs a model that returns "
                        f"(logits, aux_logits) in training mode; {type(model).__name__} returned "
                        f"{type(out).__name__}. Build it with an auxiliary head (e.g. "
                        "DiscreteNetwork(..., auxiliary=True)) or set aux_weight=0.")
    if config.aux_weight == 0 and pair:
        raise TypeError(f"{type(model).__name__} returned a pair (logits, aux_logits) in training "
                        "mode but TrainConfig.aux_weight is 0; set aux_weight (DARTS: 0.4) or "
                        "build the model without its auxiliary head.")
    logits, aux_logits = out if pair else (out, None)                # [B, classes] each
    check_labels(y, logits.shape[-1], where)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
    if aux_logits is not None:
        loss = loss + config.aux_weight * F.cross_entropy(
            aux_logits.float(), y, label_smoothing=config.label_smoothing)
    return logits, loss


def _train_one_epoch(model, loader, optimizer, scaler, autocast, config, device, epoch, bar):
    """One pass over ``loader``; returns (mean loss, accuracy).

    Raises at once on a batch with NaN/inf images or out-of-range labels (naming epoch
    and batch), and on a non-finite loss (naming the first layer whose output was).
    """
    model.train()
    dtype = _input_dtype(model)
    loss_sum, images = 0.0, 0
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for batch, (x, y) in enumerate(loader):
        where = f"train_loader, epoch {epoch}, batch {batch}"
        check_batch(x, y, where)
        x = _to_device(x, device, config.channels_last, dtype)
        y = y.to(device, non_blocking=True)
        if config.cutout:
            x = cutout(x, config.cutout)          # on the device; centres from torch's CPU RNG
        with autocast:
            logits, loss = _training_loss(model, x, y, config, where)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            lr = optimizer.param_groups[0]["lr"]
            layer = first_nonfinite_module(model, x)
            at = f"; the first layer with a NaN/inf output is {layer!r}" if layer else ""
            raise RuntimeError(
                f"loss is {loss_value} at epoch {epoch}, batch {batch} (lr {lr:.3g}){at}. The "
                "batch itself is finite, so training diverged: lower the learning rate (e.g. "
                f"lr={lr / 10:.3g}) or set grad_clip; the last good checkpoint, if any, is left "
                "as it was.")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
        n = y.shape[0]
        loss_sum += loss_value * n
        correct += (logits.argmax(1) == y).sum()
        images += n
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
    if images == 0:
        raise ValueError("train_loader yielded no batches; fit needs at least one (x, y) batch.")
    # DDP: the epoch's numbers over the global batches, the same on every rank
    loss_sum, n_correct, images = sum_over_processes([loss_sum, correct.item(), images])
    return loss_sum / images, n_correct / images


def _check_finite_weights(model: nn.Module, epoch: int) -> None:
    """Refuse to go on (and to checkpoint) once a parameter holds NaN or inf."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise RuntimeError(f"parameters {bad[:3]} became NaN/inf during epoch {epoch}: training "
                           "diverged. Lower the learning rate or set grad_clip; the last good "
                           "checkpoint, if any, is left as it was.")


def fit(model: nn.Module, train_loader: Iterable, val_loader: Optional[Iterable] = None,
        config: Optional[TrainConfig] = None, device: Union[str, torch.device, None] = None,
        checkpoint: Union[str, os.PathLike, None] = None, resume: bool = False,
        progress: Optional[bool] = None) -> list[dict]:
    """Train ``model`` with BPTT and surrogate gradients; return the per-epoch history.

    Args:
        model: maps images ``[B, C, H, W]`` to logits ``[B, classes]`` (e.g.
            :class:`snnlab.models.SpikingCNN`); moved to ``device`` here.
        train_loader: yields ``(x [B, C, H, W], y [B])``. If it has a ``generator``
            (as :func:`snnlab.data.make_loaders` gives), its state is checkpointed.
        val_loader: evaluated after every epoch (loss and accuracy) when given.
        config: a :class:`TrainConfig` (None: the defaults).
        device: None picks :func:`default_device`.
        checkpoint: file written atomically every ``config.checkpoint_every`` epochs
            and after the last; None writes nothing.
        resume: continue from ``checkpoint`` (which must exist, with the same config,
            model architecture, batch size and dataset: its fingerprint, and an intact
            integrity hash): restores weights, optimizer, scheduler, scaler, history and
            RNG states, so the result equals an uninterrupted run. A finished run returns
            its history.
        progress: show a ``tqdm.auto`` bar. None means: the ``SNNLAB_PROGRESS``
            variable ("0"/"1") if set, else on when stderr is a terminal or in a
            Jupyter kernel. The book sets ``SNNLAB_PROGRESS=0`` so that no bar enters
            the stored notebook outputs that nbval compares.
    Returns:
        One dict per epoch: ``epoch`` (1-based), ``train_loss``, ``train_acc``,
        ``val_loss``, ``val_acc`` (None without ``val_loader``), ``lr`` (used during
        the epoch), ``seconds`` (wall time of the epoch, the only non-reproducible key).
        ``train_loss`` is the optimized loss (with the auxiliary term if any);
        ``train_acc`` is that of the main logits.
    Raises:
        ValueError: a batch with NaN/inf images or labels outside the model's classes
            (names epoch and batch, checked before the batch is used).
        RuntimeError: a NaN/inf loss from a finite batch (names epoch, batch and the
            first layer whose output was NaN/inf); the checkpoint on disk keeps the last
            completed epoch.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}. "
                        "Build one with TrainConfig(...) or TrainConfig.from_profile(profile).")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path of the run to continue>.")
    if config.drop_path_max is not None and not hasattr(model, "drop_path_prob"):
        raise TypeError(f"TrainConfig.drop_path_max={config.drop_path_max} ramps "
                        f"model.drop_path_prob, but {type(model).__name__} has no such attribute; "
                        "use a model with drop-path (e.g. snnlab.darts.DiscreteNetwork) or set "
                        "drop_path_max=None.")
    device = resolve_device(device)
    if not resume:
        seed_everything(config.seed)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(model, config)
    scheduler = _make_scheduler(optimizer, config)
    autocast, scaler = _amp_context(device, config.amp)
    history: list[dict] = []
    start = 0
    # what a resumed run must share with the checkpoint besides the config
    fingerprint = ({**model_fingerprint(unwrap(model)), **loader_fingerprint(train_loader)}
                   if checkpoint is not None else None)
    if resume:
        state = load_checkpoint(checkpoint, config, fingerprint)
        try:
            unwrap(model).load_state_dict(state["model"])        # any world size
        except RuntimeError as err:
            raise ValueError(f"checkpoint {str(checkpoint)!r} holds weights of a different model "
                             f"({err}). Build the same model as the run that wrote it.") from err
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, start = list(state["history"]), int(state["epoch"])
        _set_rng_state(state["rng"], train_loader)
        log.info("resuming %s after epoch %d of %d", checkpoint, start, config.epochs)
    elif checkpoint is not None and Path(checkpoint).exists():
        log.info("fresh run: %s will be overwritten after the first epoch", checkpoint)

    try:
        batches = len(train_loader)  # type: ignore[arg-type]
    except TypeError:
        batches = None
    bar = None
    if _want_progress(progress) and is_main_process() and start < config.epochs:
        from tqdm.auto import tqdm
        total = None if batches is None else batches * (config.epochs - start)
        bar = tqdm(total=total, desc="train", unit="batch", leave=False)
    try:
        for epoch in range(start + 1, config.epochs + 1):
            if hasattr(getattr(train_loader, "sampler", None), "set_epoch"):
                train_loader.sampler.set_epoch(epoch)     # DDP shards: each epoch's shuffle
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            if bar is not None:
                bar.set_description(f"epoch {epoch}/{config.epochs}")
            if config.drop_path_max is not None:   # linear ramp from 0 (quark0 train.py L100)
                model.drop_path_prob = config.drop_path_max * (epoch - 1) / config.epochs
            train_loss, train_acc = _train_one_epoch(
                model, train_loader, optimizer, scaler, autocast, config, device, epoch, bar)
            _check_finite_weights(model, epoch)   # the step after the last loss check
            scheduler.step()
            val_loss = val_acc = None
            if val_loader is not None:
                metrics = evaluate(model, val_loader, device, count_spikes=False, amp=config.amp)
                val_loss, val_acc = metrics["loss"], metrics["accuracy"]
            row = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc,
                       val_loss=val_loss, val_acc=val_acc, lr=lr,
                       seconds=time.perf_counter() - t0)
            history.append(row)
            val_text = "" if val_acc is None else f", val loss {val_loss:.4f} acc {val_acc:.4f}"
            log.info("epoch %d/%d: train loss %.4f acc %.4f%s, lr %.3g, %.1fs", epoch,
                     config.epochs, train_loss, train_acc, val_text, lr, row["seconds"])
            if (checkpoint is not None and is_main_process()        # DDP: rank 0 writes
                    and (epoch % config.checkpoint_every == 0 or epoch == config.epochs)):
                # saved after validation: the RNG states are those the next epoch starts from
                save_checkpoint(checkpoint, dict(
                    format=_CHECKPOINT_FORMAT, snnlab_version=snnlab_version(),
                    torch_version=str(torch.__version__), epoch=epoch, history=history,
                    config=dataclasses.asdict(config), model=unwrap(model).state_dict(),
                    optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                    scaler=scaler.state_dict() if scaler is not None else None,
                    rng=_rng_state(train_loader)), fingerprint=fingerprint)
    finally:
        if bar is not None:
            bar.close()
    return history
