"""Execute chapter notebooks in place, top to bottom in a fresh kernel, on the tiny profile.

The chapters are committed with their outputs; nbval (``make test``) re-runs them and
compares. After changing a chapter or the library code it shows, re-execute it here and
commit the result::

    python tools/execute_notebooks.py                      # every book/*.ipynb
    python tools/execute_notebooks.py book/01_spiking_neurons.ipynb

``make notebooks`` does the same inside the project's virtual environment. Cells tagged
``skip-execution`` (the Colab install cell) are not run. The kernels use one thread
(``OMP_NUM_THREADS=1`` unless the caller sets it), as ``make test`` does, so the stored
outputs are the ones nbval reproduces.

Each run also records how long the chapter took in ``book/results/runtimes.json``
(wall and kernel CPU seconds per chapter, its slowest cells under nbval's names, and how
it was measured: commit, machine, threads, load average), so a page can show its runtime and slow cells
can be found before they pass nbval's cell timeout. No timing is left in the notebooks,
so re-executing an unchanged chapter changes little besides the widget ids.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["execute_notebook", "record_runtime", "slowest_cells", "main"]

ROOT = Path(__file__).resolve().parents[1]
RUNTIMES = ROOT / "book" / "results" / "runtimes.json"
SLOWEST_KEPT = 3  # slowest cells stored per chapter
ABOUT = ("Each chapter executed top to bottom in a fresh kernel (tools/execute_notebooks.py, tiny "
         "profile): wall seconds, the kernel's CPU seconds (what the chapter costs on an idle core "
         "at the threads given), its slowest code cells (nbval's names) and how it was measured.")


def execute_notebook(path: Path, timeout: int = 300) -> dict:
    """Run ``path`` in a fresh ``python3`` kernel in its own folder and save it.

    Returns ``{"seconds": wall time of the whole run (kernel start included),
    "cpu_seconds": the kernel's CPU time over all cells,
    "cells": [{"cell": "Cell 17", "seconds": 95.2, "cpu_seconds": 80.1}, ...]}``, one
    entry per executed code cell; "Cell N" counts code cells from 0, as nbval names its
    test items. On a busy machine wall time grows with the load; CPU time hardly does.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    cpu = _KernelCpu()
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(Path(path).resolve().parent)}},
        on_cell_start=cpu.cell_started,
        on_cell_executed=cpu.cell_executed,
    )
    cpu.client = client
    client.execute()
    seconds = time.perf_counter() - start
    cells = _cell_seconds(nb, cpu.seconds)
    for cell in nb.cells:  # timing belongs in runtimes.json, not in the stored notebook
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    cpu_total = sum(c["cpu_seconds"] for c in cells) if cells and cpu.seconds else None
    return {"seconds": seconds, "cpu_seconds": cpu_total, "cells": cells}


class _KernelCpu:
    """CPU seconds (user + system) the kernel process spends on each cell; None if unknown."""

    def __init__(self):
        self.client = None
        self.started: dict[int, float | None] = {}
        self.seconds: dict[int, float] = {}      # by index in nb.cells

    def _now(self) -> float | None:
        try:
            import psutil  # comes with ipykernel

            times = psutil.Process(self.client.km.provisioner.process.pid).cpu_times()
        except Exception:  # no psutil, or a kernel that is not a local process
            return None
        return times.user + times.system + times.children_user + times.children_system

    def cell_started(self, cell, cell_index):
        self.started[cell_index] = self._now()

    def cell_executed(self, cell, cell_index, execute_reply):
        began, ended = self.started.pop(cell_index, None), self._now()
        if began is not None and ended is not None:
            self.seconds[cell_index] = ended - began


def _cell_seconds(nb, cpu_seconds: dict[int, float]) -> list[dict]:
    """Wall seconds per executed code cell, from nbclient's timestamps (input seen -> reply),
    and the kernel's CPU seconds where :class:`_KernelCpu` measured them."""
    found, code_index = [], -1
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code_index += 1
        timing = cell.metadata.get("execution", {})
        began, ended = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if began and ended:
            entry = {"cell": f"Cell {code_index}", "seconds": round(_timestamp(ended) - _timestamp(began), 1)}
            if index in cpu_seconds:
                entry["cpu_seconds"] = round(cpu_seconds[index], 1)
            found.append(entry)
    return found


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def slowest_cells(run: dict, keep: int = SLOWEST_KEPT) -> list[dict]:
    """The ``keep`` slowest cells of a run, slowest first."""
    return sorted(run["cells"], key=lambda cell: cell["seconds"], reverse=True)[:keep]


def record_runtime(chapter: str, run: dict, path: Path = RUNTIMES) -> dict:
    """Store one chapter's run in the runtimes file (other chapters are kept); return the entry.

    Args:
        chapter: the notebook's name without suffix ("06_space_and_time").
        run: what :func:`execute_notebook` returned.
        path: the JSON file, ``book/results/runtimes.json`` by default.
    """
    from snnlab.safeio import read_json, write_json_atomic

    runtimes = read_json(path) if path.is_file() else {}
    runtimes["about"] = ABOUT
    cpu = run.get("cpu_seconds")
    entry = {"seconds": round(run["seconds"], 1), "cpu_seconds": None if cpu is None else round(cpu, 1),
             "slowest_cells": slowest_cells(run), "provenance": _provenance()}
    chapters = runtimes.setdefault("chapters", {})
    chapters[chapter] = entry
    runtimes["chapters"] = dict(sorted(chapters.items()))
    write_json_atomic(path, runtimes)
    return entry


def _provenance() -> dict:
    """How a runtime was measured: where, on how many threads, how busy the machine was."""
    return {
        "profile": os.environ.get("SNNLAB_PROFILE", "tiny"),
        "threads": int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1),
        "cpu_cores": os.cpu_count(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        # other work on the machine slows a chapter down: the 1-minute load average says how much
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "commit": _git_commit(),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: book/*.ipynb")
    parser.add_argument("--timeout", type=int, default=300,
                        help="seconds per cell (default 300, the book build's execute.timeout)")
    args = parser.parse_args(argv)
    # The stored outputs are the tiny profile's, made on one thread; kernels inherit this environment.
    os.environ["SNNLAB_PROFILE"] = "tiny"
    os.environ["SNNLAB_PROGRESS"] = "0"     # no progress bars in stored outputs
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Kernels start "python" from PATH: make it this interpreter.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for path in args.notebooks or sorted((ROOT / "book").glob("*.ipynb")):
        print(f"executing {path} ...", flush=True)
        run = execute_notebook(path, args.timeout)
        slowest = ", ".join(f"{c['cell']} {c['seconds']:.0f} s" for c in slowest_cells(run))
        print(f"  done in {run['seconds']:.0f} s, {run['cpu_seconds'] or 0:.0f} s of kernel CPU "
              f"(slowest: {slowest})", flush=True)
        if Path(path).resolve().parent == ROOT / "book":  # a copy elsewhere is not a chapter
            record_runtime(Path(path).stem, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
