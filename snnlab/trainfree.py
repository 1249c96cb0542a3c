"""The SNASNet training-free score: spike-code kernels, their log-determinant, scoring batches.

SNASNet (Kim, Li, Park, Venkatesha & Panda, "Neural Architecture Search for
Spiking Neural Networks", ECCV 2022) ranks untrained cells by how *differently*
the network fires for different images: a network whose spike patterns already
separate the samples of a batch at initialisation tends to train well (the
NASWOT idea of Mellor et al., ICML 2021, moved to spikes).

For every LIF layer ``l`` and every time step, the spikes of a batch give one
binary **code** ``x`` ``[B, N_l]`` (``x = spikes > 0``). From a code:

.. math::

    d_H(i, j) &= x_i (1 - x_j)^T + (1 - x_i) x_j^T        && \\text{Hamming distance} \\\\
    r_i &= \\tfrac{1}{N_l} \\textstyle\\sum_n x_{i n}          && \\text{firing rate of sample } i \\\\
    E_{ij} &= N_l \\, [r_i (1 - r_j) + (1 - r_i) r_j]      && \\text{expected } d_H \\text{ of independent codes} \\\\
    K_{ij} &= N_l - \\alpha \\, d_H(i, j) / (E_{ij} + \\epsilon) && \\text{sparsity-aware kernel (SAHD)}

with ``alpha = 0.5`` and ``eps = 1e-3`` (the official constants). The kernels of
all codes (every LIF module at every step) are summed and divided by the number
of codes, and the score of a batch is ``log |det K|``. The plain NASWOT kernel
``K = N_l - d_H`` is kept for comparison (``kernel="hamming"``).

**The normaliser.** The official repository changed ``E`` three times on
2022-07-19: the January code used the *rate* form ``E_ij = r_i (1 - r_j) + (1 - r_i) r_j``
(no ``N_l``), commit 4891ee1 added ``N_l``, 263e6bc removed it, 5114ff9 (HEAD)
added it back. SpikeNAS-Bench's scorer (``NAS/evaluator.py`` ``snn_score``, also
``NAS/model_snn_withoutcupy.py``) uses the rate form. Both are here:
``kernel="sahd"`` is the count form (HEAD, the paper's formula, snnlab's default)
and ``kernel="sahd_rate"`` the rate form (``sahd_kernel(normaliser="rate")``).
In the rate form ``d_H / E`` is about ``N_l`` times larger, so a layer's kernel
is roughly ``N_l (1 - alpha d_H / E_count)``: the average over codes weighs each
layer by its neuron count and the kernel is far from ``N_l 11^T``.

:func:`scores_per_batch` scores several kernels from one forward pass per batch
(the spike codes and their products are computed once) and returns every
batch's ``log |det K|``.

A candidate's score is the mean over a few batches (official: 2 batches of 256).
The searches that use it live in :mod:`snnlab.snasnet_search`:
:func:`~snnlab.snasnet_search.random_search` is the paper's search (sample, score,
keep the argmax); :func:`~snnlab.snasnet_search.evolutionary_search` (regularized
evolution, Real et al., AAAI 2019) goes beyond the paper with the same budget of
scored candidates. Both stay importable from here.

Reference: official repository ``model_snn.py`` (``find_best_neuroncell``, the
hook ``computing_K_eachtime`` and ``logdet``), HEAD 4980409; our brief
``research/snasnet.md`` section 2. Nothing of its code is copied here.

Example::

    score = snasnet_score(model, [x1, x2])                # x: [B, C, H, W] images
    result = random_search(space, build, [x1, x2], candidates=100, seed=0)
    result.best, result.ranking[:5]
"""
from __future__ import annotations

from typing import Iterable, Sequence, Union

import numpy as np
import torch
from torch import nn

from .neurons import LIF

__all__ = ["KERNELS", "SCORE_MODES", "SAHD_NORMALISERS", "hamming_distance", "sahd_kernel",
           "naswot_kernel", "logdet", "score_kernels", "scores_per_batch", "snasnet_score",
           "sample_batches"]

# "sahd": E in neurons (official HEAD 5114ff9, the paper); "sahd_rate": E as a rate
# (official January code, SpikeNAS-Bench's scorer); "hamming": plain NASWOT.
KERNELS = ("sahd", "sahd_rate", "hamming")
SAHD_NORMALISERS = ("count", "rate")
SCORE_MODES = ("train", "eval")
_EXACT_FLOAT32 = 2 ** 24            # integers below this are exact in float32 sums


