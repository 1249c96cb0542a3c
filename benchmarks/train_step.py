"""One training step of the same spiking network in snnlab, snnTorch and SpikingJelly.

    python benchmarks/train_step.py [--device cpu|cuda] [--repeats 7] [--threads 2]
                                    [--out benchmarks/results/train_step_cpu.json]

A training step is forward + cross-entropy + backward + SGD (momentum 0.9). Two
networks, each at two sizes:

* ``cnn``: the baseline :class:`snnlab.models.SpikingCNN` (conv -> BN -> LIF stages);
* ``snasnet``: :class:`snnlab.snasnet.SNASNet` around one fixed forward cell that
  uses every SNASNet op (:data:`CELL`);
* ``tiny``: 8x8 digits, 1 channel, the tiny profile's widths, T=4, batch 64;
  ``cifar``: 32x32, 3 channels, the colab profile's widths, T=4, batch 32.

Each network is built once by snnlab, then rebuilt for the other libraries with
the *same weights* (a deep copy with the neurons swapped), so that only the way
time and neurons are handled differs:

* ``snnlab``: the model as it is (stateless layers once over ``[T*B, ...]``, the
  fused multi-step LIF);
* ``snntorch``: the snnTorch idiom, the time loop *outside* the network: every
  layer runs once per step on ``[B, ...]`` and each ``snntorch.Leaky`` carries its
  membrane between steps (``spk, mem = leaky(cur, mem)``);
* ``snntorch_layerwise``: snnlab's layout with each LIF replaced by a
  ``snntorch.Leaky`` time loop (separates the neuron kernel from the layout);
* ``spikingjelly``: SpikingJelly's multi-step idiom, ``neuron.LIFNode(step_mode="m")``
  and ``layer.SeqToANNContainer`` around the stateless layers, ``functional.reset_net``
  after each step (skipped, and said so, when SpikingJelly is not installed).

Same LIF everywhere: decay ``1 - 1/tau``, threshold, hard reset to 0 (detached),
ATan(alpha=2); SNASNet's neuron scales its input by ``1/tau`` (SpikingJelly's
``decay_input``; for snnTorch the wrapper scales the current). ``tests/
test_train_step_equivalence.py`` checks the builds give equal spikes, loss and
gradients on one batch. Differences that remain by design: snnTorch's per-step
layout normalises each step with that step's batch statistics in train mode (the
others pool BN over ``T*B``), and its dropout draws a mask per step (SpikingJelly's
and snnlab's one per sequence); SpikingJelly fires on ``h >= theta``, the others on
``h > theta``.

Timing: the builds of one network run interleaved, repeat after repeat, and each
library's median is reported with the median of the per-repeat ratios to snnlab
(``speedup_vs_snnlab`` > 1: snnlab is faster). This machine is shared and noisy:
compare ratios within one run, not absolute times across runs.

Memory: the peak of one step above the memory held before it. On a GPU
``torch.cuda.max_memory_allocated``. On a CPU ``tracemalloc`` does not see
tensors (torch allocates them outside Python's allocator), so we read the
process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``)
after releasing freed heap pages (``malloc_trim``): an RSS delta, in MiB.
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import provenance, write_json  # noqa: E402

from snnlab.layers import TimeDistributed  # noqa: E402
from snnlab.models import SpikingCNN  # noqa: E402
from snnlab.neurons import LIF  # noqa: E402
from snnlab.snasnet import SequenceDropout, SNASNet, CellGenotype  # noqa: E402
from snnlab import compiled  # noqa: E402

try:
    import snntorch
    from snntorch import surrogate as snn_surrogate
except ImportError:                       # the script says which library it skipped
    snntorch = None
try:
    from spikingjelly.activation_based import functional as sj_functional
    from spikingjelly.activation_based import layer as sj_layer
    from spikingjelly.activation_based import neuron as sj_neuron
    from spikingjelly.activation_based import surrogate as sj_surrogate
except ImportError:
    sj_neuron = None

# A forward cell with every SNASNet op: 0->1 conv3x3, 0->2 conv1x1, 0->3 skip,
# 1->2 conv3x3, 1->3 avgpool, 2->3 conv3x3 (forward only, so snnlab runs it multi-step).
CELL = CellGenotype.from_string("0321 0034 0003 0000")

SIZES = {   # image side, channels, batch, T, CNN widths, SNASNet (C, fc, last_pool)
    "tiny": dict(image_size=8, in_channels=1, batch=64, T=4, widths=(32, 64),
                 snasnet=(16, 128, 2)),
    "cifar": dict(image_size=32, in_channels=3, batch=32, T=4, widths=(64, 128, 256),
                  snasnet=(64, 256, 4)),
}
NETWORKS = ("cnn", "snasnet")
ALPHA = 2.0                               # ATan sharpness, every library


def build_snnlab(network: str, size: str, seed: int = 0) -> nn.Module:
    """The snnlab model: images ``[B, C, S, S]`` -> logits ``[B, 10]``."""
    cfg = SIZES[size]
    torch.manual_seed(seed)
    if network == "cnn":
        return SpikingCNN(cfg["in_channels"], 10, widths=cfg["widths"], T=cfg["T"],
                          image_size=cfg["image_size"], tau=2.0, threshold=1.0, reset="hard",
                          surrogate="atan", detach_reset=True)
    C, fc, last_pool = cfg["snasnet"]
    return SNASNet(CELL, in_channels=cfg["in_channels"], num_classes=10, C=C, T=cfg["T"],
                   image_size=cfg["image_size"], fc_hidden=fc, last_pool=last_pool)


# ---- swapping modules ---------------------------------------------------------

def _swap(model: nn.Module, replace: Callable[[nn.Module], Optional[nn.Module]]) -> nn.Module:
    """Replace, in place and recursively, every child for which ``replace`` returns a module."""
    for name, child in model.named_children():
        new = replace(child)
        if new is not None:
            setattr(model, name, new)
        else:
            _swap(child, replace)
    return model


def _beta(lif: LIF) -> float:
    return float(lif.decay)


class LeakyStep(nn.Module):
    """A ``snntorch.Leaky`` fed one step at a time, ``[1, B, ...]``; the membrane is kept
    between calls (``spk, mem = leaky(cur, mem)``) until :meth:`reset`."""

    def __init__(self, lif: LIF):
        super().__init__()
        self.leaky = snntorch.Leaky(beta=_beta(lif), threshold=float(lif.threshold),
                                    reset_mechanism="zero",
                                    spike_grad=snn_surrogate.atan(alpha=ALPHA))
        self.input_scale = 1 - _beta(lif) if lif.decay_input else 1.0   # SpikingJelly's decay_input
        self.mem = None

    def reset(self) -> None:
        self.mem = None

    def forward(self, x_step: torch.Tensor) -> torch.Tensor:
        cur = x_step[0] * self.input_scale if self.input_scale != 1.0 else x_step[0]
        if self.mem is None:
            self.mem = self.leaky.reset_mem()
        spk, self.mem = self.leaky(cur, self.mem)
        return spk.to(cur.dtype).unsqueeze(0)     # snnTorch returns float32 spikes; a no-op in float32


class LeakyLoop(LeakyStep):
    """A ``snntorch.Leaky`` time loop over a whole ``[T, B, ...]`` sequence (fresh membrane)."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        self.reset()
        return torch.cat([super(LeakyLoop, self).forward(x_seq[t:t + 1])
                          for t in range(x_seq.shape[0])])


