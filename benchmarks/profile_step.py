"""Where the time of one snnlab training step goes: torch.profiler, grouped by part.

    python benchmarks/profile_step.py [--networks cnn snasnet] [--sizes cifar] [--steps 3]
        [--threads 2] [--out benchmarks/results/profile_step_cpu.json]

The step is the one of ``benchmarks/train_step.py`` (forward + cross-entropy +
backward + SGD) on the snnlab build. Every operator the profiler records is
charged to the outermost enclosing call that names a part (a convolution's
``aten::mkldnn_convolution`` and its ``aten::empty`` both count as convolution);
an operator outside every named part counts as itself (elementwise, copies).
Self CPU times of all operators add up to the profiled CPU time, so the shares
add up to 100 %. The autograd engine's own bookkeeping between operators, and
Python, are missing from the profiled time: compare ``wall_ms_per_step`` (the
fastest unprofiled step) with ``profiled_ms_per_step``. ``--keep-freed-memory``
profiles with glibc keeping freed memory (``train_step.keep_freed_memory``).

Minor page faults per step are counted too (``getrusage``): on Linux a tensor
larger than glibc's mmap threshold (32 MiB at most) is a fresh ``mmap`` on every
allocation, and the kernel zero-fills each 4 KiB page at first touch. At CIFAR
size snnlab's ``[T*B, C, H, W]`` tensors are that large (4 x 32 x 64 x 32 x 32
floats is exactly 32 MiB), snnTorch's per-step ``[B, C, H, W]`` ones are not.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import provenance, write_json  # noqa: E402
from train_step import build_snnlab, keep_freed_memory, make_batch, train_step  # noqa: E402

# part -> substrings of profiler event names (forward ops and their autograd nodes)
PARTS = {
    "convolution": ("aten::convolution", "ConvolutionBackward"),
    "batch norm": ("aten::batch_norm", "NativeBatchNormBackward"),
    "LIF forward": ("_LIFSequence",),                  # the fused autograd function
    "LIF backward": ("_LIFSequenceBackward",),
    "pooling": ("aten::max_pool2d", "aten::avg_pool2d", "MaxPool2DWithIndicesBackward",
                "AvgPool2DBackward"),
    "linear": ("aten::linear", "AddmmBackward", "MmBackward"),
    "loss": ("aten::cross_entropy_loss", "NllLossBackward", "LogSoftmaxBackward"),
    "optimizer": ("Optimizer.step", "Optimizer.zero_grad"),
    "copies and reshapes": ("aten::clone", "aten::copy_", "aten::cat", "aten::stack",
                            "aten::contiguous", "aten::reshape", "aten::view", "aten::expand",
                            "CloneBackward", "StackBackward", "CatBackward", "ExpandBackward",
                            "ViewBackward", "UnsafeViewBackward"),
}


def part_of(name: str) -> str:
    """The part an event name belongs to, or '' when it names none."""
    if "_LIFSequenceBackward" in name:                 # before "LIF forward", a prefix of it
        return "LIF backward"
    for part, keys in PARTS.items():
        if any(key in name for key in keys):
            return part
    return ""


def charge(events) -> dict:
    """Self CPU milliseconds per part: each event goes to its outermost named ancestor."""
    totals = defaultdict(float)
    for event in events:
        part, node = "", event
        while node is not None:                        # walk up; keep the outermost match
            part = part_of(node.name) or part
            node = node.cpu_parent
        totals[part or "other elementwise"] += event.self_cpu_time_total / 1e3
    return dict(totals)


def profile_network(network: str, size: str, steps: int) -> dict:
    model = build_snnlab(network, size).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = make_batch(size, torch.device("cpu"))
    for _ in range(2):                                 # warm-up: oneDNN primitives, allocator
        train_step(model, optimizer, x, y)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    walls = []
    for _ in range(steps):                             # the fastest step: least disturbed
        start = time.perf_counter()
        train_step(model, optimizer, x, y)
        walls.append(time.perf_counter() - start)
    wall_ms = 1e3 * min(walls)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            train_step(model, optimizer, x, y)
    parts = {k: v / steps for k, v in charge(prof.events()).items()}
    profiled = sum(parts.values())
    return {"network": network, "size": size, "wall_ms_per_step": round(wall_ms, 1),
            "profiled_ms_per_step": round(profiled, 1),
            "minor_page_faults_per_step": int(faults),
            "parts_ms": {k: round(v, 1) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
            "parts_share": {k: round(v / profiled, 3)
                            for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}}


def _format(row: dict) -> str:
    lines = [f"{row['network']} / {row['size']}: {row['wall_ms_per_step']} ms a step "
             f"({row['profiled_ms_per_step']} ms profiled), "
             f"{row['minor_page_faults_per_step']} page faults a step"]
    for part, ms in row["parts_ms"].items():
        lines.append(f"  {part:<22} {ms:>9.1f} ms  {100 * row['parts_share'][part]:>5.1f} %")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", default=["cnn", "snasnet"])
    parser.add_argument("--sizes", nargs="+", default=["cifar"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc keeps freed memory (train_step.keep_freed_memory)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = keep_freed_memory() if args.keep_freed_memory else False
    stamp = provenance(torch.device("cpu"))
    rows = []
    for network in args.networks:
        for size in args.sizes:
            rows.append(profile_network(network, size, args.steps))
            print(_format(rows[-1]), flush=True)
    if args.out:
        write_json(args.out, {"benchmark": "profile_step", "provenance": {
            **stamp, "load_average_1min_now": provenance(torch.device("cpu"))["load_average_1min"],
            "steps": args.steps, "keep_freed_memory": kept}, "rows": rows})


if __name__ == "__main__":
    main()