# ----------------------------------------------------------------------------- kernels

def _as_codes(codes: torch.Tensor) -> torch.Tensor:
    """Check ``codes`` ``[..., B, N]`` holds only 0 and 1; return it as float32 (exact)."""
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"codes must be a torch.Tensor [..., B, N]; got {type(codes).__name__}.")
    if codes.dim() < 2 or codes.shape[-1] < 1:
        raise ValueError(f"codes must be [..., B, N] with N >= 1 (one binary row per sample); "
                         f"got shape {tuple(codes.shape)}.")
    if codes.dtype != torch.bool and ((codes != 0) & (codes != 1)).any():
        raise ValueError("codes must be binary (0/1 or bool); binarize spikes first, "
                         "e.g. codes = (spikes > 0).")
    return codes.to(torch.float32)


def _counts(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(both, n)``: ``both[..., i, j]`` neurons where samples i and j both fired, and
    ``n[..., i]`` spikes of sample i; float64 (float32 on MPS), exact integers.

    The product runs in float32, exact while ``N < 2**24`` (0/1 inputs, integer sums).
    """
    x = _as_codes(codes)                                            # [..., B, N]
    if x.shape[-1] >= _EXACT_FLOAT32:
        x = x.to(torch.float64)
    both = x @ x.transpose(-1, -2)                                  # [..., B, B]
    n = x.sum(-1)                                                   # [..., B]
    acc = torch.float32 if x.device.type == "mps" else torch.float64
    return both.to(acc), n.to(acc)


def hamming_distance(codes: torch.Tensor) -> torch.Tensor:
    """Pairwise Hamming distances of binary codes.

    ``d_H(i, j) = x_i (1 - x_j)^T + (1 - x_i) x_j^T``: the neurons where exactly one
    of samples ``i`` and ``j`` fired. The official code forms the two products
    (``model_snn.py``, ``K1_0`` and ``K0_1``); we use the identical
    ``n_i + n_j - 2 x_i x_j^T`` (``n_i`` = spikes of sample ``i``), one product.

    Args:
        codes: ``[..., B, N]`` binary (0/1 or bool).
    Returns:
        ``[..., B, B]`` float64 (float32 on MPS), symmetric, zero diagonal.

    Example:
        >>> hamming_distance(torch.tensor([[1, 1, 0], [1, 0, 1]])).tolist()
        [[0.0, 2.0], [2.0, 0.0]]
    """
    both, n = _counts(codes)
    return (n.unsqueeze(-1) + n.unsqueeze(-2)).sub_(both, alpha=2)  # [..., B, B]


def sahd_kernel(codes: torch.Tensor, alpha: float = 0.5, eps: float = 1e-3,
                normaliser: str = "count") -> torch.Tensor:
    """Sparsity-aware Hamming kernel ``K = N - alpha * d_H / (E + eps)`` of one code.

    ``E_ij = N [r_i (1 - r_j) + (1 - r_i) r_j]`` is the Hamming distance expected
    between two independent codes firing at rates ``r_i`` and ``r_j``, so a pair of
    sparse codes is not judged similar merely because both are mostly silent.
    With ``n_i = N r_i`` spikes, ``d_H = n_i + n_j - 2 x_i x_j^T`` and
    ``E = n_i + n_j - 2 n_i n_j / N`` share the term ``n_i + n_j`` (computed once).

    Args:
        codes: ``[..., B, N]`` binary spikes of one layer at one time step.
        alpha: weight of the normalised distance (official: 0.5, ``rescale_factor``).
        eps: keeps the division finite when both codes are all 0 or all 1
            (official: 1e-3).
        normaliser: ``"count"`` (default): ``E`` as above, in neurons (official HEAD,
            commit 5114ff9; the paper). ``"rate"``: ``E / N = r_i (1 - r_j) + (1 - r_i) r_j``,
            without the factor ``N`` (the official January code and SpikeNAS-Bench's
            ``NAS/evaluator.py``); ``eps`` is then added to the rate.
    Returns:
        ``[..., B, B]`` float64, diagonal ``N``.

    Example (two samples, N = 4, one spike each on different neurons: d_H = 2,
    r = 1/4, E = 4 * 2 * 1/4 * 3/4 = 1.5)::

        >>> codes = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0]])
        >>> round(sahd_kernel(codes, eps=0)[0, 1].item(), 4)         # 4 - 0.5 * 2 / 1.5
        3.3333
        >>> sahd_kernel(codes, eps=0, normaliser="rate")[0, 1].item()  # 4 - 0.5 * 2 / 0.375
        1.3333333333333335

    Reference: SNASNet, ``model_snn.py`` ``computing_K_eachtime`` (commit history in
    the module docstring).
    """
    both, n = _counts(codes)
    return _sahd_from_counts(both, n, codes.shape[-1], alpha, eps, normaliser)


def _sahd_from_counts(both: torch.Tensor, n: torch.Tensor, n_neurons: int, alpha: float,
                      eps: float, normaliser: str) -> torch.Tensor:
    """:func:`sahd_kernel` from ``both [..., B, B]`` and ``n [..., B]`` (see :func:`_counts`)."""
    if normaliser not in SAHD_NORMALISERS:
        raise ValueError(f"normaliser must be one of {SAHD_NORMALISERS}; got {normaliser!r}.")
    n_i, n_j = n.unsqueeze(-1), n.unsqueeze(-2)                     # [..., B, 1], [..., 1, B]
    total = n_i + n_j                                               # [..., B, B]
    expected = (n_i * n_j).mul_(-2 / n_neurons).add_(total)        # E (count form)
    if normaliser == "rate":
        expected.div_(n_neurons)                                    # E / N = the rate form
    expected.add_(eps)
    distance = total.sub_(both, alpha=2)                            # d_H (reuses total)
    return distance.div_(expected).mul_(-alpha).add_(n_neurons)    # N - alpha d_H / (E + eps)


def _kernel_from_counts(kernel: str, both: torch.Tensor, n: torch.Tensor, n_neurons: int,
                        alpha: float, eps: float) -> torch.Tensor:
    """One of :data:`KERNELS` from a code's counts (``both [..., B, B]``, ``n [..., B]``)."""
    if kernel == "hamming":
        distance = (n.unsqueeze(-1) + n.unsqueeze(-2)).sub_(both, alpha=2)    # d_H
        return distance.neg_().add_(n_neurons)                             # N - d_H
    normaliser = "rate" if kernel == "sahd_rate" else "count"
    return _sahd_from_counts(both, n, n_neurons, alpha, eps, normaliser)


