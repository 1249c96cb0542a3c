"""Differentiable-gradient-search style tuning of the Dspike sharpness ``b`` per layer (DGS).

SpikeDHS (Che et al., NeurIPS 2022) trains with the Dspike surrogate (Li et al.,
NeurIPS 2021), whose sharpness ``b`` changes only the *backward* pass:
the spikes, and so the loss, are the same for every ``b``. DGS picks ``b`` per
layer by asking which candidate ``b + delta`` gives the weight update that
lowers the loss most, then moves ``b`` to the winner::

    for every probed layer k and candidate delta:
        g  = dL/dW_k on a training batch, with layer k's surrogate at b_k + delta
        l  = L(W with W_k <- W_k - lr * g) on a held-out batch       (one-step look-ahead)
    after P probe batches:  b_k <- clamp(b_k + argmin_delta sum(l), b_min, b_max)

**The official scheme** (``Huawei-BIC/SpikeDHS`` ``train.py`` l. 185-249 and
``models/snndarts_search/SNN.py``, class ``SNN_2d_Super``) keeps five weight copies
of the searched layer, one per candidate ``b`` (``delta = -0.4`` first). On ONE
training batch it steps the copies *one after another*: an SGD step on copy ``i``
with its own ``b``, then the copies' currents are mixed with a softmax over 5 logits
``alpha_b``, one Adam step is taken on ``alpha_b`` on that *same* batch, and
``softmax(alpha_b)`` is added to the score, before copy ``i + 1`` is stepped. The
Adam optimizer of ``alpha_b`` is created once (``train.py`` l. 100), so its moments
persist across batches and rounds. The score is therefore a cumulative softmax
proxy of the look-ahead loss, evaluated on the training batch itself, and it is
**order-dependent**: at the first combine step only copy 0 differs from the
unstepped weights, and its step lowers the loss on that same batch, so the
candidate stepped first gets the first and largest lead: with five identical
candidates the one stepped first still wins, and since that is ``delta = -0.4``,
the scheme tends to push ``b`` down whatever the surrogate does. State-dict copies are
made on every probe batch, the layer is reached with ``exec``/``eval`` strings, and
only the stem is searched.

**What we compute instead.** An exact one-step look-ahead, which the official
code approximates with its order-dependent softmax proxy; it differs from the
official criterion in two further ways, both deliberate: each probe is scored on
a batch of the *other* half (the architecture half, as every architecture step
here), not on the training batch it was stepped on; and the probe step is a plain
``W_k - lr * g`` (no momentum, weight decay or gradient clipping), while the real
search step is SGD with momentum 0.9, weight decay 3e-4 and clipping at 5
(:mod:`snnlab.spikedhs_search`), so the look-ahead scores a simpler step than the
one training takes. Since ``b`` never changes the forward pass,

1. one forward and one backward of the whole network give ``dL/d(out_j)`` for the
   output of every stage ``j`` (surrogates at their current ``b``);
2. ``dL/dW_k`` with stage ``k`` at ``b_k + delta`` needs only stage ``k`` again: run
   it from its (detached) inputs with the new surrogate and back-propagate
   ``dL/d(out_k)`` through it. Stages after ``k`` keep their ``b``, so this is the
   full-network gradient, with no approximation (``tests/test_dgs.py`` checks it
   against a full backward);
3. the look-ahead loss runs only stages ``k ..`` on the held-out batch, starting
   from the cached outputs of the unchanged stages before ``k``; the step is made
   in place on stage ``k``'s weights and undone from a copy of *that stage only*.

The cost per probe batch is about one forward-backward per candidate (summed over
stages) plus partial forwards, with no copy of the network and no optimizer state.
Batch-norm running statistics touched by the probes are restored afterwards.
Every stage is probed (the official code probes the stem only); the winner is the
candidate with the lowest summed look-ahead loss (the official one has the largest
cumulative ``softmax(alpha_b)``), ties going to the smallest ``|delta|``. No
candidate is favoured by its position: all are scored from the same weights.

A network takes part by subclassing :class:`StagedNetwork`: a stem-to-head chain of
stages whose outputs are kept in a ``history`` list, so that any stage can be rerun
from the outputs of the earlier ones.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .neurons import LIF
from .surrogates import Dspike

__all__ = ["StagedNetwork", "stage_lifs", "set_stage_b", "get_stage_b", "preserved_buffers",
           "lookahead_losses", "choose_deltas", "DGSState", "DEFAULT_DELTAS", "DEFAULT_B_RANGE"]

# Official N_diffb = 2 with step 0.2 (train.py): five candidates b + {-0.4, ..., +0.4}.
DEFAULT_DELTAS = (-0.4, -0.2, 0.0, 0.2, 0.4)
# Official clamp(b, 1, 6) after each DGS round (train.py, function clamp).
DEFAULT_B_RANGE = (1.0, 6.0)

History = List[Tuple[torch.Tensor, ...]]


class StagedNetwork(nn.Module):
    """A spiking network run as a chain of stages, then a head (the DGS/temporal protocol).

    ``history[0] = (x_seq,)`` is the encoded input ``[T, B, C, H, W]``; stage ``k``
    appends ``history[k + 1]``, a tuple of tensors computed from ``history[:k + 1]``;
    the head maps the full history to logits ``[B, classes]``. Subclasses define
    :meth:`encode`, :meth:`stage_modules`, :meth:`run_stage` and :meth:`run_head`;
    ``forward`` chains them. A stage is the unit that shares one surrogate ``b``
    and one time constant (the stem, or one layer of cells).
    """

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` (or a sequence) -> input sequence ``[T, B, C, H, W]``."""
        raise NotImplementedError

    def stage_modules(self) -> List[nn.Module]:
        """The module holding each stage's weights and neurons, in order."""
        raise NotImplementedError

    def run_stage(self, k: int, history: History) -> Tuple[torch.Tensor, ...]:
        """Output of stage ``k`` from ``history[:k + 1]``."""
        raise NotImplementedError

    def run_head(self, history: History) -> torch.Tensor:
        """Logits ``[B, classes]`` from the full history."""
        raise NotImplementedError

    def arch_parameters(self) -> List[nn.Parameter]:
        """Architecture parameters (never stepped by DGS probes); none by default."""
        return []

    def run(self, x_seq: torch.Tensor, start: int = 0,
            history: Optional[History] = None) -> Tuple[torch.Tensor, History]:
        """Run stages ``start ..`` and the head, reusing ``history[:start + 1]``.

        Returns ``(logits [B, classes], history)``; with ``start=0`` ``history`` may be None.
        """
        history = [(x_seq,)] if history is None else list(history[:start + 1])
        for k in range(start, len(self.stage_modules())):
            history.append(self.run_stage(k, history))
        return self.run_head(history), history

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(self.encode(x))[0]

    def stage_weights(self, k: int) -> List[nn.Parameter]:
        """Trainable parameters of stage ``k`` that are not architecture parameters."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.stage_modules()[k].parameters()
                if p.requires_grad and id(p) not in arch]


def stage_lifs(model: StagedNetwork, k: int) -> List[LIF]:
    """Every LIF module of stage ``k``."""
    return [m for m in model.stage_modules()[k].modules() if isinstance(m, LIF)]


def _check_stage(model: StagedNetwork, k: int) -> None:
    n = len(model.stage_modules())
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n:
        raise ValueError(f"stage index must be an int in [0, {n}); got {k!r}.")


def set_stage_b(model: StagedNetwork, k: int, b: float) -> None:
    """Give every LIF of stage ``k`` the surrogate ``Dspike(b)`` (forward unchanged)."""
    _check_stage(model, k)
    if not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0):
        raise ValueError(f"Dspike sharpness b must be a finite number > 0; got {b!r}.")
    surrogate = Dspike(b=float(b))
    for lif in stage_lifs(model, k):
        lif.surrogate = surrogate


def get_stage_b(model: StagedNetwork) -> List[Optional[float]]:
    """Per stage, the common Dspike ``b`` of its LIFs (None if mixed, absent or not Dspike)."""
    out = []
    for k in range(len(model.stage_modules())):
        found = {lif.surrogate.b if isinstance(lif.surrogate, Dspike) else None
                 for lif in stage_lifs(model, k)}
        out.append(found.pop() if len(found) == 1 else None)
    return out


@contextlib.contextmanager
def preserved_buffers(model: nn.Module) -> Iterator[None]:
    """Restore every buffer (batch-norm running statistics, ...) on exit."""
    saved = [(buf, buf.detach().clone()) for buf in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


def _flat(history: History, stages: Sequence[int]) -> List[torch.Tensor]:
    return [t for k in stages for t in history[k + 1]]


def lookahead_losses(model: StagedNetwork, train_batch: Tuple[torch.Tensor, torch.Tensor],
                     eval_batch: Tuple[torch.Tensor, torch.Tensor], b: Sequence[float],
                     deltas: Sequence[float] = DEFAULT_DELTAS, lr: float = 0.1,
                     stages: Optional[Sequence[int]] = None,
                     loss_fn: Callable = F.cross_entropy) -> torch.Tensor:
    """One-step look-ahead loss of every (stage, candidate ``b``) pair, computed exactly.

    Args:
        model: a :class:`StagedNetwork` (left in its current mode; weights, buffers and
            surrogates are as before on return).
        train_batch: ``(x [B, C, H, W], y [B])`` for the probe gradients.
        eval_batch: ``(x, y)`` on which the stepped weights are scored (may be the same).
        b: current sharpness per stage (``len(b) == number of stages``).
        deltas: candidate offsets; stage ``k`` tries ``b[k] + delta`` (must stay > 0).
        lr: size of the probe's SGD step, ``W_k - lr * g`` (the current weight lr); a
            plain step, without the momentum, weight decay and clipping of the search's
            real weight step.
        stages: stages to probe (default all).
        loss_fn: ``loss_fn(logits, y)`` -> scalar.
    Returns:
        ``[len(stages), len(deltas)]`` float64 look-ahead losses (CPU).
    """
    n = len(model.stage_modules())
    stages = list(range(n)) if stages is None else [int(k) for k in stages]
    for k in stages:
        _check_stage(model, k)
    b = [float(v) for v in b]
    if len(b) != n:
        raise ValueError(f"b must give one sharpness per stage ({n}); got {len(b)} values.")
    if any(bk + d <= 0 for bk in (b[k] for k in stages) for d in deltas):
        raise ValueError(f"every candidate b + delta must be > 0; b={b}, deltas={tuple(deltas)}. "
                         "Raise the lower end of the b range or use smaller deltas.")
    if not lr > 0:
        raise ValueError(f"lr must be > 0; got {lr!r}.")
    losses = torch.zeros(len(stages), len(deltas), dtype=torch.float64)
    (x_tr, y_tr), (x_ev, y_ev) = train_batch, eval_batch
    with preserved_buffers(model):
        # 1. one forward + one backward: dL/d(output of every stage), surrogates at b
        for k in range(n):
            set_stage_b(model, k, b[k])
        logits, hist = model.run(model.encode(x_tr))
        outs = _flat(hist, range(n))
        grads = torch.autograd.grad(loss_fn(logits, y_tr), outs, allow_unused=True)
        grad_of, i = [], 0
        for k in range(n):
            m = len(hist[k + 1])
            grad_of.append([torch.zeros_like(t) if g is None else g
                            for t, g in zip(hist[k + 1], grads[i:i + m])])
            i += m
        hist = [tuple(t.detach() for t in h) for h in hist]
        # 2. the held-out batch, for the look-ahead losses (no gradients needed)
        with torch.no_grad():
            _, hist_ev = model.run(model.encode(x_ev))
        for row, k in enumerate(stages):
            params = model.stage_weights(k)
            if not params:
                continue
            saved = [p.detach().clone() for p in params]    # this stage only
            for col, delta in enumerate(deltas):
                # 3. dL/dW_k with stage k at b_k + delta: rerun stage k, back-propagate
                #    the cached dL/d(out_k) through it (later stages keep their b)
                set_stage_b(model, k, b[k] + delta)
                out = model.run_stage(k, hist)
                g = torch.autograd.grad(out, params, grad_outputs=grad_of[k], allow_unused=True)
                g = _global_gradient(g)
                set_stage_b(model, k, b[k])
                with torch.no_grad():
                    for p, gp in zip(params, g):
                        if gp is not None:
                            p.sub_(lr * gp)
                    logits_ev, _ = model.run(hist_ev[0][0], start=k, history=hist_ev)
                    losses[row, col] = float(loss_fn(logits_ev, y_ev))
                    for p, value in zip(params, saved):
                        p.copy_(value)
    return losses


def _global_gradient(grads: Sequence[Optional[torch.Tensor]]) -> List[Optional[torch.Tensor]]:
    """Under torchrun, the probe gradient of the global batch: each rank's shard gradient
    averaged over the ranks (equal shards of a mean loss); unchanged in one process."""
    grads = list(grads)
    distributed.average_tensors([g for g in grads if g is not None])
    return grads


def choose_deltas(losses: torch.Tensor, deltas: Sequence[float]) -> List[float]:
    """The winning offset per row of ``losses`` ``[stages, K]``: the lowest loss, ties to the
    smallest ``|delta|`` (so a stage whose probes cannot tell the candidates apart keeps ``b``)."""
    order = sorted(range(len(deltas)), key=lambda c: (abs(deltas[c]), deltas[c]))
    out = []
    for row in losses.tolist():
        best = min(order, key=lambda c: row[c])       # min keeps the first minimum in `order`
        out.append(float(deltas[best]))
    return out


@dataclass
class DGSState:
    """Per-stage sharpness ``b``, the probe accumulators and the trajectory of ``b``.

    Use: ``state.probe(model, train_batch, eval_batch, lr)`` on a few batches, then
    ``state.finish(model)`` moves every probed stage's ``b`` to its winner, clamps it to
    ``b_range``, applies it to the model and appends a row to ``state.trajectory``.
    ``to_dict``/``from_dict`` make it JSON-able for checkpoints and results.
    """

    b: List[float]
    deltas: Tuple[float, ...] = DEFAULT_DELTAS
    b_range: Tuple[float, float] = DEFAULT_B_RANGE
    trajectory: List[dict] = field(default_factory=list)
    _sums: Optional[torch.Tensor] = None
    _batches: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.b_range
        if not 0 < lo <= hi:
            raise ValueError(f"b_range must be (low, high) with 0 < low <= high; "
                             f"got {self.b_range}.")
        if 0.0 not in self.deltas:
            raise ValueError(f"deltas must contain 0 (keeping b must be a candidate); "
                             f"got {tuple(self.deltas)}.")
        if any(not lo <= v <= hi for v in self.b):
            raise ValueError(f"initial b {self.b} must lie in b_range {self.b_range}.")
        self.b = [float(v) for v in self.b]
        self.deltas = tuple(float(d) for d in self.deltas)

    def apply(self, model: StagedNetwork) -> None:
        """Set every stage's surrogate to ``Dspike(b[k])``."""
        for k, bk in enumerate(self.b):
            set_stage_b(model, k, bk)

    def probe(self, model: StagedNetwork, train_batch, eval_batch, lr: float) -> torch.Tensor:
        """Add one probe batch's look-ahead losses ``[stages, K]`` (also returned)."""
        losses = lookahead_losses(model, train_batch, eval_batch, self.b, self.deltas, lr)
        self._sums = losses if self._sums is None else self._sums + losses
        self._batches += 1
        return losses

    def finish(self, model: StagedNetwork, epoch: Optional[int] = None) -> dict:
        """Move each ``b`` by its winning delta, clamp, apply; log and return the round."""
        if self._sums is None:
            raise RuntimeError("DGSState.finish() before any probe(); call probe() on at least "
                               "one batch first.")
        lo, hi = self.b_range
        winners = choose_deltas(self._sums, self.deltas)
        # rounded: b moves on a grid of the deltas, so 2.8 must not print as 2.8000000000000003
        self.b = [round(min(hi, max(lo, bk + d)), 9) for bk, d in zip(self.b, winners)]
        self.apply(model)
        row = {"epoch": epoch, "b": list(self.b), "deltas": winners, "batches": self._batches,
               "mean_losses": (self._sums / self._batches).tolist()}
        self.trajectory.append(row)
        self._sums, self._batches = None, 0
        return row

    def to_dict(self) -> dict:
        return {"b": list(self.b), "deltas": list(self.deltas), "b_range": list(self.b_range),
                "trajectory": list(self.trajectory)}

    @classmethod
    def from_dict(cls, data: dict) -> "DGSState":
        return cls(b=list(data["b"]), deltas=tuple(data["deltas"]),
                   b_range=tuple(data["b_range"]), trajectory=list(data["trajectory"]))
