"""Checks at the doors of training and evaluation: bad batches are named at once.

A NaN pixel or a label out of range does not fail loudly by itself: a NaN current
never reaches the threshold (0 spikes, a plausible accuracy in evaluation) while its
gradient is NaN, and the loss turns NaN only at the end of the epoch, blamed on the
learning rate. :func:`snnlab.train.fit` and :func:`snnlab.train.evaluate` therefore
check each batch before using it (one ``isfinite`` reduction over the input, small
next to the network's work) and, when a loss is NaN/inf although the batch is finite,
find the first layer whose output was (:func:`first_nonfinite_module`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["check_batch", "check_labels", "first_nonfinite_module"]


def check_batch(x: torch.Tensor, y: torch.Tensor, where: str) -> None:
    """Refuse a batch with NaN/inf images or non-integer labels, naming it (``where``).

    One ``isfinite`` reduction per batch, done before the batch moves to the device
    (a CPU batch costs no device synchronisation).
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{where}: a batch must be a pair of tensors (x [B, C, H, W], y [B]); "
                        f"got ({type(x).__name__}, {type(y).__name__}).")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(1)             # [B]
        images = bad.nonzero().flatten().tolist()
        raise ValueError(f"{where}: images {images[:5]} of the batch hold NaN or inf pixels "
                         f"({int((~torch.isfinite(x)).sum())} values). A network cannot learn "
                         "from them and they give 0 spikes: fix or drop those images in the "
                         "dataset (torch.isfinite(x).all() must hold).")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{where}: labels y must be integer class ids (int64); got {y.dtype}. "
                        "Convert them with y.long().")


def check_labels(y: torch.Tensor, num_classes: int, where: str) -> None:
    """Refuse labels outside ``[0, num_classes)`` (cross-entropy would fail obscurely)."""
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"{where}: labels must be class ids in [0, {num_classes}) (the model "
                         f"has {num_classes} outputs); got values from {int(y.min())} to "
                         f"{int(y.max())}. Check the dataset's labels or the model's "
                         "num_classes.")


def first_nonfinite_module(model: nn.Module, x: torch.Tensor) -> Optional[str]:
    """Run ``model(x)`` once more with hooks; the name of the first module whose output
    is NaN/inf, or None. Only called after a non-finite loss, so it costs nothing else."""
    found: list[str] = []

    def hook(name):
        def check(module, inputs, output):
            outs = output if isinstance(output, (tuple, list)) else (output,)
            if not found and any(isinstance(o, torch.Tensor) and o.is_floating_point()
                                 and not bool(torch.isfinite(o).all()) for o in outs):
                found.append(name or type(module).__name__)
        return check

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    except Exception:   # the diagnosis must not hide the original error
        pass
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None
