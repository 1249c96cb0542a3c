"""DARTS over SpikeNAS-Bench's cell space, judged by the bench's trained accuracies.

SpikeNAS-Bench (:mod:`snnlab.bench`) trained every cell of SNASNet's forward space:
6 edges (:data:`~snnlab.bench.BENCH_EDGES`), each one of the 5 ops
:data:`~snnlab.bench.BENCH_OPS` = {zero, skip, LIF(threshold 0.5 / 1.0 / 1.5) + conv3x3
+ BN}, 5^6 = 15,625 cells. That makes it the one place where a differentiable search
of a spiking cell can be graded against ground truth on a CPU: search, derive a
cell, look its id up in the table.

**The supernet** (:class:`BenchSupernet`) is the bench's network as
:func:`snnlab.bench_rank.build_bench_net` builds it (the SNASNet macro net: stem,
cell(C), down block, cell(2C), classifier; both cells share one architecture), with
every one of the 6 edges of both cells a DARTS mixed op (:class:`snnlab.darts.MixedOp`)
over the 5 bench ops, weighted by ``softmax(alphas[k])``; ``alphas`` is ``[6, 5]``,
rows in :data:`~snnlab.bench.BENCH_EDGES` order, columns in ``BENCH_OPS`` order, so a
row's argmax is the bench's op code of that edge. A node is the plain sum of its
incoming edges, as in the bench's cell. ``network="training"`` (the default) is the
network whose accuracies the bench logged (``Train_all_networks/model_snn.py``: BN
over T*B, a LIF in the down block); ``"scoring"`` is the bench's training-free scorer
network (per-step BN, no LIF in the down block; the cells then run step by step, about
1.5x slower). The weights a search trains are those of the network the bench trained,
so the training network is the default.

**The search** (:func:`search_bench_darts`) is first-order DARTS: alternate one alpha
step (:class:`snnlab.architect.Architect`, Adam) on a batch of the *search-val* half
with one SGD step of the weights on a batch of the *search-train* half. Both halves are
drawn (seeded) from the first 25,000 CIFAR-10 training images, the half the bench
trained on; the bench's own validation half (images 25,000..49,999) and the test set
are never seen, so the bench's val and test accuracy of the derived cell are both
honest judges.

**Derivation** (:func:`derive_arch_id`): the argmax op of each edge, mapped to the
bench id (:func:`snnlab.bench.codes_to_arch_id`). The bench space allows ``zero`` on
an edge (it is how a cell has fewer than 6 edges); DARTS excludes ``none`` when it
derives (its weight is not comparable: the op adds nothing to the node). Both are
offered; **the default excludes zero** (``include_zero=False``, DARTS's rule), which
restricts the answer to the 4^6 = 4,096 cells with all six edges; a search result
records both derivations.

**The CPU proxy.** The bench trained C = 128 channels on 25,000 32x32 images for 100
epochs (GPU hours per cell). A search of that supernet is out of reach on a CPU, so
:class:`BenchDartsConfig`'s defaults are a **proxy**, labelled so wherever it is stored
(:data:`PROXY_LABEL`): width 1/16 (C = 8, 16 in the second cell); CIFAR-10 averaged over
2x2 pixels (16x16); 2,000 search-train + 2,000 search-val images; T = 5; batch 25;
4 epochs, the first 2 a weight-only warm-up (the bench's network starts silent: the
hidden LIF of its classifier does not fire at initialisation and the loss sits at
ln 10 for tens of steps); the bench's weight recipe (SGD lr 0.1 cosine, momentum 0.9,
no weight decay); an alpha learning rate of 3e-3, 10x DARTS's (160 alpha steps
instead of DARTS's ~20,000). That is 12,000 images seen and about 3 CPU minutes per seed
on one thread. Which cell wins the proxy can differ from which would win at the bench's
size; that is part of what the result measures.

Example (needs a clone and CIFAR-10)::

    bench = load_bench("SpikeNAS-Bench", cache_dir=".cache")
    result = search_bench_darts("data", BenchDartsConfig(seed=0))
    judge_arch(bench, result["derived"]["arch_id"])       # true test / val acc, rank
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .architect import Architect
from .bench import BENCH_EDGES, BENCH_OPS, SpikeNASBench, arch_id_to_codes, codes_to_arch_id, \
    genotype_from_arch_id
from .bench_rank import BENCH_CHANNELS, NETWORKS
from .darts import MixedOp
from .ops import op_step
from .profiles import seed_everything
from .safeio import append_json_line, read_json_lines
from .snasnet import SNASNET_NEURON, SNASNet, init_weights

__all__ = ["BenchEdge", "BenchSupernet", "BenchDartsConfig", "bench_body", "derive_arch_id",
           "search_images", "search_bench_darts", "judge_arch", "summarize_seeds",
           "space_baselines", "darts_study", "compare_with_stored", "plot_bench_darts",
           "PROXY_LABEL"]

PROXY_LABEL = "CPU proxy (not the bench's training recipe)"
BENCH_TRAIN_HALF = 25_000     # the bench trains on training images 0..24,999 (val: the rest)
_ALL_SKIP_ID = codes_to_arch_id([1] * 6)   # a cell with all 6 edges: the supernet's skeleton


# ---- the supernet ------------------------------------------------------------------------

class BenchEdge(MixedOp):
    """One edge of the supernet's cells: a :class:`~snnlab.darts.MixedOp` over
    :data:`~snnlab.bench.BENCH_OPS` whose weights ``[5]`` the supernet sets before each
    forward (``self.weights``), so that it can sit in an :class:`~snnlab.snasnet.SNASNetCell`
    like a plain op, multi-step (``forward``) or step by step (``step``).

    Forward: ``x_seq`` ``[T, B, C, H, W]`` -> ``[T, B, C, H, W]``;
    step: ``x_t`` ``[B, C, H, W]`` -> ``[B, C, H, W]``, each op's membrane in ``state[op index]``.
    """

    def __init__(self, C: int, neuron: dict):
        super().__init__(C, 1, BENCH_OPS, neuron)
        self.weights: Optional[torch.Tensor] = None

    def _current_weights(self) -> torch.Tensor:
        if self.weights is None:
            raise RuntimeError("BenchEdge has no weights: it runs inside BenchSupernet.forward, "
                               "which sets them from softmax(alphas).")
        return self.weights

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return super().forward(x_seq, self._current_weights())

    def step(self, x_t: torch.Tensor, state: dict) -> torch.Tensor:
        weights = self._current_weights()
        out = None
        for i in self._active:                       # `none` adds nothing: skipped, as forward
            y = weights[i] * op_step(self.ops[i], x_t, state.setdefault(i, {}))
            out = y if out is None else out + y
        return out


def bench_body(network: str = "training", width: float = 0.0625, T: int = 5,
               image_size: int = 32) -> SNASNet:
    """The bench's macro network around a cell with all 6 edges (skip on each, to be replaced).

    The arguments of :func:`snnlab.bench_rank.build_bench_net` (a test checks that both
    build the same network at 32x32), plus ``image_size``: 16 is the CPU proxy's
    down-sampled CIFAR (the classifier then sees 4x4 instead of 8x8 positions).
    """
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}; got {network!r}.")
    per_step = network == "scoring"
    return SNASNet(genotype_from_arch_id(_ALL_SKIP_ID), in_channels=3, num_classes=10,
                   C=max(1, round(BENCH_CHANNELS * width)), T=T, image_size=image_size,
                   fc_hidden=1024, votes_per_class=10, last_pool=2,
                   bn_stats="per_step" if per_step else "pooled", down_spike=not per_step)


class BenchSupernet(nn.Module):
    """SpikeNAS-Bench's network with a mixed op on each of the 6 edges of its two cells.

    Args:
        network: ``"training"`` (the network the bench trained) or ``"scoring"`` (its
            scorer network), as :func:`snnlab.bench_rank.build_bench_net`.
        width: ``C = round(128 * width)``; the bench's C is 128.
        T: time steps (the bench: 5).
        image_size: 32 (CIFAR-10, the bench) or 16 (the CPU proxy's down-sampled images).
    Forward:
        images ``[B, 3, S, S]`` -> logits ``[B, 10]``.

    ``alphas`` ``[6, 5]``: rows in :data:`~snnlab.bench.BENCH_EDGES` order, columns in
    ``BENCH_OPS`` order (bench op codes), shared by both cells (the bench's two cells
    share one genotype). ``arch_parameters()`` and ``weight_parameters()`` are disjoint,
    as :class:`snnlab.architect.Architect` needs.
    """

    def __init__(self, network: str = "training", width: float = 0.0625, T: int = 5,
                 image_size: int = 32):
        super().__init__()
        # the macro net exactly as the bench's, around a cell that has all 6 edges ...
        self.body = bench_body(network, width, T, image_size)
        self.network = network
        self._edges: List[tuple] = []               # (edge module, row of alphas)
        for cell in (self.body.cell1, self.body.cell2):
            for key in list(cell.edges):
                src, dst = (int(n) for n in key.split("to"))
                # ... whose ops are replaced by mixed ops over the 5 bench ops
                cell.edges[key] = edge = BenchEdge(cell.C, dict(SNASNET_NEURON))
                self._edges.append((edge, BENCH_EDGES.index((src, dst))))
        init_weights(self.body)            # the bench's initialisation, mixed ops included
        self.alphas = nn.Parameter(1e-3 * torch.randn(len(BENCH_EDGES), len(BENCH_OPS)))

    def arch_parameters(self) -> list:
        """``[alphas]``: what the architect updates."""
        return [self.alphas]

    def weight_parameters(self) -> list:
        """Every parameter but ``alphas`` (convs, BN, classifier)."""
        return [p for p in self.parameters() if p is not self.alphas]

    def arch_weights(self) -> torch.Tensor:
        """``softmax(alphas)`` per edge, detached: ``[6, 5]``."""
        return F.softmax(self.alphas.detach(), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = F.softmax(self.alphas, dim=-1)                       # [6, 5]
        for edge, row in self._edges:
            edge.weights = weights[row]
        try:
            return self.body(x)                                        # [B, 10]
        finally:
            for edge, _ in self._edges:     # no state (or graph) survives a call
                edge.weights = None


# ---- derivation and judging -----------------------------------------------------------------

def derive_arch_id(weights, include_zero: bool = False) -> int:
    """The bench id of the cell that keeps the argmax op of each edge.

    Args:
        weights: ``[6, 5]`` alphas or their softmax (same argmax), rows in
            :data:`~snnlab.bench.BENCH_EDGES` order, columns in ``BENCH_OPS`` order.
        include_zero: let ``zero`` (code 0) win an edge, as the bench space allows;
            default False, DARTS's rule: the best non-zero op (then all 6 edges exist).
    Returns:
        the arch id in ``0..15624``.

    Example:
        >>> w = torch.zeros(6, 5); w[:, 2] = 1.0          # threshold 0.5 everywhere
        >>> derive_arch_id(w) == codes_to_arch_id([2] * 6)
        True
    """
    weights = torch.as_tensor(weights, dtype=torch.float64)
    if weights.shape != (len(BENCH_EDGES), len(BENCH_OPS)):
        raise ValueError(f"weights must be [6, 5] (edges {BENCH_EDGES} x ops {BENCH_OPS}); "
                         f"got {tuple(weights.shape)}.")
    if not include_zero:
        weights = weights.clone()
        weights[:, 0] = -float("inf")
    return codes_to_arch_id(weights.argmax(dim=1).tolist())


def judge_arch(bench: SpikeNASBench, arch_id: int) -> dict:
    """The bench's verdict on one cell: true test and val accuracy, and its rank.

    ``rank`` is 1 + the number of cells with a higher test accuracy (1 = best);
    ``percentile`` the share (%) of the table's cells whose test accuracy is at most
    this cell's (100 = the best); ``regret`` the best test accuracy minus this one.
    """
    entry = bench.entry(arch_id)
    test = bench.test_acc
    return {"arch_id": int(arch_id), "genotype": str(entry["genotype"]),
            "connected": entry["connected"], "params": entry["params"],
            "test_acc": entry["test_acc"], "val_acc": entry["val_acc"],
            "rank": int((test > entry["test_acc"]).sum()) + 1,
            "percentile": round(100.0 * float((test <= entry["test_acc"]).mean()), 3),
            "regret": round(float(test.max()) - entry["test_acc"], 3),
            "of": len(bench)}


# ---- the search ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchDartsConfig:
    """One first-order DARTS search over the bench's cell space (defaults: the CPU proxy).

    Args:
        seed: initial weights and alphas, batch order.
        data_seed: which images form the two halves (the same for every seed by default,
            so seeds differ only in initialisation and order).
        network, width, T, image_size: the supernet (:class:`BenchSupernet`); the bench:
            training network, width 1, T 5, 32x32. ``image_size=16`` averages 2x2 pixels.
        train_images, val_images: the search-train half (weights) and search-val half
            (alphas), drawn without overlap from the bench's training half.
        epochs, batch_size: passes over the halves; one weight and one alpha step per batch.
        warmup_epochs: the first epochs train the weights only (alphas fixed), on the
            search-train half: the bench's network starts silent (its classifier's hidden
            LIF does not fire at initialisation, so the loss sits at ln 10 for tens of
            steps), and alpha steps taken then follow noise. Counted in ``epochs``.
        lr, lr_min, momentum, weight_decay, grad_clip: SGD of the weights, the bench's
            recipe (``Train_all_networks``: lr 0.1 cosine to 0.001, momentum 0.9; its
            weight decay is passed positionally as dampening, so it is 0) and DARTS's
            gradient clip 5.
        arch_lr, arch_weight_decay: Adam of the alphas (DARTS: 3e-4, 1e-3, betas 0.5, 0.999).
        include_zero: the default derivation (:func:`derive_arch_id`); both are recorded.
    """

    seed: int = 0
    data_seed: int = 0
    network: str = "training"
    width: float = 0.0625
    T: int = 5
    image_size: int = 16
    train_images: int = 2000
    val_images: int = 2000
    epochs: int = 4
    warmup_epochs: int = 2
    batch_size: int = 25
    lr: float = 0.1
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    arch_lr: float = 3e-3
    arch_weight_decay: float = 1e-3
    include_zero: bool = False

    def __post_init__(self):
        for name in ("train_images", "val_images", "epochs", "batch_size", "T"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be an int in 0..epochs-1 (at least one epoch "
                             f"searches); got {self.warmup_epochs!r} with epochs={self.epochs}.")
        if self.train_images + self.val_images > BENCH_TRAIN_HALF:
            raise ValueError(f"train_images + val_images must be <= {BENCH_TRAIN_HALF} (the "
                             f"bench's training half); got {self.train_images + self.val_images}.")
        if self.image_size not in (16, 32):
            raise ValueError(f"image_size must be 32 (CIFAR-10) or 16 (2x2 averaged); got "
                             f"{self.image_size!r}.")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}; got {self.network!r}.")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4] (C = 128 * width); got {self.width}.")

    @property
    def proxy(self) -> bool:
        """True unless this is the bench's own size (width 1, 32x32, all 25,000 images)."""
        return (self.width != 1 or self.image_size != 32
                or self.train_images + self.val_images < BENCH_TRAIN_HALF)


