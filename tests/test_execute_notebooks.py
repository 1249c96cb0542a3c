"""tools/execute_notebooks.py: executes a notebook, leaves no timing in it, records runtimes."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "tools" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _run(cells: list[tuple[float, ...]]) -> dict:
    return {"seconds": sum(c[1] for c in cells) + 2.0,
            "cells": [{"cell": f"Cell {i}", "seconds": s} for i, s in cells]}


def test_record_runtime_keeps_other_chapters_and_the_slowest_cells(tmp_path):
    path = tmp_path / "runtimes.json"
    tool.record_runtime("02_b", _run([(1, 3.0), (2, 40.0), (3, 0.5), (4, 12.0), (5, 7.0)]), path)
    tool.record_runtime("01_a", _run([(1, 1.0)]), path)
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert list(stored["chapters"]) == ["01_a", "02_b"]
    entry = stored["chapters"]["02_b"]
    assert entry["seconds"] == 64.5 and entry["cpu_seconds"] is None  # not measured in _run
    assert [c["cell"] for c in entry["slowest_cells"]] == ["Cell 2", "Cell 4", "Cell 5"]
    assert {"threads", "commit", "machine", "date", "load_average_1min"} <= set(entry["provenance"])

    tool.record_runtime("02_b", _run([(1, 2.0)]), path)  # a re-run replaces its chapter only
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["chapters"]["02_b"]["seconds"] == 4.0 and "01_a" in stored["chapters"]


def test_execute_notebook_times_cells_and_stores_no_timing(tmp_path, monkeypatch):
    # the kernel is "python" from PATH: this interpreter's
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# a chapter"),
        nbformat.v4.new_code_cell("raise SystemExit('skipped')", metadata={"tags": ["skip-execution"]}),
        nbformat.v4.new_code_cell("import time\ntime.sleep(0.3)\nprint(6 * 7)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)

    run = tool.execute_notebook(path, timeout=60)
    assert [c["cell"] for c in run["cells"]] == ["Cell 1"]  # nbval's name: code cells from 0
    assert run["cells"][0]["seconds"] >= 0.3 and run["seconds"] >= run["cells"][0]["seconds"]
    assert run["cells"][0]["cpu_seconds"] >= 0 and run["cpu_seconds"] == run["cells"][0]["cpu_seconds"]
    stored = nbformat.read(path, as_version=4)
    assert stored.cells[2].outputs[0]["text"] == "42\n"
    assert all("execution" not in cell.metadata for cell in stored.cells)


def test_stored_runtimes_name_every_chapter_with_provenance():
    path = ROOT / "book" / "results" / "runtimes.json"
    if not path.is_file():
        pytest.skip("no chapter runtimes recorded yet (tools/execute_notebooks.py writes them)")
    chapters = json.loads(path.read_text(encoding="utf-8"))["chapters"]
    known = {nb.stem for nb in (ROOT / "book").glob("*.ipynb")}
    assert set(chapters) <= known, f"runtimes of chapters that do not exist: {set(chapters) - known}"
    for name, entry in chapters.items():
        assert entry["seconds"] > 0 and entry["provenance"]["threads"] >= 1, name
