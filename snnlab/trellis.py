"""The layer-level search space of SpikeDHS: a trellis of resolutions, and its decoding.

Auto-DeepLab (Liu et al., CVPR 2019) searches the resolution of every layer on a
trellis; SpikeDHS (Che et al., NeurIPS 2022) uses it for classification with two
moves per layer, ``same`` and ``down`` (the official
``models/snndarts_search/build_model_2d.py``). Level ``j`` has ``1/2^j`` of the
input resolution; the stem enters at level 0; the coarsest level can only stay.

With ``M[l]`` the ``[J, J]`` move-weight matrix of layer ``l`` (from
``softmax(beta[l, i])``) a path's weight is the product of its moves:

    W(path) = prod_l M[l, path[l - 1], path[l]]            (path[-1] = 0, the stem)
    P(path) = W(path) / sum of W over all paths

**Every layer counts as a choice between two moves.** At the coarsest level both
"moves" stay, so its stay weighs ``1/2``, not 1. Without this, a Markov chain
whose forced stay has probability 1 makes a path that reaches the bottom early
cost fewer factors of ~1/2: at ``beta = 0`` the most probable path would be the
rush-down ``(1, 2, 2, 2)`` although the search has learned nothing. With it, at
``beta = 0`` every path has the same weight ``2^-L`` and only learned preferences
separate them. The official search forward scales the coarsest level by 1/2 for
the same reason (``build_model_2d.py``), and its Auto-DeepLab decoder rescales
the levels that have fewer moves (``decoding_formulas.py``).

The decoded path is the most probable one, found exactly by Viterbi
(:func:`viterbi_path`); ties (all paths at ``beta = 0``) go to the lower level,
so an untrained trellis decodes to ``(0, 0, ..., 0)``. :func:`greedy_path`, the
layer-by-layer argmax, can miss the best path (a test shows such a case). The official code decodes no path: it
hard-codes ``[0, 0, 1, 1, 1, 2, 2, 2]`` (README), and its Viterbi decoder
(``decoding_formulas.py``) expects Auto-DeepLab's three moves.

:func:`input_weights` gives the posterior mixing weights the supernet uses to
feed each cell (see :mod:`snnlab.spikedhs`).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["MOVES", "transition_matrices", "path_probabilities", "check_path",
           "path_log_weight", "path_log_probability", "viterbi_path", "greedy_path", "input_weights"]

MOVES = ("same", "down")


def transition_matrices(betas: torch.Tensor) -> torch.Tensor:
    """Per-layer transition matrices of the trellis.

    Args:
        betas: ``[L, J, 2]`` logits of the moves (``same``, ``down``) out of each level.
    Returns:
        ``M`` ``[L, J, J]`` with ``M[l, i, i] = softmax(betas[l, i])[0]`` and
        ``M[l, i, i + 1] = softmax(betas[l, i])[1]``; the coarsest level stays with
        weight ``1/2`` (one of two moves that both stay; ``betas[:, J - 1]`` is
        unused), so every row but the coarsest sums to 1. Differentiable.
    """
    if not isinstance(betas, torch.Tensor) or betas.dim() != 3 or betas.shape[2] != len(MOVES):
        shape = tuple(betas.shape) if isinstance(betas, torch.Tensor) else type(betas).__name__
        raise ValueError(f"betas must be a [layers, levels, 2] tensor (moves {MOVES}); "
                         f"got {shape}.")
    L, J, _ = betas.shape
    p = F.softmax(betas, dim=-1)                                       # [L, J, 2]
    forced_stay = p.new_full((L, 1), 1.0 / len(MOVES))                 # see the module doc
    same = torch.cat([p[:, :J - 1, 0], forced_stay], dim=1)            # [L, J]
    M = torch.diag_embed(same)                                         # [L, J, J]
    if J > 1:
        M = M + torch.diag_embed(p[:, :J - 1, 1], offset=1)            # down: i -> i + 1
    return M


def path_probabilities(M: torch.Tensor) -> torch.Tensor:
    """``pi`` ``[L + 1, J]``: how the paths spread over the levels after each layer.

    ``pi[0]`` is level 0 (the stem); ``pi[l + 1]`` is ``pi[l] @ M[l]`` normalised to
    sum 1, i.e. the share of the weight of all ``l + 1``-layer paths that ends at each
    level. ``pi[L, j]`` is the probability that the path ends at level ``j``.
    """
    L, J, _ = M.shape
    rows = [F.one_hot(torch.tensor(0, device=M.device), J).to(M.dtype)]
    for l in range(L):
        weights = rows[-1] @ M[l]
        rows.append(weights / weights.sum())
    return torch.stack(rows)


def check_path(path: Sequence[int], levels: Optional[int] = None) -> Tuple[int, ...]:
    """Check a path (level after each layer): starts at 0 or 1, moves by 0 or +1, < levels."""
    if isinstance(path, (str, bytes)) or not isinstance(path, Sequence) or not path:
        raise ValueError(f"path must be a non-empty sequence of levels, e.g. (0, 0, 1, 1); "
                         f"got {path!r}.")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in path):
        raise ValueError(f"path levels must be ints; got {path!r}.")
    prev = 0
    for l, level in enumerate(path):
        if level - prev not in (0, 1):
            raise ValueError(f"path {tuple(path)} moves from level {prev} to {level} at layer {l}; "
                             "each layer stays or goes one level down (the stem is level 0).")
        prev = level
    if levels is not None and max(path) >= levels:
        raise ValueError(f"path {tuple(path)} reaches level {max(path)} but the network has "
                         f"{levels} levels (0..{levels - 1}).")
    return tuple(int(v) for v in path)


def _log(M: torch.Tensor) -> torch.Tensor:
    M = M.detach().double().cpu()
    return torch.where(M > 0, M.clamp_min(1e-300).log(), torch.full_like(M, -math.inf))


def path_log_weight(M: torch.Tensor, path: Sequence[int]) -> float:
    """``log W(path) = sum_l log M[l, path[l-1], path[l]]`` (``path[-1]`` = stem level 0)."""
    path = check_path(path, M.shape[1])
    if len(path) != M.shape[0]:
        raise ValueError(f"path has {len(path)} layers, M has {M.shape[0]}.")
    logM, prev, total = _log(M), 0, 0.0
    for l, level in enumerate(path):
        total += float(logM[l, prev, level])
        prev = level
    return total


def path_log_probability(M: torch.Tensor, path: Sequence[int]) -> float:
    """``log P(path) = log W(path) - log(sum of W over all paths)``; uniform at ``beta = 0``."""
    weights = F.one_hot(torch.tensor(0), M.shape[1]).double()
    for l in range(M.shape[0]):                     # forward sum over all paths, no normalising
        weights = weights @ M[l].detach().double().cpu()
    return path_log_weight(M, path) - math.log(float(weights.sum()))


def viterbi_path(M: torch.Tensor) -> Tuple[int, ...]:
    """The most probable path through the trellis (Viterbi, in log space).

    ``delta[l + 1, j] = max_i delta[l, i] + log M[l, i, j]`` with ``delta[0]`` = level 0;
    the path ends at the best final level and is read back through the argmax
    pointers. Ties go to the lower level. Returns the level after each layer.

    Example (staying first looks best, but going down pays off):
        >>> p_down = torch.tensor([[0.4, 0.5, 0.5], [0.5, 0.01, 0.5]])     # [L=2, J=3]
        >>> M = transition_matrices(torch.stack([(1 - p_down).log(), p_down.log()], -1))
        >>> greedy_path(M), viterbi_path(M)
        ((0, 0), (1, 1))
    """
    logM = _log(M)
    L, J, _ = logM.shape
    score = torch.full((J,), -math.inf, dtype=torch.float64)
    score[0] = 0.0
    back = torch.zeros(L, J, dtype=torch.long)
    for l in range(L):
        cand = score[:, None] + logM[l]                                # [from i, to j]
        score, back[l] = cand.max(dim=0)                               # first max: lower i
    level = int(torch.argmax(score))                                   # first max: lower level
    path = [level]
    for l in range(L - 1, 0, -1):
        level = int(back[l, level])
        path.append(level)
    return tuple(reversed(path))


def greedy_path(M: torch.Tensor) -> Tuple[int, ...]:
    """Follow the most probable move from the current level, layer by layer (for comparison)."""
    level, path = 0, []
    for l in range(M.shape[0]):
        level = int(torch.argmax(M[l, level].detach()))
        path.append(level)
    return tuple(path)


def input_weights(M: torch.Tensor, pi: torch.Tensor, l: int, j: int, n1: int, n0: int
                   ) -> Tuple[Dict[int, torch.Tensor], Dict[int, torch.Tensor]]:
    """Posterior mixing weights of the cell at (layer l, level j) over its source levels.

    ``s1``: ``pi[l, i] M[l, i, j]`` for ``i`` in ``{j-1, j}`` (``n1`` levels exist),
    normalised to sum 1: the share of the paths into ``(l, j)`` that come from level ``i``.
    ``s0``: the two-step version over ``{j-2, j-1, j}`` (layer 0 reads the stem: weight 1).
    """
    w1 = _normalised({i: pi[l, i] * M[l, i, j] for i in (j - 1, j) if 0 <= i < n1})
    if l == 0:
        return {0: pi.new_ones(())}, w1
    two = M[l - 1] @ M[l]                                              # [J, J]
    w0 = _normalised({k: pi[l - 1, k] * two[k, j] for k in (j - 2, j - 1, j) if 0 <= k < n0})
    return w0, w1


def _normalised(weights: Dict[int, torch.Tensor]) -> Dict[int, torch.Tensor]:
    total = sum(weights.values()).clamp_min(1e-30)  # 0 only off the path of a one-hot beta
    return {k: w / total for k, w in weights.items()}
