"""Leaky integrate-and-fire (LIF) neurons over time-first tensors ``[T, B, ...]``.

One time step has three parts (charge, fire, reset), the same three that
SpikingJelly's neurons name:

.. math::

    h[t] &= \\lambda \\, v[t-1] + c \\, x[t]          && \\text{charge, } \\lambda = 1 - 1/\\tau \\\\
    s[t] &= H(h[t] - \\theta)                          && \\text{fire (strict >)} \\\\
    v[t] &= h[t] (1 - s[t]) \\;\\text{(hard)} \\quad\\text{or}\\quad h[t] - \\theta s[t] \\;\\text{(subtract)}
                                                       && \\text{reset}

with ``v[-1] = 0``, ``c = 1`` or ``c = 1 - lambda`` when ``decay_input=True``
(SpikingJelly's default, used by SNASNet). ``h`` is the membrane *before* reset:
it is what the traces return and what you plot against the threshold.

Paper settings: SNASNet uses ``tau=4/3`` (keeps 25 %), ``threshold=1``, hard
detached reset, ``ATan(alpha=2)``, ``decay_input=True``; SpikeDHS uses
``decay = 0.2`` (``tau=1.25``), ``threshold=0.5``, hard reset, ``Dspike(b)``.

Relation to ``snntorch.Leaky(beta)``: with ``tau = 1/(1-beta)``,
``reset="hard"`` equals snnTorch's ``reset_mechanism="zero"`` (spikes exactly;
membrane and gradients to float rounding; tested). snnTorch's ``"subtract"`` subtracts the
threshold *after* the decay (``U[t] = beta U[t-1] + x[t] - theta S[t-1]``) while
ours subtracts it before (``h[t] = beta (h[t-1] - theta s[t-1]) + x[t]``); the
two agree for ``beta = 1``.

**Precision.** The membrane is always integrated in float32 (or float64 when the
input is float64), also under ``torch.autocast``: in bfloat16 (8 bits of mantissa)
``v = lambda v + x`` rounds enough to flip spikes near the threshold and to bias the
gradients of learnable time constants and thresholds by several percent. Spikes
are 0 or 1, exact in any dtype, so they come back in the input's dtype; the
membrane traces (``record=True``, ``v_final``) stay in the state's dtype.

Firing is strict (``h > theta``, as snnTorch and the official SpikeDHS);
SpikingJelly's ``heaviside`` (used by the official SNASNet) fires on ``h >= theta``.
The two differ only when a real-valued membrane lands exactly on the threshold.

No state survives between calls: every ``forward`` starts from ``v = 0``.
The multi-step forward is a fused autograd function (a few tensor ops per step,
two or three per step in backward); :func:`lif_step` is the plain single-step reference
and a test shows both agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from torch import nn

from .surrogates import Surrogate, get_surrogate, spike

__all__ = ["LIF", "LIFTrace", "lif_step", "state_dtype", "RESET_MODES"]

RESET_MODES = ("hard", "subtract")


def _check_reset(reset: str) -> str:
    if reset not in RESET_MODES:
        raise ValueError(f"unknown reset {reset!r}; expected one of {RESET_MODES} "
                         "('hard' sets v to 0 after a spike, 'subtract' removes the threshold).")
    return reset


def lif_step(x_t: torch.Tensor, v: torch.Tensor, decay, threshold,
             surrogate: Union[str, Surrogate] = "atan", reset: str = "hard",
             detach_reset: bool = True, decay_input: bool = False):
    """One LIF time step (the reference implementation, plain autograd).

    Args:
        x_t: input current ``[B, ...]``.
        v: membrane after the previous step's reset, same shape (zeros at t = 0).
        decay: ``lambda = 1 - 1/tau``, a float or a tensor broadcastable to ``x_t``.
        threshold: ``theta``, a float or a broadcastable tensor.
    Returns:
        ``(s_t, h_t, v_next)``: spikes, membrane before reset, membrane after reset.
    """
    _check_reset(reset)
    drive = (1 - decay) * x_t if decay_input else x_t
    h = decay * v + drive
    s = spike(h - threshold, surrogate)
    r = s.detach() if detach_reset else s
    v_next = h * (1 - r) if reset == "hard" else h - threshold * r
    return s, h, v_next


class _LIFSequence(torch.autograd.Function):
    """Fused multi-step LIF: forward loop without autograd, hand-written backward.

    Backward recursion (``g[t] = dL/dh[t]``, ``sg[t]`` the surrogate derivative):
        g[t] = dL/dh_out[t] + dL/ds[t] * sg[t] + dv/dh[t] * dL/dv[t],
        dL/dv[t] = lambda * g[t+1]   (or the gradient of the returned final state)
    with ``dv/dh = 1 - s`` (hard, detached) or ``1`` (subtract, detached), minus
    ``h * sg`` or ``theta * sg`` when the reset is not detached. The first two
    terms are computed for all steps at once; the time loop only adds the third.
    On a CPU a fresh large tensor costs more than the arithmetic on it (page
    faults), so both passes write into preallocated tensors (``out=``, in place):
    the forward allocates the two outputs, the backward the returned gradient.
    """

    @staticmethod
    def forward(ctx, x_seq, v0, decay, threshold, surrogate, reset, detach_reset, record):
        ctx.set_materialize_grads(False)             # no zero tensors for unused outputs
        h_seq, spikes = torch.empty_like(x_seq), torch.empty_like(x_seq)
        v = v0.clone()
        reset_by = None if reset == "hard" else threshold
        for t in range(x_seq.shape[0]):
            h = torch.addcmul(x_seq[t], decay, v, out=h_seq[t])      # charge: x + lambda v
            s = torch.gt(h, threshold, out=spikes[t])                 # fire: h > theta
            # reset: v = h - h s (hard) or h - theta s (subtract)
            torch.addcmul(h, h if reset_by is None else reset_by, s, value=-1, out=v)
        ctx.save_for_backward(h_seq, spikes, decay, threshold, v0)
        ctx.surrogate, ctx.reset, ctx.detach_reset = surrogate, reset, detach_reset
        ctx.h_seq_is_private = not record        # nobody else sees h_seq: backward may reuse it
        ctx.backward_done = False
        return spikes, h_seq, v

    @staticmethod
    def backward(ctx, grad_spikes, grad_h, grad_v_final):
        if ctx.backward_done:
            raise RuntimeError("snnlab's fused LIF backward ran twice on one graph (retain_graph=True); "
                               "run the forward again instead, or use lif.step for such experiments.")
        h_seq, spikes, decay, threshold, v0 = ctx.saved_tensors
        hard = ctx.reset == "hard"
        # g becomes sg, then dL/dh (the input's gradient). In the common case (detached
        # reset, fixed tau and threshold, no trace returned) it overwrites h_seq in place,
        # so backward allocates no [T, B, ...] tensor at all.
        reuse = ctx.h_seq_is_private and ctx.detach_reset and not any(ctx.needs_input_grad[2:4])
        g = ctx.surrogate.derivative_(h_seq.sub_(threshold) if reuse else h_seq - threshold)
        ctx.backward_done = reuse
        sg = g.clone() if (ctx.needs_input_grad[3] or not ctx.detach_reset) else None
        g.mul_(grad_spikes) if grad_spikes is not None else g.zero_()
        if grad_h is not None:
            g.add_(grad_h)

        # dv[t]/dh[t]: 1 - s (hard) or 1 (subtract) with a detached reset, plus the
        # surrogate terms otherwise (rare: allocated only then)
        if ctx.detach_reset:
            dv_dh = None
        elif hard:
            dv_dh = torch.rsub(spikes, 1).addcmul_(h_seq, sg, value=-1)
        else:
            dv_dh = 1 - threshold * sg

        def dv_dh_times(t: int, grad_v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
            """``dv[t]/dh[t] * grad_v`` into ``out`` (a one-step buffer)."""
            if dv_dh is not None:
                return torch.mul(dv_dh[t], grad_v, out=out)
            out.copy_(grad_v)
            return out.addcmul_(out, spikes[t], value=-1) if hard else out

        buf = torch.empty_like(g[0])
        if grad_v_final is not None:
            g[-1].add_(dv_dh_times(-1, grad_v_final, buf))
        for t in range(h_seq.shape[0] - 2, -1, -1):                 # + lambda dv/dh g[t+1]
            if dv_dh is None and hard:       # lambda (1 - s[t]) g[t+1] as (-1) (lambda (s[t] - 1)) g[t+1]
                # buf = lambda (s - 1) is exact (-lambda or 0), so the sum rounds as
                # g[t] + lambda (1 - s) g[t+1] would. Every operand is [B, ...]: an op whose
                # output broadcasts two scalars (addcmul(decay, s, decay)) is 4x slower on a CPU.
                torch.sub(spikes[t], 1, out=buf).mul_(decay)
                g[t].addcmul_(buf, g[t + 1], value=-1)
            elif dv_dh is None:              # subtract, detached: dv/dh = 1
                g[t].addcmul_(g[t + 1], decay)
            else:
                g[t].addcmul_(dv_dh_times(t, g[t + 1], buf), decay)

        grad_v0 = (decay * g[0]) if ctx.needs_input_grad[1] else None
        grad_decay = grad_threshold = None
        if ctx.needs_input_grad[2]:
            v_seq = h_seq * (1 - spikes) if hard else h_seq - threshold * spikes
            v_prev = torch.cat([v0.unsqueeze(0).expand_as(v_seq[:1]), v_seq[:-1]])
            grad_decay = _sum_to(g * v_prev, decay)
        if ctx.needs_input_grad[3]:
            g_v = torch.zeros_like(g)                                 # dL/dv[t]
            g_v[:-1] = decay * g[1:]
            if grad_v_final is not None:
                g_v[-1] = grad_v_final
            if hard:
                dv_dtheta = torch.zeros_like(h_seq) if ctx.detach_reset else h_seq * sg
            else:
                dv_dtheta = -spikes if ctx.detach_reset else threshold * sg - spikes
            direct = 0 if grad_spikes is None else -grad_spikes * sg
            grad_threshold = _sum_to(direct + g_v * dv_dtheta, threshold)
        return g, grad_v0, grad_decay, grad_threshold, None, None, None, None


def state_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a membrane is integrated in: float32 for half/bfloat16 input, else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _sum_to(grad_seq: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reduce a ``[T, B, ...]`` gradient to the shape of a broadcast parameter."""
    return grad_seq.sum(0).sum_to_size(like.shape) if like.dim() else grad_seq.sum()


