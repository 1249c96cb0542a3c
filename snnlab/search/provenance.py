"""How a search result was made, in the library (the CLI adds command, commit and date)."""
from __future__ import annotations

from typing import Any, Optional

import torch

__all__ = ["run_provenance"]


def run_provenance(bundle: Any, device: torch.device, profile: Optional[Any] = None) -> dict:
    """``{"profile", "dataset", "device", "snnlab_version", "torch_version"}`` of one run."""
    from ..train import snnlab_version
    return {"profile": getattr(profile, "name", profile), "dataset": getattr(bundle, "name", None),
            "device": str(device), "snnlab_version": snnlab_version(),
            "torch_version": str(torch.__version__)}
