"""Every chapter on the colab profile's code path, on a CPU: smoke mode (snnlab.smoke).

A Colab user runs a chapter with ``SNNLAB_PROFILE=colab`` on CIFAR-10; nbval only ever
runs the tiny profile. Here each chapter runs top to bottom in a fresh kernel with

    SNNLAB_PROFILE=colab  SNNLAB_SMOKE=1  SNNLAB_DATA=<a small archive in the official format>

so that the CIFAR loader, the 3x32x32 shapes, DataLoader workers, the AMP switches and the
search and retraining calls of the colab path all execute, at toy size (a few hundred
images written by :func:`snnlab.smoke.write_fake_cifar`, every count cut by
:func:`snnlab.smoke.smoke_profile`). A cell that raises fails the test with the chapter,
the cell (``Cell N`` counts code cells from 0, as nbval does) and its traceback. The
stored notebooks are never written: the executed copy goes to a temp folder.

The Colab install cell is skipped (tag ``skip-execution``), but its text must set
``SNNLAB_PROFILE`` to ``colab``: that is the one thing it changes for the chapter.

Cost: the budget is 240 s of kernel CPU on one thread for chapters 1-7 together. Measured
on 2026-12-01 (commit 38ca9e7, a shared 2-core machine, OMP_NUM_THREADS=1): chapters 1-8
took 4, 25, 31, 60, 45, 67, 6 and 57 s (238 s for 1-7). Keep new chapters small: cut counts
in :data:`snnlab.smoke.SMOKE_CAPS` rather than adding smoke branches to a chapter.

One chapter by hand (prints the kernel's CPU seconds and its slowest cells)::

    OMP_NUM_THREADS=1 python tests/test_colab_smoke.py book/02_training_an_snn.ipynb
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9]*.ipynb"))
CELL_TIMEOUT = 900          # a guard against hangs, not a budget
# The install cell's line that picks the profile, e.g. os.environ.setdefault("SNNLAB_PROFILE", "colab")
SETS_COLAB = re.compile(r"""SNNLAB_PROFILE["']\s*(?:,|\]\s*=)\s*["']colab["']""")


class ChapterFailed(AssertionError):
    """A chapter's cell raised in smoke mode; the message names the chapter and the cell."""


def smoke_environment(data_root: Path) -> dict[str, str]:
    """The kernel's environment: this process's, plus the colab profile in smoke mode."""
    return {**os.environ, "SNNLAB_PROFILE": "colab", "SNNLAB_SMOKE": "1",
            "SNNLAB_DATA": str(data_root), "SNNLAB_PROGRESS": "0",
            # figures are drawn inline as in Colab (a plot that cannot render fails here too)
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def _code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _kernel_cpu_seconds(client) -> float | None:
    """User + system CPU seconds of the kernel process and its finished children."""
    try:
        import psutil  # comes with ipykernel

        t = psutil.Process(client.km.provisioner.process.pid).cpu_times()
    except Exception:  # a kernel that is not a local process
        return None
    return t.user + t.system + t.children_user + t.children_system


def run_chapter(path: Path, data_root: Path, out_dir: Path) -> dict:
    """Execute chapter ``path`` in smoke mode; the executed copy is written to ``out_dir``.

    Returns ``{"seconds": wall, "cpu_seconds": the kernel's CPU (None if unknown)}``.
    Raises :class:`ChapterFailed` naming the chapter, the code cell and its traceback.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    cpu = {"cells": {}}
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})

    def cell_started(cell, cell_index):
        cpu["started"] = _kernel_cpu_seconds(client)

    def cell_executed(cell, cell_index, execute_reply):
        now, before = _kernel_cpu_seconds(client), cpu.get("started")
        if now is not None and before is not None:
            cpu["cells"][cell_index] = now - before
        cpu["seconds"] = now                  # the kernel's whole CPU so far, start-up included

    client.on_cell_start, client.on_cell_executed = cell_started, cell_executed
    start = time.perf_counter()
    try:
        client.execute(env=smoke_environment(data_root))
    except CellExecutionError as error:
        failed = next((k for k, cell in enumerate(_code_cells(nb))
                       if any(o.get("output_type") == "error" for o in cell.get("outputs", []))),
                      None)
        raise ChapterFailed(f"{path.name}, Cell {failed} (colab profile, smoke mode) raised "
                            f"after {cpu.get('seconds') or 0:.0f} s of kernel CPU (slowest: "
                            f"{_slowest(_cell_seconds(nb, cpu['cells']))}); executed copy: "
                            f"{out_dir / path.name}\n{error}") from None
    finally:
        nbformat.write(nb, out_dir / path.name)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu.get("seconds"),
            "cells": _cell_seconds(nb, cpu["cells"])}


def _cell_seconds(nb, by_index: dict[int, float]) -> dict[str, float]:
    """CPU seconds per executed code cell under nbval's names ("Cell 7"), slowest first."""
    code_index = {id(cell): k for k, cell in enumerate(_code_cells(nb))}
    cells = {f"Cell {code_index[id(nb.cells[i])]}": round(t, 1) for i, t in by_index.items()}
    return dict(sorted(cells.items(), key=lambda item: -item[1]))


def _slowest(cells: dict[str, float], count: int = 5) -> str:
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in list(cells.items())[:count])


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory) -> Path:
    from snnlab.smoke import write_fake_cifar

    root = tmp_path_factory.mktemp("smoke-data")
    write_fake_cifar(root)
    return root


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_install_cell_is_skipped_and_sets_the_colab_profile(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = next(cell for cell in nb["cells"] if cell["cell_type"] == "code")
    source = "".join(first["source"])
    assert "skip-execution" in first["metadata"].get("tags", []), path.name
    assert SETS_COLAB.search(source), f"{path.name}: the install cell does not set " \
                                      f"SNNLAB_PROFILE to colab:\n{source}"


def test_install_cell_pattern_reads_the_ways_to_set_the_profile():
    assert SETS_COLAB.search('os.environ.setdefault("SNNLAB_PROFILE", "colab")')
    assert SETS_COLAB.search("os.environ['SNNLAB_PROFILE'] = 'colab'")
    assert not SETS_COLAB.search('os.environ.setdefault("SNNLAB_PROFILE", "tiny")')
    assert not SETS_COLAB.search('print("colab")')


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_runs_on_the_colab_path_in_smoke_mode(path, smoke_data, tmp_path):
    run = run_chapter(path, smoke_data, tmp_path)
    print(f"{path.name}: {run['seconds']:.0f} s wall, {run['cpu_seconds'] or float('nan'):.0f} s CPU")


def main(paths: list[str]) -> int:
    """Run the given chapters (default: all) in smoke mode and print their cost."""
    from snnlab.smoke import write_fake_cifar

    chapters = [Path(p).resolve() for p in paths] or CHAPTERS
    folder = Path(tempfile.mkdtemp(prefix="snnlab-smoke-"))     # kept: the executed copies
    write_fake_cifar(folder / "data")
    total, failed = 0.0, []
    for path in chapters:
        try:
            run = run_chapter(path, folder / "data", folder)
        except ChapterFailed as error:
            failed.append(path.name)
            print(error, flush=True)
            continue
        total += run["cpu_seconds"] or 0.0
        print(f"{path.name}: {run['seconds']:.1f} s wall, {run['cpu_seconds'] or 0:.1f} s CPU "
              f"(slowest: {_slowest(run['cells'])})", flush=True)
    print(f"total: {total:.1f} s CPU; failed: {failed or 'none'}; executed copies in {folder}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