def naswot_kernel(codes: torch.Tensor) -> torch.Tensor:
    """Plain Hamming kernel ``K = N - d_H`` (NASWOT's ``x x^T + (1-x)(1-x)^T``).

    Args:
        codes: ``[..., B, N]`` binary. Returns ``[..., B, B]`` float64, diagonal ``N``.
    """
    return codes.shape[-1] - hamming_distance(codes)


def logdet(K: Union[torch.Tensor, np.ndarray]) -> float:
    """``log |det K|`` in float64 on the CPU: the score of one batch.

    The sign of the determinant is ignored, as in the official ``logdet`` (which
    keeps only ``numpy.linalg.slogdet``'s second output). A singular kernel (for
    example two samples with identical codes everywhere) gives ``-inf``.

    Args:
        K: ``[B, B]`` finite kernel (tensor or array).
    Returns:
        a Python float, ``-inf`` for a singular ``K``.
    """
    K = torch.as_tensor(K).detach().to("cpu", torch.float64)
    if K.dim() != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 1:
        raise ValueError(f"K must be a square [B, B] matrix; got shape {tuple(K.shape)}.")
    if not torch.isfinite(K).all():
        raise ValueError("K holds NaN or inf; a kernel of binary codes is always finite, "
                         "so check how K was built.")
    return float(torch.linalg.slogdet(K).logabsdet)


# ----------------------------------------------------------------------------- hooks