class StepDropout(nn.Module):
    """``nn.Dropout`` on each step (the snnTorch idiom: a new mask per step)."""

    def __init__(self, p: float):
        super().__init__()
        self.dropout = nn.Dropout(p)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.dropout(x_seq)


def to_snntorch_layerwise(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose LIFs are ``snntorch.Leaky`` time loops."""
    return _swap(copy.deepcopy(model), lambda m: LeakyLoop(m) if isinstance(m, LIF) else None)


class SnnTorchNet(nn.Module):
    """The snnTorch idiom: a time loop around the whole network, one step per call.

    The stateless layers keep snnlab's wrappers, which on a ``[1, B, ...]`` step are
    plain calls; each LIF becomes a :class:`LeakyStep`. The direct encoding is the
    same image at every step (SNASNet's stem, which sees only the image, runs once).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        swap = {LIF: LeakyStep, SequenceDropout: lambda m: StepDropout(m.p)}
        self.net = _swap(copy.deepcopy(model),
                         lambda m: swap[type(m)](m) if type(m) in swap else None)

    def _one_step(self, x_t: torch.Tensor) -> torch.Tensor:
        net = self.net
        if isinstance(net, SpikingCNN):
            return net.classifier(net.features(x_t.unsqueeze(0)).flatten(2))[0]
        x = net.cell2(net.down(net.cell1(x_t.unsqueeze(0))))                # [1, B, 2C, s', s']
        out = net.classifier(net.last_act(x).flatten(2))[0]               # [B, classes * votes]
        return out.reshape(out.shape[0], net.num_classes, net.votes_per_class).mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.net.modules():                                     # fresh membranes
            if isinstance(m, LeakyStep):
                m.reset()
        x_t = self.net.stem(x) if isinstance(self.net, SNASNet) else x
        return torch.stack([self._one_step(x_t) for _ in range(self.net.T)]).mean(0)


def to_spikingjelly(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in SpikingJelly's multi-step idiom (same weights)."""
    def replace(m):
        if isinstance(m, LIF):
            return sj_neuron.LIFNode(tau=float(1 / (1 - _beta(m))), decay_input=m.decay_input,
                                     v_threshold=float(m.threshold), v_reset=0.0,
                                     surrogate_function=sj_surrogate.ATan(alpha=ALPHA),
                                     detach_reset=True, step_mode="m")
        if isinstance(m, TimeDistributed):
            return sj_layer.SeqToANNContainer(m.module)
        if isinstance(m, SequenceDropout):
            return sj_layer.Dropout(m.p, step_mode="m")
        return None
    return _swap(copy.deepcopy(model), replace)


def builds(network: str, size: str, seed: int = 0, compile_lif: bool = False
           ) -> Dict[str, nn.Module]:
    """Every available build of one network, same weights: name -> model.

    ``compile_lif`` adds ``snnlab_compiled``: the snnlab model with its LIFs through
    ``torch.compile`` (:mod:`snnlab.compiled`).
    """
    base = build_snnlab(network, size, seed)
    out = {"snnlab": base}
    if compile_lif:
        out["snnlab_compiled"] = compiled.compile_lifs(copy.deepcopy(base))
    if snntorch is not None:
        out["snntorch"] = SnnTorchNet(base)
        out["snntorch_layerwise"] = to_snntorch_layerwise(base)
    if sj_neuron is not None:
        out["spikingjelly"] = to_spikingjelly(base)
    return out


def missing_libraries() -> List[str]:
    return [name for name, mod in (("snntorch", snntorch), ("spikingjelly", sj_neuron))
            if mod is None]


# ---- one training step ---------------------------------------------------------

def make_batch(size: str, device: torch.device, seed: int = 0):
    cfg = SIZES[size]
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(cfg["batch"], cfg["in_channels"], cfg["image_size"], cfg["image_size"],
                   generator=g)
    y = torch.randint(0, 10, (cfg["batch"],), generator=g)
    return x.to(device), y.to(device)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor) -> float:
    """forward + cross-entropy + backward + SGD step; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    if sj_neuron is not None:
        sj_functional.reset_net(model)        # SpikingJelly keeps membranes after a forward
    return loss.item()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_step(model, optimizer, x, y) -> float:
    _sync(x.device)
    start = time.perf_counter()
    train_step(model, optimizer, x, y)
    _sync(x.device)
    return time.perf_counter() - start


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse, for every library in this process.

    By default a block above glibc's mmap threshold (at most 32 MiB) is a fresh
    ``mmap`` on each allocation and is returned to the system when freed, so every
    step pays a page fault (and the kernel's zero-fill) per 4 KiB page of each large
    tensor. ``M_MMAP_MAX = 0`` serves all blocks from the heap and a high
    ``M_TRIM_THRESHOLD`` keeps freed heap memory: what jemalloc or tcmalloc (or the
    environment variables ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``) give a
    whole program. Returns False where there is no glibc.
    """
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4                    # from glibc's malloc.h
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_step_memory_mib(model, optimizer, x, y) -> Optional[float]:
    """Peak memory of one step above what was held before it (see the module doc)."""
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        train_step(model, optimizer, x, y)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2 ** 20
    try:
        gc.collect()
        _malloc_trim()
        before = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                      # reset VmHWM, the peak resident set
        train_step(model, optimizer, x, y)
        return (_status_kib("VmHWM") - before) / 1024
    except OSError:                            # not Linux: no measurement
        return None


def bench(network: str, size: str, device: torch.device, repeats: int,
          compile_lif: bool = False) -> dict:
    models = {name: m.to(device).train()
              for name, m in builds(network, size, compile_lif=compile_lif).items()}
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
                  for name, m in models.items()}
    x, y = make_batch(size, device)
    for _ in range(2):                                           # warm-up (and compile)
        for name in models:
            timed_step(models[name], optimizers[name], x, y)
    times = {name: [] for name in models}
    for _ in range(repeats):                                     # interleaved repeats
        for name in models:
            times[name].append(timed_step(models[name], optimizers[name], x, y))
    memory = {name: peak_step_memory_mib(models[name], optimizers[name], x, y) for name in models}
    cfg = SIZES[size]
    row = {"network": network, "size": size, "batch": cfg["batch"], "T": cfg["T"],
           "image": [cfg["in_channels"], cfg["image_size"], cfg["image_size"]], "libraries": {}}
    for name in models:
        ratios = [b / a for a, b in zip(times["snnlab"], times[name])]
        row["libraries"][name] = {
            "ms_median": round(1e3 * statistics.median(times[name]), 3),
            "speedup_vs_snnlab": round(statistics.median(ratios), 3),
            "peak_step_memory_mib": None if memory[name] is None else round(memory[name], 1)}
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--compile", action="store_true",
                        help="also time the LIF through torch.compile (snnlab.compiled; needs a "
                             "C compiler on CPU, compiles for minutes on a small machine)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc keeps freed memory for reuse (keep_freed_memory), for all "
                             "libraries alike: no page faults for large tensors")
    parser.add_argument("--out", default=None, help="write a JSON result with provenance")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = keep_freed_memory() if args.keep_freed_memory else False
    stamp = provenance(device)            # at the start: the commit whose code is measured
    for name in missing_libraries():
        print(f"{name} is not installed: its column is skipped "
              f"(pip install {name}; see benchmarks/requirements.txt)")
    rows = []
    for network in args.networks:
        for size in args.sizes:
            rows.append(bench(network, size, device, args.repeats, args.compile))
            print(_format(rows[-1]), flush=True)
            if args.out:                  # after every row: a long run keeps what it measured
                write_json(args.out, {"benchmark": "train_step", "provenance": {
                    **stamp, "load_average_1min_now": provenance(device)["load_average_1min"],
                    "libraries": _versions(), "skipped": missing_libraries(),
                    "repeats": args.repeats, "compiled_lif": args.compile,
                    "keep_freed_memory": kept}, "rows": rows})


def _format(row: dict) -> str:
    lines = [f"{row['network']} / {row['size']} (batch {row['batch']}, T={row['T']})"]
    for name, r in row["libraries"].items():
        mem = "n/a" if r["peak_step_memory_mib"] is None else f"{r['peak_step_memory_mib']:.1f}"
        lines.append(f"  {name:<20} {r['ms_median']:>10.1f} ms  {r['speedup_vs_snnlab']:>6.2f}x"
                     f"  peak {mem:>8} MiB")
    return "\n".join(lines)


def _versions() -> dict:
    import snnlab
    out = {"snnlab": getattr(snnlab, "__version__", "unknown"), "torch": torch.__version__}
    if snntorch is not None:
        out["snntorch"] = snntorch.__version__
    if sj_neuron is not None:
        from importlib.metadata import version
        out["spikingjelly"] = version("spikingjelly")
    return out


if __name__ == "__main__":
    main()