def search_images(data_dir, config: BenchDartsConfig) -> Dict[str, torch.Tensor]:
    """The two halves of the search, from the plain ordered CIFAR-10 training set.

    Indices: ``default_rng(data_seed).permutation(25000)`` (the bench's training half),
    the first ``train_images`` for the weights, the next ``val_images`` for the alphas.
    With ``image_size=16`` each image is averaged over 2x2 pixels (after normalising;
    both are linear, so the order does not matter).
    Returns ``{"train_x": [N, 3, S, S], "train_y": [N], "val_x": ..., "val_y": ...}``.
    """
    from .data import cifar_split
    images = cifar_split("cifar10", data_dir, split="train")
    pool = min(BENCH_TRAIN_HALF, len(images))           # a small test archive: all of it
    if config.train_images + config.val_images > pool:
        raise ValueError(f"train_images + val_images = {config.train_images + config.val_images}"
                         f" but only {pool} images are available.")
    order = np.random.default_rng(config.data_seed).permutation(pool)
    halves = {"train": order[:config.train_images],
              "val": order[config.train_images:config.train_images + config.val_images]}
    out = {}
    for half, index in halves.items():
        items = [images[int(i)] for i in index]
        x = torch.stack([x for x, _ in items])                           # [N, 3, 32, 32]
        out[f"{half}_x"] = F.avg_pool2d(x, 32 // config.image_size)      # [N, 3, S, S]
        out[f"{half}_y"] = torch.stack([y for _, y in items])           # [N]
    return out


def _batches(n: int, batch_size: int, generator: torch.Generator) -> List[torch.Tensor]:
    """A seeded shuffle of ``0..n-1`` cut into full batches (the last partial one dropped)."""
    order = torch.randperm(n, generator=generator)
    return [order[k:k + batch_size] for k in range(0, n - batch_size + 1, batch_size)]


def _epoch(model: BenchSupernet, architect: Optional[Architect],
           optimizer: torch.optim.Optimizer, data: Dict[str, torch.Tensor],
           config: BenchDartsConfig, generator: torch.Generator) -> dict:
    """One pass: per batch pair, an alpha step on search-val (none when ``architect`` is
    None: warm-up), then a weight step on search-train. Returns the mean losses, the
    train accuracy and the images seen."""
    train = _batches(len(data["train_y"]), config.batch_size, generator)
    val = _batches(len(data["val_y"]), config.batch_size, generator)
    stats = {"train_loss": 0.0, "train_acc": 0.0, "val_loss": 0.0}
    steps = min(len(train), len(val))
    model.train()
    for t_idx, v_idx in zip(train[:steps], val[:steps]):
        if architect is not None:
            val_batch = (data["val_x"][v_idx], data["val_y"][v_idx])
            stats["val_loss"] += float(architect.step(None, val_batch))    # first order
        x, y = data["train_x"][t_idx], data["train_y"][t_idx]
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.weight_parameters(), config.grad_clip)
        optimizer.step()
        model.alphas.grad = None             # the weight step's alpha gradient is not used
        stats["train_loss"] += float(loss.detach())
        stats["train_acc"] += float((logits.detach().argmax(1) == y).float().mean())
    stats = {k: round(v / steps, 4) for k, v in stats.items()}
    stats["train_acc"] = round(100 * stats["train_acc"], 2)
    if architect is None:
        stats["val_loss"] = None
    return {**stats, "images": (1 if architect is None else 2) * steps * config.batch_size}


