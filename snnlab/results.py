"""Results measured once at scale (CIFAR, a GPU, a benchmark clone) and stored in the book.

Runs that take hours or need data the HTML build does not have are made once with a
recorded command and stored as JSON under ``book/results/`` with their provenance.
Chapters read them with :func:`load_result`: from the checkout when the notebook runs
inside it (the book build, nbval), otherwise (a chapter opened alone in Colab) from the
repository on GitHub, so the same cell works in both places.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Union

from .safeio import read_json

__all__ = ["RESULTS_URL", "load_result"]

RESULTS_URL = "https://raw.githubusercontent.com/snnlab/snnlab/main/book/results/"
_HERE = Path(__file__).resolve().parents[1] / "book" / "results"    # in a checkout


def load_result(name: str, folder: Optional[Union[str, Path]] = None) -> dict:
    """Read the stored result ``name`` (e.g. ``"spikenas_rank.json"``).

    Args:
        name: file name inside ``book/results/``.
        folder: look here first (default: ``book/results`` of the checkout snnlab was
            installed from, then ``./results`` as seen from a chapter).
    Returns:
        the parsed JSON; every stored result has a ``"provenance"`` entry.
    Raises:
        FileNotFoundError: not stored locally and not downloadable (offline), with the
            places tried.
        ValueError: the file is not valid JSON (names the file, line and column).
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file name in book/results/; got {name!r}.")
    candidates = [Path(folder)] if folder is not None else [_HERE, Path("results")]
    fix = ("Restore it from the repository (git checkout book/results/" + name + ") or "
           "rerun the command in its provenance.")
    for place in candidates:
        if (place / name).is_file():
            return read_json(place / name, "stored result", fix)
    url = RESULTS_URL + name
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as error:
        tried = ", ".join(str(p / name) for p in candidates)
        raise FileNotFoundError(f"stored result {name!r} not found in {tried} and not "
                                f"downloadable from {url} ({error}).") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"stored result {name!r} downloaded from {url} is not valid JSON: "
                         f"{err.msg} at line {err.lineno}, column {err.colno}.") from err
