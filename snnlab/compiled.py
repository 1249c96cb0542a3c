"""An optional ``torch.compile`` path for the LIF neuron.

The eager :class:`~snnlab.neurons.LIF` runs a hand-written fused autograd
function: a Python loop over time with a few tensor ops per step. ``torch.compile``
can do the fusing itself if the step is written as plain tensor code. Here the
spike keeps its exact Heaviside forward and gets the surrogate gradient through
the straight-through form

.. math::

    s = H(x) + \\big(p(x) - \\operatorname{sg}[p(x)]\\big),

where ``p`` is the surrogate's smooth primitive and ``sg`` stops the gradient:
the bracket is exactly 0 in the forward pass (a number minus itself), and its
derivative is ``p'(x)``, the surrogate derivative. Inductor then fuses each time
step (charge, fire, reset) into one loop over the neurons, in forward and backward.

Use it when a C/C++ compiler (CPU) or Triton (GPU) is available::

    model = snnlab.compiled.compile_lifs(model)     # every LIF -> CompiledLIF, same state

Spikes equal the eager LIF's exactly and gradients to float rounding
(``tests/test_compiled.py``). Only the plain call ``lif(x_seq)`` is compiled;
``record=True``, ``v0`` and ``step`` run the eager code. The first call for each
input shape compiles (tens of seconds on a small CPU), so it pays off only for
long runs; ``benchmarks/train_step.py`` measures it.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch import nn

from .neurons import LIF, state_dtype
from .surrogates import Surrogate

__all__ = ["CompiledLIF", "compile_lifs", "lif_sequence"]


def _spike_straight_through(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """``H(x)`` (strict ``x > 0``) forward, ``surrogate.derivative(x)`` backward."""
    smooth = surrogate.primitive(x)
    return (x > 0).to(x.dtype) + (smooth - smooth.detach())


def lif_sequence(x_seq: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor,
                 surrogate: Surrogate, hard_reset: bool, detach_reset: bool) -> torch.Tensor:
    """Multi-step LIF in plain tensor code (what ``torch.compile`` traces).

    Args:
        x_seq: input current ``[T, B, ...]`` (already scaled when ``decay_input``).
        decay, threshold: tensors broadcastable to one step ``[B, ...]``.
    Returns:
        spikes ``[T, B, ...]``; the membrane starts at 0 (module doc of snnlab.neurons).
    """
    v = torch.zeros_like(x_seq[0])
    spikes = []
    for x_t in x_seq.unbind(0):
        h = decay * v + x_t                                          # charge
        s = _spike_straight_through(h - threshold, surrogate)        # fire
        r = s.detach() if detach_reset else s
        v = h * (1 - r) if hard_reset else h - threshold * r         # reset
        spikes.append(s)
    return torch.stack(spikes)


@functools.lru_cache(maxsize=None)
def _compiled_kernel():
    """``torch.compile(lif_sequence)``, built on first use (importing stays cheap)."""
    return torch.compile(lif_sequence, dynamic=True)


class CompiledLIF(LIF):
    """A :class:`~snnlab.neurons.LIF` whose plain forward runs through ``torch.compile``.

    Same constructor, parameters and buffers as ``LIF``; ``forward(x_seq)`` returns the
    same spikes ``[T, B, ...]``. Calls with ``record=True`` or ``v0`` use the eager path.
    """

    def forward(self, x_seq: torch.Tensor, record: bool = False,
                v0: Optional[torch.Tensor] = None):
        if record or v0 is not None:
            return super().forward(x_seq, record=record, v0=v0)
        if not isinstance(x_seq, torch.Tensor) or x_seq.dim() < 2 or not x_seq.is_floating_point():
            return super().forward(x_seq)                             # eager raises the clear error
        in_dtype = x_seq.dtype
        x_seq = x_seq.to(state_dtype(in_dtype))
        decay = self._broadcast(self.decay, x_seq[0])
        threshold = self._broadcast(self.threshold, x_seq[0])
        drive = (1 - decay) * x_seq if self.decay_input else x_seq
        spikes = _compiled_kernel()(drive, decay, threshold, self.surrogate,
                                    self.reset == "hard", self.detach_reset)
        return spikes.to(in_dtype)

    @classmethod
    def from_lif(cls, lif: LIF) -> "CompiledLIF":
        """A CompiledLIF with ``lif``'s settings and a copy of its state (tau, threshold)."""
        if not isinstance(lif, LIF):
            raise TypeError(f"lif must be a snnlab.neurons.LIF; got {type(lif).__name__}.")
        learn_tau = hasattr(lif, "tau_param")
        tau = 2.0 if learn_tau else float(lif.tau.reshape(-1)[0])    # placeholder, state follows
        out = cls(tau=tau if math.isfinite(tau) else math.inf, threshold=1.0, reset=lif.reset,
                  surrogate=lif.surrogate, detach_reset=lif.detach_reset,
                  decay_input=lif.decay_input, learn_tau=learn_tau,
                  learn_threshold=isinstance(lif.threshold, nn.Parameter), channels=lif.channels)
        out.load_state_dict(lif.state_dict())
        return out.to(lif.threshold.device)


def compile_lifs(model: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`LIF` inside ``model`` by a :class:`CompiledLIF`
    with the same state; returns ``model`` (a bare LIF comes back converted)."""
    if type(model) is LIF:
        return CompiledLIF.from_lif(model)
    for name, child in model.named_children():
        if type(child) is LIF:
            setattr(model, name, CompiledLIF.from_lif(child))
        else:
            compile_lifs(child)
    return model