class _KernelSum:
    """Forward hooks on every LIF: each step's spikes ``[B, ...]`` -> one code -> kernels.

    A call whose output is ``[S, B, ...]`` gives ``S`` codes, one per step, so a
    multi-step LIF over T steps and T single-step calls ``[1, B, ...]`` (cells with
    feedback edges) count alike, as the official hook fires once per LIF per step.
    The counts of a code (its one ``B x B`` product) are shared by all ``kernels``.
    """

    def __init__(self, lifs: Sequence[LIF], kernels: Sequence[str], alpha: float, eps: float):
        self.kernels, self.alpha, self.eps = tuple(kernels), alpha, eps
        self.total: dict = {}                                       # kernel -> [B, B] running sum
        self.codes = 0
        self.handles = [lif.register_forward_hook(self._hook) for lif in lifs]

    def _hook(self, module: nn.Module, args, output) -> None:
        spikes = output[0] if isinstance(output, tuple) else output  # [S, B, ...]
        S, B = spikes.shape[:2]
        codes = (spikes.detach() > 0).reshape(S, B, -1)              # [S, B, N_l]
        n_neurons = codes.shape[-1]
        step = max(1, (1 << 25) // max(1, B * n_neurons))            # bound the memory
        for s in range(0, S, step):
            both, n = _counts(codes[s:s + step])                     # [s, B, B], [s, B]
            for name in self.kernels:
                k = _kernel_from_counts(name, both, n, n_neurons, self.alpha, self.eps).sum(0)
                self.total[name] = k if name not in self.total else self.total[name] + k
        self.codes += S

    def take(self) -> dict:
        """``{kernel: mean kernel [B, B]}`` over the codes seen since the last call
        (official ``K / num_actfun``)."""
        if self.codes == 0:
            raise RuntimeError("no LIF produced spikes during the forward pass; the model's "
                               "forward must call its snnlab.neurons.LIF modules.")
        K = {name: self.total[name] / self.codes for name in self.kernels}
        self.total, self.codes = {}, 0
        return K

    def close(self) -> None:
        for h in self.handles:
            h.remove()


class _MembraneCarry:
    """Emulate the official code's missing state reset between scoring batches.

    Every LIF call is made to record its final membrane (``record=True``; the
    caller still gets what it asked for). In the next batch, the first call of a
    LIF that starts from rest (``v0=None``) starts instead from the membrane its
    last call of the previous batch ended with, as a SpikingJelly ``LIFNode`` does
    when ``reset_net`` is not called.
    """

    def __init__(self, lifs: Sequence[LIF]):
        self.final: dict = {}           # module -> v_final of its latest call
        self.pending: dict = {}         # module -> membrane to inject at its first call
        self.asked_record: dict = {m: [] for m in lifs}
        self.handles = []
        for lif in lifs:
            self.handles.append(lif.register_forward_pre_hook(self._pre, with_kwargs=True))
            self.handles.append(lif.register_forward_hook(self._post))

    def next_batch(self, carry: bool) -> None:
        self.pending = dict(self.final) if carry else {}
        self.final = {}

    def _pre(self, module, args, kwargs):
        names = ("x_seq", "record", "v0")
        values = dict(zip(names, args))
        values.update({k: kwargs[k] for k in names if k in kwargs})
        v0 = values.get("v0")
        if v0 is None:
            v0 = self.pending.pop(module, None)
        self.asked_record[module].append(bool(values.get("record", False)))
        return (values["x_seq"],), {"record": True, "v0": v0}

    def _post(self, module, args, output):
        spikes, trace = output
        self.final[module] = trace.v_final.detach()
        return output if self.asked_record[module].pop() else spikes

    def close(self) -> None:
        for h in self.handles:
            h.remove()


# ----------------------------------------------------------------------------- score

def _as_batches(batches: Iterable) -> list[torch.Tensor]:
    """``batches`` as a list of image tensors ``[B, ...]`` (``(x, y)`` pairs give ``x``)."""
    if isinstance(batches, torch.Tensor):
        raise TypeError("batches must be a list of batches, not one tensor; pass [x] for a "
                        "single batch x [B, C, H, W].")
    out = []
    for i, item in enumerate(batches):
        x = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise TypeError(f"batch {i} must be a tensor [B, ...] or an (x, y) pair; got "
                            f"{type(x).__name__}{tuple(getattr(x, 'shape', ()))}.")
        if x.shape[0] < 2:
            raise ValueError(f"batch {i} has {x.shape[0]} sample(s); the kernel compares "
                             "samples, so use a batch of at least 2 (official: 256).")
        out.append(x)
    if not out:
        raise ValueError("batches is empty; give at least one batch (official: 2 of 256).")
    return out


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def score_kernels(model: nn.Module, batches: Iterable, kernel: str = "sahd",
                  mode: str = "train", reset_between_batches: bool = True,
                  device: Union[str, torch.device, None] = None, alpha: float = 0.5,
                  eps: float = 1e-3) -> list[torch.Tensor]:
    """The mean kernel of each batch: what :func:`snasnet_score` takes the log-det of.

    Args: as :func:`snasnet_score`.
    Returns:
        one ``[B, B]`` float64 tensor per batch (on the model's device).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}.")
    per_batch = _mean_kernels(model, batches, (kernel,), mode, reset_between_batches, device,
                              alpha, eps)
    return [kernels[kernel] for kernels in per_batch]


def scores_per_batch(model: nn.Module, batches: Iterable,
                     kernels: Sequence[str] = ("sahd", "hamming"), mode: str = "train",
                     reset_between_batches: bool = True,
                     device: Union[str, torch.device, None] = None, alpha: float = 0.5,
                     eps: float = 1e-3) -> dict:
    """Every batch's ``log |det K|`` for several kernels, from one forward pass per batch.

    The spikes of each LIF call are binarised and multiplied (``x x^T``) once; every
    kernel of ``kernels`` is built from those counts, so scoring the paper's kernel
    and plain Hamming costs one forward, not two.

    Args:
        kernels: names from :data:`KERNELS` (distinct).
        others: as :func:`snasnet_score`.
    Returns:
        ``{kernel: [log |det K| of batch 0, batch 1, ...]}``; the mean of a list is that
        kernel's :func:`snasnet_score` (same model state and RNG).

    Example::

        s = scores_per_batch(model, [x1, x2], kernels=("sahd", "sahd_rate", "hamming"))
        s["sahd"]            # [score of x1, score of x2]
    """
    if isinstance(kernels, str):
        raise TypeError(f"kernels must be a sequence of names such as ('sahd', 'hamming'); got "
                        f"the string {kernels!r}. For one kernel use snasnet_score(kernel=...).")
    kernels = tuple(kernels)
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown or not kernels or len(set(kernels)) != len(kernels):
        raise ValueError(f"kernels must be distinct names from {KERNELS}; got {kernels}.")
    per_batch = _mean_kernels(model, batches, kernels, mode, reset_between_batches, device,
                              alpha, eps)
    return {k: [logdet(batch[k]) for batch in per_batch] for k in kernels}


def _mean_kernels(model: nn.Module, batches: Iterable, kernels: tuple, mode: str,
                  reset_between_batches: bool, device, alpha: float, eps: float) -> list:
    """One ``{kernel: mean kernel [B, B]}`` per batch, one forward per batch (hooks on LIFs)."""
    if mode not in SCORE_MODES:
        raise ValueError(f"mode must be one of {SCORE_MODES}; got {mode!r}.")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module; got {type(model).__name__}.")
    xs = _as_batches(batches)
    if not reset_between_batches and len({tuple(x.shape) for x in xs}) > 1:
        raise ValueError("reset_between_batches=False carries each neuron's membrane into the "
                         "next batch, so all batches need the same shape; got "
                         f"{sorted({tuple(x.shape) for x in xs})}. Drop the last partial batch.")
    if device is None:
        device = _model_device(model)
    else:
        device = torch.device(device)
        model.to(device)
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    if not lifs:
        raise ValueError(f"{type(model).__name__} has no snnlab.neurons.LIF module; the score "
                         "reads the spikes of every LIF.")
    # Official: the net is never put in eval(), so BN uses batch statistics and the
    # classifier's dropout is active (model_snn.py, find_best_neuroncell). BN running
    # statistics change in train mode; we put them back afterwards.
    modes = [(m, m.training) for m in model.modules()]
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.train(mode == "train")
    hooks = _KernelSum(lifs, kernels, alpha, eps)
    carry = None if reset_between_batches else _MembraneCarry(lifs)
    result = []
    try:
        with torch.no_grad():
            for i, x in enumerate(xs):
                if carry is not None:
                    carry.next_batch(carry=i > 0)
                model(x.to(device))
                result.append(hooks.take())
    finally:
        hooks.close()
        if carry is not None:
            carry.close()
        for m, was_training in modes:
            m.training = was_training
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
    return result


def snasnet_score(model: nn.Module, batches: Iterable, kernel: str = "sahd",
                  mode: str = "train", reset_between_batches: bool = True,
                  device: Union[str, torch.device, None] = None, alpha: float = 0.5,
                  eps: float = 1e-3) -> float:
    """SNASNet's training-free score of an untrained ``model`` (higher is better).

    For each batch: run the model, build one kernel per LIF module per time step
    from its binary spikes, average them, take ``log |det K|`` (module doc). The
    score is the mean over the batches.

    Args:
        model: maps images ``[B, C, H, W]`` to anything; every spiking neuron must be
            a :class:`snnlab.neurons.LIF` (found by ``isinstance``).
        batches: a list of image batches ``[B, C, H, W]`` (or ``(x, y)`` pairs), at
            least 2 samples each. Official: 2 random training batches of 256.
        kernel: ``"sahd"`` (the paper's sparsity-aware kernel, ``E`` in neurons),
            ``"sahd_rate"`` (``E`` as a rate: SpikeNAS-Bench's scorer, see the module
            docstring) or ``"hamming"`` (plain NASWOT ``N - d_H``).
        mode: ``"train"`` (official: BN normalises with batch statistics, dropout is
            active) or ``"eval"`` (BN uses its running statistics, which at
            initialisation are 0 and 1, so it does not normalise; no dropout). The
            official single-step code normalises each time step on its own; snnlab's
            time-distributed BN pools the ``T*B`` samples of a sequence (feedback
            cells, run step by step, normalise per step as the official code).
        reset_between_batches: ``True`` (default, snnlab's rule): every batch starts
            from rest. ``False`` emulates the official code, which calls no
            ``reset_net`` between its two batches: each LIF's first step of batch
            ``k + 1`` starts from the membrane it ended batch ``k`` with.
            Emulated exactly: membranes of every LIF, including those run step by
            step in feedback cells (when their first call passes ``v0=None``).
            Not emulated: SpikingJelly's dropout keeps its mask until a reset, so
            the official second batch reuses the first batch's mask; here each
            forward draws new masks. Feedback buffers of cells are zeroed at every
            forward in both (official ``neuron_init``).
        device: run there (the model is moved); None: where the model's parameters are.
        alpha, eps: SAHD constants (official 0.5 and 1e-3); ignored by ``"hamming"``.
    Returns:
        mean of the per-batch ``log |det K|``; ``-inf`` if a kernel is singular.
        :func:`scores_per_batch` returns the per-batch values, for several kernels.

    The model's per-module train/eval flags and its buffers (BN running statistics)
    are restored afterwards; the forward hooks are removed. Dropout draws from
    torch's global RNG: seed it for a repeatable train-mode score. Permuting the
    samples of a batch permutes K's rows and columns, so the score does not change
    (except through train-mode dropout masks, which are drawn by position).

    Reference: SNASNet, ``model_snn.py`` ``find_best_neuroncell``; brief section 2.
    """
    kernels = score_kernels(model, batches, kernel, mode, reset_between_batches, device,
                            alpha, eps)
    return float(np.mean([logdet(K) for K in kernels]))


def sample_batches(dataset, batches: int = 2, batch_size: int = 256,
                   seed: int = 0) -> list[torch.Tensor]:
    """Draw ``batches`` random batches of images from ``dataset`` for scoring.

    Official: two batches of 256 from the shuffled training set, with the training
    augmentation. Here the batches are disjoint, fixed by ``seed`` (shuffle order
    and augmentation draws; torch's global RNG is left untouched), and a search
    scores every candidate on the same batches, so candidates are compared on equal
    terms (the official code draws new batches for every candidate).

    Args:
        dataset: yields ``(x [C, H, W], y)``, e.g. ``bundle.train``.
    Returns:
        a list of ``batches`` tensors ``[batch_size, C, H, W]``.
    """
    for name, value in (("batches", batches), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (the kernel compares samples); "
                         f"got {batch_size}.")
    if batches * batch_size > len(dataset):
        raise ValueError(f"{batches} batches of {batch_size} need {batches * batch_size} "
                         f"samples, but the dataset has {len(dataset)}; lower batch_size.")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=generator)[:batches * batch_size]
    with torch.random.fork_rng(devices=[]):                         # augmentation draws
        torch.manual_seed(seed)
        images = torch.stack([dataset[int(i)][0] for i in order])   # [batches*B, C, H, W]
    return list(images.split(batch_size))


# ----------------------------------------------------------------------------- moved names

_MOVED = {"SearchResult": "snnlab.search.result", "random_search": "snnlab.snasnet_search",
          "evolutionary_search": "snnlab.snasnet_search", "_Run": "snnlab.snasnet_search",
          "_genotype_key": "snnlab.snasnet_search"}


def __getattr__(name: str):
    """The searches live in :mod:`snnlab.snasnet_search` (the result type in
    :mod:`snnlab.search.result`); ``from snnlab.trainfree import random_search`` still works."""
    if name in _MOVED:
        import importlib
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