@dataclass
class LIFTrace:
    """What ``LIF.forward(..., record=True)`` returns beside the spikes.

    * ``v``: membrane before reset ``[T, B, ...]`` (compare it with the threshold).
    * ``v_final``: membrane after the last step's reset ``[B, ...]``: pass it as ``v0``
      to continue the sequence (gradients flow through it).
    """

    v: torch.Tensor
    v_final: torch.Tensor


class LIF(nn.Module):
    """Leaky integrate-and-fire neuron layer over ``[T, B, ...]`` (equations: module doc).

    Args:
        tau: membrane time constant in steps (> 1 when learnable; ``inf`` gives IF);
            ``decay = 1 - 1/tau``. snnTorch's ``beta`` is ``decay``.
        threshold: firing threshold ``theta``.
        reset: ``"hard"`` (to zero) or ``"subtract"``.
        surrogate: name (``"atan"``, ``"sigmoid"``, ``"triangle"``, ``"fast_sigmoid"``,
            ``"dspike"``) or a :class:`~snnlab.surrogates.Surrogate` object.
        detach_reset: stop gradients through the reset (SNASNet, SpikingJelly, snnTorch).
        decay_input: scale the input by ``1 - decay`` (SpikingJelly's ``decay_input``).
        learn_tau, learn_threshold: make them ``nn.Parameter`` s (PLIF-style; tau is
            stored as ``log(tau - 1)`` so it stays above 1).
        channels: ``None`` for one value per layer, or ``C`` for one per channel of
            dimension 2 of ``[T, B, C, ...]`` (heterogeneous time constants).

    Non-finite input is rejected: a NaN current never crosses the threshold (0 spikes)
    while its gradient is NaN, and one ``inf`` step leaves a hard-reset membrane NaN
    (``inf * 0``) for the rest of the sequence. Both keep the final membrane
    non-finite, so ``forward`` checks that one ``[B, ...]`` tensor (1/T of the input;
    no per-step cost) and raises ValueError naming the first bad time step and sample.
    ``check_finite`` (class attribute, or per instance): None (default) checks on
    every device but CUDA, where a check would stall the GPU pipeline once per
    layer (there :func:`snnlab.train.fit` and ``evaluate`` check each batch and name the
    layer of a NaN loss); True or False force it. ``step`` is never checked (a per-step
    check would cost more than the step).

    Example:
        >>> lif = LIF(tau=2.0, threshold=1.0)
        >>> spikes = lif(torch.ones(4, 1, 3) * 0.6)      # [T=4, B=1, N=3]
        >>> spikes[:, 0, 0].tolist()
        [0.0, 0.0, 1.0, 0.0]
    """

    check_finite: Optional[bool] = None

    def __init__(self, tau: float = 2.0, threshold: float = 1.0, reset: str = "hard",
                 surrogate: Union[str, Surrogate] = "atan", detach_reset: bool = True,
                 decay_input: bool = False, learn_tau: bool = False,
                 learn_threshold: bool = False, channels: Optional[int] = None):
        super().__init__()
        if not tau >= 1:
            raise ValueError(f"tau must be >= 1 time step (decay = 1 - 1/tau in [0, 1]); got {tau}.")
        _check_threshold(threshold)
        if learn_tau and not 1 < tau < math.inf:
            raise ValueError(f"a learnable tau must be finite and > 1; got {tau}.")
        if channels is not None and (not isinstance(channels, int) or channels < 1):
            raise ValueError(f"channels must be None or a positive int; got {channels!r}.")
        self.reset = _check_reset(reset)
        self.surrogate = get_surrogate(surrogate)
        self.detach_reset, self.decay_input = detach_reset, decay_input
        self.channels = channels
        shape = (channels,) if channels else ()
        if learn_tau:   # tau = 1 + exp(w)  <=>  decay = sigmoid(w)
            self.tau_param = nn.Parameter(torch.full(shape, math.log(tau - 1)))
        else:
            self.register_buffer("decay_value", torch.full(shape, 1 - 1 / tau))
        threshold_t = torch.full(shape, float(threshold))
        if learn_threshold:
            self.threshold = nn.Parameter(threshold_t)
        else:
            self.register_buffer("threshold", threshold_t)

    @property
    def decay(self) -> torch.Tensor:
        """``lambda = 1 - 1/tau`` (scalar or ``[C]``), read-only."""
        if hasattr(self, "tau_param"):
            return torch.sigmoid(self.tau_param)
        return self.decay_value

    @property
    def tau(self) -> torch.Tensor:
        """Membrane time constant in steps, ``1 / (1 - decay)``."""
        return 1 / (1 - self.decay)

    def _broadcast(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Shape a scalar or per-channel parameter to broadcast over ``x`` ``[B, C, ...]``."""
        p = p.to(state_dtype(x.dtype))
        if self.channels is None:
            return p
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(f"this LIF has channels={self.channels} (dimension 2 of [T, B, C, ...]) "
                             f"but got a step of shape {tuple(x.shape)}.")
        return p.reshape(self.channels, *([1] * (x.dim() - 2)))

    def forward(self, x_seq: torch.Tensor, record: bool = False,
                v0: Optional[torch.Tensor] = None):
        """Run the neuron over time, starting from ``v = 0`` (or ``v0``).

        Args:
            x_seq: input current ``[T, B, ...]``, floating point.
            record: also return a :class:`LIFTrace` (membrane ``[T, B, ...]`` and the
                final state ``[B, ...]``).
            v0: membrane to start from ``[B, ...]``, e.g. ``trace.v_final`` of the
                previous call; a cell with feedback edges runs one step at a time
                this way, and hooks (spike monitors, scores) still see every call.
        Returns:
            spikes ``[T, B, ...]`` in ``x_seq``'s dtype, or ``(spikes, trace)``
            (membranes in :func:`state_dtype`, float32 for half-precision input).
        """
        _check_sequence(x_seq)
        in_dtype = x_seq.dtype
        x_seq = x_seq.to(state_dtype(in_dtype))
        if v0 is None:
            v0 = torch.zeros_like(x_seq[0])
        elif v0.shape != x_seq.shape[1:]:
            raise ValueError(f"v0 must have the shape of one step, {tuple(x_seq.shape[1:])}; "
                             f"got {tuple(v0.shape)}.")
        decay = self._broadcast(self.decay, x_seq[0])
        threshold = self._broadcast(self.threshold, x_seq[0])
        drive = (1 - decay) * x_seq if self.decay_input else x_seq
        spikes, h_seq, v_final = _LIFSequence.apply(drive, v0.to(x_seq.dtype), decay, threshold,
                                                    self.surrogate, self.reset, self.detach_reset,
                                                    record)
        if self._should_check(v_final):
            _check_finite_state(v_final, x_seq)
        spikes = spikes.to(in_dtype)                 # exact: 0 and 1 in any dtype
        return (spikes, LIFTrace(v=h_seq, v_final=v_final)) if record else spikes

    def _should_check(self, v: torch.Tensor) -> bool:
        check = self.check_finite
        return (v.device.type != "cuda") if check is None else bool(check)

    def step(self, x_t: torch.Tensor, v: Optional[torch.Tensor] = None
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One time step with explicit state, for cells with feedback edges.

        Args:
            x_t: input current ``[B, ...]``.
            v: membrane after the previous reset, or ``None`` for zeros.
        Returns:
            ``(s_t, v_next)``, both ``[B, ...]``: spikes in ``x_t``'s dtype, the
            membrane in :func:`state_dtype` (float32 for half-precision input).
        """
        work = state_dtype(x_t.dtype)
        v = torch.zeros_like(x_t, dtype=work) if v is None else v.to(work)
        s, _, v_next = lif_step(x_t.to(work), v, self._broadcast(self.decay, x_t),
                                self._broadcast(self.threshold, x_t), self.surrogate,
                                self.reset, self.detach_reset, self.decay_input)
        return s.to(x_t.dtype), v_next

    def extra_repr(self) -> str:
        learn = [n for n, on in (("tau", hasattr(self, "tau_param")),
                                 ("threshold", isinstance(self.threshold, nn.Parameter))) if on]
        return (f"tau={_fmt(self.tau)}, threshold={_fmt(self.threshold)}, reset={self.reset!r}, "
                f"surrogate={self.surrogate}, detach_reset={self.detach_reset}, "
                f"decay_input={self.decay_input}" + (f", learn={learn}" if learn else ""))


def _fmt(p: torch.Tensor) -> str:
    """A scalar as 4 digits, a per-channel tensor by its size (for repr)."""
    return f"{p.item():.4g}" if p.dim() == 0 else f"[{p.numel()} per channel]"


def _check_sequence(x_seq: torch.Tensor) -> None:
    """Raise a clear error unless ``x_seq`` is a floating ``[T >= 1, B, ...]`` tensor."""
    if not isinstance(x_seq, torch.Tensor):
        raise TypeError(f"x_seq must be a torch.Tensor [T, B, ...]; got {type(x_seq).__name__}.")
    if x_seq.dim() < 2:
        raise ValueError(f"x_seq must be [T, B, ...] (time first); got shape {tuple(x_seq.shape)}. "
                         "For one time step call .step(x_t, v), or pass x.unsqueeze(0).")
    if x_seq.shape[0] < 1:
        raise ValueError("x_seq has T = 0 time steps; T must be >= 1.")
    if not x_seq.is_floating_point():
        raise TypeError(f"x_seq must be floating point (an input current); got {x_seq.dtype}. "
                        "Convert with x_seq.float().")


def _check_threshold(threshold) -> None:
    """A threshold must be a finite number >= 0 (a negative one fires at rest, h = 0 > theta)."""
    try:
        value = float(threshold)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"threshold must be a number (the firing threshold theta); got "
                        f"{threshold!r}. For one per channel pass channels=C and "
                        "learn_threshold=True.") from err
    if isinstance(threshold, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"threshold must be a finite number >= 0; got {threshold}. A negative "
                         "threshold fires at rest every step (h = 0 > theta) and NaN never fires. "
                         "Typical values: 1.0 (SNASNet), 0.5 (SpikeDHS).")


def _check_finite_state(v_final: torch.Tensor, x_seq: torch.Tensor) -> None:
    """Raise if the final membrane ``[B, ...]`` is NaN/inf, naming the input that made it so.

    Cheap when all is well: one sum over one step (finite exactly when every value is,
    unless finite values overflow it; then the exact test decides). The search for the
    culprit in ``x_seq`` ``[T, B, ...]`` runs only on failure.
    """
    if math.isfinite(float(v_final.detach().sum())) or bool(torch.isfinite(v_final).all()):
        return
    bad = ~torch.isfinite(x_seq.detach())
    if bool(bad.any()):
        t, b = (int(i) for i in bad.nonzero()[0][:2])
        raise ValueError(
            f"LIF got a NaN or inf input current (first at time step {t}, sample {b}; "
            f"{int(bad.sum())} values in all). It would keep the membrane NaN for the rest of "
            "the sequence and its gradient NaN. Check the data for NaN/inf pixels (fit and "
            "evaluate name the batch); during training, NaN weights mean the run diverged: "
            "lower the learning rate or set grad_clip.")
    raise ValueError("LIF membrane overflowed to inf/NaN from finite input currents (values "
                     "beyond the float range); scale the input or the weights down.")
