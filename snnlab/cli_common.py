"""What every command of ``python -m snnlab`` shares: run flags, the run's data, provenance.

:mod:`snnlab.cli` (train, the top-level parser) and :mod:`snnlab.cli_search`
(``search``, built from the search registry) both import this module and never
each other's internals, so neither needs the other at import time.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import shlex
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence, Tuple

import torch

from .data import load_dataset
from .profiles import PROFILES, Profile, get_profile
from .train import resolve_device, snnlab_version

__all__ = ["add_run_arguments", "add_resume_arguments", "load_run", "provenance", "git_commit"]


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--profile --seed --data-root --download --device``: which settings, data and device."""
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="run settings (default: $SNNLAB_PROFILE, else tiny)")
    parser.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    parser.add_argument("--data-root", default=None,
                        help="folder holding the datasets (default: $SNNLAB_DATA, else ./data)")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR from the official site if it is missing")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")


def add_resume_arguments(parser: argparse.ArgumentParser, what: str = "run") -> None:
    """``--checkpoint --resume``: an atomic checkpoint after every epoch, and continuing it."""
    parser.add_argument("--checkpoint", default=None,
                        help=f"{what} checkpoint, written atomically after every epoch")
    parser.add_argument("--resume", action="store_true",
                        help=f"continue the {what} saved in --checkpoint (same settings)")


def load_run(args: argparse.Namespace, **profile_overrides) -> Tuple[Profile, torch.device, object]:
    """``(profile, device, bundle)`` of a command: the profile with ``--seed`` and
    ``profile_overrides`` applied, the device, and the profile's dataset (its val split)."""
    profile = get_profile(args.profile)
    overrides = {**profile_overrides, **({"seed": args.seed} if args.seed is not None else {})}
    if overrides:
        profile = dataclasses.replace(profile, **overrides)
    device = resolve_device(args.device)
    bundle = load_dataset(profile.dataset, root=args.data_root, download=args.download,
                          seed=profile.seed, val_fraction=profile.val_fraction)
    return profile, device, bundle


def provenance(argv: Sequence[str], device: torch.device) -> dict:
    """How a result was made: device, machine, versions, commit, the exact command, the date (UTC)."""
    return {
        "device": str(device),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_threads": torch.get_num_threads(),
        "snnlab_version": snnlab_version(),
        "torch_version": str(torch.__version__),
        "commit": git_commit(),
        "command": "python -m snnlab " + shlex.join(argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def git_commit() -> str:
    """The short commit of the source tree snnlab runs from ('unknown' outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