def search_bench_darts(data, config: BenchDartsConfig = BenchDartsConfig(),
                       device: str = "cpu") -> dict:
    """Run one first-order DARTS search of the bench's cell space.

    Args:
        data: a CIFAR-10 folder (``cifar-10-batches-py`` inside) or the dict of
            :func:`search_images` (tests pass small tensors).
        config: :class:`BenchDartsConfig` (defaults: the CPU proxy).
        device: torch device.
    Returns:
        a dict: ``config``, ``proxy`` (bool), ``derived`` ``{"arch_id", "codes",
        "include_zero"}`` (the default derivation), ``derived_with_zero`` and
        ``derived_without_zero`` (arch ids), ``alphas`` (final ``[6, 5]``), ``history``
        (per epoch: softmax ``[6, 5]``, both derived ids, losses, train accuracy,
        images, wall seconds), ``images_seen``, ``seconds`` (wall) and ``cpu_seconds``
        (this process's CPU time: on a shared machine the honest cost). Judge it with
        :func:`judge_arch`.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    seed_everything(config.seed)
    if not isinstance(data, dict):
        data = search_images(data, config)
    data = {k: v.to(device) for k, v in data.items()}
    model = BenchSupernet(config.network, config.width, config.T, config.image_size).to(device)
    optimizer = torch.optim.SGD(model.weight_parameters(), lr=config.lr,
                                momentum=config.momentum, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs,
                                                          eta_min=config.lr_min)
    architect = Architect(model, lr=config.arch_lr, weight_decay=config.arch_weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    history, images = [], 0
    for epoch in range(config.epochs):
        warm = epoch < config.warmup_epochs
        stats = _epoch(model, None if warm else architect, optimizer, data, config, generator)
        schedule.step()
        images += stats["images"]
        weights = model.arch_weights()
        history.append({"epoch": epoch + 1, "warmup": warm, **stats,
                        "arch_weights": np.round(weights.cpu().numpy(), 5).tolist(),
                        "derived_without_zero": derive_arch_id(weights, False),
                        "derived_with_zero": derive_arch_id(weights, True),
                        "seconds": round(time.perf_counter() - start, 2)})
    alphas = model.alphas.detach().cpu()
    arch_id = derive_arch_id(alphas, config.include_zero)
    return {"config": dataclasses.asdict(config), "proxy": config.proxy,
            "derived": {"arch_id": arch_id, "include_zero": config.include_zero,
                        "genotype": str(genotype_from_arch_id(arch_id))},
            "derived_without_zero": derive_arch_id(alphas, False),
            "derived_with_zero": derive_arch_id(alphas, True),
            "alphas": np.round(alphas.numpy(), 5).tolist(),
            "history": history, "images_seen": images,
            "seconds": round(time.perf_counter() - start, 2),
            "cpu_seconds": round(time.process_time() - cpu_start, 2)}


def summarize_seeds(values: Sequence[float]) -> dict:
    """``{"mean", "sd", "n"}`` (sample sd, ddof 1; 0 for one value), rounded to 3 decimals."""
    values = np.asarray(values, dtype=np.float64)
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": round(float(values.mean()), 3), "sd": round(sd, 3), "n": len(values)}


def _judge_history(bench: SpikeNASBench, history: List[dict]) -> None:
    """Add the bench's test accuracy of each epoch's derived cells to ``history`` (in place)."""
    for entry in history:
        for key in ("derived_without_zero", "derived_with_zero"):
            entry[key.replace("derived", "test_acc")] = judge_arch(bench, entry[key])["test_acc"]


def space_baselines(bench: SpikeNASBench) -> dict:
    """What a pick without search gets: the mean test accuracy of a uniformly drawn live cell
    and of a drawn cell with all six edges (the 4^6 = 4,096 cells a derivation without
    zero can return), and the best of each."""
    full = (bench.codes > 0).all(axis=1)                              # [N] all 6 edges
    out = {}
    for name, mask in (("live cell", bench.connected), ("cell with 6 edges", full)):
        acc = bench.test_acc[mask]
        out[name] = {"cells": int(mask.sum()), "test_acc": summarize_seeds(acc),
                     "best_test_acc": float(acc.max())}
    return out


def _read_checkpoint(path, config: BenchDartsConfig) -> Dict[int, dict]:
    """Runs stored in a JSON-lines checkpoint whose config equals ``config`` (but the seed)."""
    wanted = {k: v for k, v in dataclasses.asdict(config).items() if k != "seed"}
    return {int(run["config"]["seed"]): run for run in read_json_lines(path)
            if {k: v for k, v in run["config"].items() if k != "seed"} == wanted}


def darts_study(bench: SpikeNASBench, data, config: BenchDartsConfig = BenchDartsConfig(),
                seeds: Sequence[int] = (0, 1, 2), device: str = "cpu",
                progress=None, checkpoint=None) -> dict:
    """Run :func:`search_bench_darts` for each seed and judge every derived cell on the bench.

    Args:
        bench: the table (:func:`snnlab.bench.load_bench`).
        data: a CIFAR-10 folder or the dict of :func:`search_images` (read once).
        config: the search (``seed`` is replaced by each of ``seeds``).
        progress: optional ``callable(str)`` told when a seed is done.
        checkpoint: optional JSON-lines file: each finished search is appended, and a
            rerun with the same config reads its seeds back instead of searching again.
    Returns:
        ``{"label", "config", "runs": [...], "summary", "baselines"}``: each run is the
        search's dict plus ``judged`` (the default derivation) and ``judged_with_zero`` /
        ``judged_without_zero`` (:func:`judge_arch`), with the bench's test accuracy of
        every epoch's derived cells in its history; ``summary`` holds mean ± sd over seeds
        of test and val accuracy, percentile, rank, seconds and images for both derivations,
        and the supernet's final training accuracy and loss (did it learn at all: chance
        is 10 % and ln 10 = 2.303; if not, the alphas followed noise).
    """
    done = _read_checkpoint(checkpoint, config)
    if not isinstance(data, dict) and not all(int(s) in done for s in seeds):
        data = search_images(data, config)
    runs = []
    for seed in seeds:
        run = done.get(int(seed))
        if run is None:
            run = search_bench_darts(data, dataclasses.replace(config, seed=int(seed)), device)
            if checkpoint is not None:
                append_json_line(checkpoint, run)
        _judge_history(bench, run["history"])
        run["judged"] = judge_arch(bench, run["derived"]["arch_id"])
        for key in ("derived_without_zero", "derived_with_zero"):
            run[key.replace("derived", "judged")] = judge_arch(bench, run[key])
        runs.append(run)
        if progress is not None:
            progress(f"seed {seed}: arch {run['derived']['arch_id']}, test "
                     f"{run['judged']['test_acc']} %, {run['seconds']} s")
    summary = {"seeds": [int(s) for s in seeds],
               "seconds": summarize_seeds([r["seconds"] for r in runs]),
               "cpu_seconds": summarize_seeds([r["cpu_seconds"] for r in runs]),
               "images_seen": int(runs[0]["images_seen"]),
               # did the supernet learn at all? chance is 10 % and a loss of ln 10 = 2.303
               "supernet_final_train_acc": summarize_seeds(
                   [r["history"][-1]["train_acc"] for r in runs]),
               "supernet_final_train_loss": summarize_seeds(
                   [r["history"][-1]["train_loss"] for r in runs])}
    for key in ("judged", "judged_without_zero", "judged_with_zero"):
        summary[key] = {m: summarize_seeds([r[key][m] for r in runs])
                        for m in ("test_acc", "val_acc", "percentile", "rank")}
    channels = max(1, round(BENCH_CHANNELS * config.width))
    label = (f"{PROXY_LABEL if config.proxy else 'bench size'}: C={channels}, "
             f"{config.image_size}x{config.image_size}, {config.train_images}+"
             f"{config.val_images} images, {config.epochs} epochs ({config.warmup_epochs} "
             f"warm-up), T={config.T}")
    return {"label": label, "config": {k: v for k, v in dataclasses.asdict(config).items()
                                       if k != "seed"},
            "runs": runs, "summary": summary, "baselines": space_baselines(bench)}


def compare_with_stored(study: dict, search: Optional[dict] = None,
                        rank: Optional[dict] = None) -> List[dict]:
    """One row per method: what it found (true test accuracy, mean ± sd over seeds) and
    what it cost, in each method's own unit.

    Costs are not on one scale, and the rows say so: DARTS's is its own CPU seconds
    and the images it saw (the derived cell still has to be trained once, like any
    method's pick); a tabular search's is the bench's logged training time of the cells
    it evaluated (simulated GPU hours, ``hours``); SNASNet's is the seconds of scoring K
    untrained cells (``spikenas_rank.json``'s mean seconds per cell x K). At equal
    "cells trained" DARTS compares with K = 1 (one random live cell).

    Args:
        study: :func:`darts_study`'s dict. search: ``spikenas_search.json``.
        rank: ``spikenas_rank.json`` (its ``snasnet_as_published``).
    """
    s = study["summary"]
    rows = [{"method": f"DARTS ({'with' if z else 'without'} zero), {study['label']}",
             "test_acc": s[f"judged_{'with' if z else 'without'}_zero"]["test_acc"],
             "cost": f"{s['cpu_seconds']['mean']:.0f} CPU s, {s['images_seen']} images"}
            for z in (False, True)]
    rows += [{"method": f"one random {name}", "test_acc": base["test_acc"],
              "cost": "no search (one cell trained)"}
             for name, base in study["baselines"].items()]
    if search is not None:
        for method, result in search["summary"].items():
            for k, at in result["at"].items():
                rows.append({"method": f"{method} search, {k} cells (select on val)",
                             "test_acc": at["test_acc"],
                             "cost": f"{at['hours']['mean']:.0f} GPU h of bench training"})
    if rank is not None:
        per_cell = rank["score_seconds"]["mean"]
        for pick in rank["snasnet_as_published"]["by_ranker"]["score sahd"]:
            rows.append({"method": f"SNASNet score (sahd), best of {pick['k']}",
                         "test_acc": pick["test_acc"],
                         "cost": f"{per_cell * pick['k']:.0f} CPU s of scoring"})
    return rows


def plot_bench_darts(result: dict, seed_index: int = 0, axes=None):
    """Two panels of a stored result (``load_result("spikenas_darts.json")``): the final
    op weights of one seed's search (rows: bench edges, columns: bench ops; white dots:
    the derived cell) and the true test accuracy of every method of the comparison
    (mean ± sd over seeds; each cost, in its own unit, beside its point, see
    :func:`compare_with_stored`). Returns the two Axes."""
    rows = result["comparison"]["rows"]
    if axes is None:
        import matplotlib.pyplot as plt
        _, axes = plt.subplots(1, 2, figsize=(11, 1.5 + 0.3 * len(rows)),
                               gridspec_kw={"width_ratios": [1, 1.9]})
    run = result["runs"][seed_index]
    weights = np.asarray(run["history"][-1]["arch_weights"])          # [6 edges, 5 ops]
    image = axes[0].imshow(weights, cmap="viridis", aspect="auto")
    axes[0].figure.colorbar(image, ax=axes[0], label="softmax weight")
    codes = arch_id_to_codes(run["derived"]["arch_id"])
    axes[0].scatter(codes, range(6), c="white", s=18)                   # the derived cell
    axes[0].set_xticks(range(len(BENCH_OPS)))
    axes[0].set_xticklabels(BENCH_OPS, rotation=45, ha="right", fontsize="small")
    axes[0].set_yticks(range(len(BENCH_EDGES)))
    axes[0].set_yticklabels([f"{i} \u2192 {j}" for i, j in BENCH_EDGES])
    axes[0].set_title(f"seed {run['config']['seed']}: final softmax(alpha)", fontsize="small")
    y = np.arange(len(rows))
    means = [r["test_acc"]["mean"] for r in rows]
    axes[1].errorbar(means, y, xerr=[r["test_acc"]["sd"] for r in rows], fmt="o", capsize=3)
    # short method names on the axis (the proxy is in the title), each cost beside its point
    names = [r["method"].split(", CPU proxy")[0].replace(" (select on val)", "") for r in rows]
    axes[1].set_yticks(y)
    axes[1].set_yticklabels(names, fontsize="small")
    right = max(m + r["test_acc"]["sd"] for m, r in zip(means, rows))
    for k, r in enumerate(rows):
        axes[1].annotate(r["cost"], (right, k), xytext=(6, 0), textcoords="offset points",
                         va="center", fontsize="x-small", color="0.35")
    axes[1].set_xlim(right=right + 0.45 * (right - min(means)))
    axes[1].invert_yaxis()
    axes[1].set_xlabel("true CIFAR-10 test accuracy of the pick (%), mean \u00b1 sd")
    return axes
