"""Show each chapter's measured runtime under its title.

``tools/execute_notebooks.py`` records, for every chapter it executes, the wall seconds,
the kernel's CPU seconds and how they were measured in ``book/results/runtimes.json``.
This extension reads that file when Sphinx has parsed a chapter (``book/NN_name``) and
inserts one line below the chapter's title, e.g. "Runtime on the tiny profile: 38 s of
CPU on 1 thread (46 s of wall time at load 5.6), measured 2026-12-01 at commit 69b78a7."
A chapter with no entry gets no line: the page never shows a number that was not measured.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes

RUNTIMES = Path(__file__).resolve().parents[1] / "results" / "runtimes.json"
CHAPTER = re.compile(r"(?:^|/)book/(\d\d_[\w-]+)$")


def _read_runtimes() -> dict:
    try:
        return json.loads(RUNTIMES.read_text(encoding="utf-8")).get("chapters", {})
    except (OSError, ValueError):
        return {}


def runtime_sentence(entry: dict) -> str:
    """The line shown under a chapter's title, from its ``runtimes.json`` entry.

    CPU seconds lead: on a shared machine wall time grows with the load, CPU time hardly
    does, so the CPU figure is what the chapter costs on an idle core."""
    prov = entry.get("provenance", {})
    threads = prov.get("threads")
    where = f" on {threads} thread{'s' if threads != 1 else ''}" if threads else ""
    load = prov.get("load_average_1min")
    wall = f"{entry['seconds']:.0f} s of wall time" + (f" at load {load:.1f}" if load else "")
    when = f", measured {prov['date'][:10]}" if prov.get("date") else ""
    commit = f" at commit {prov['commit']}" if prov.get("commit") else ""
    return (f"Runtime on the {prov.get('profile', 'tiny')} profile: "
            f"{entry['cpu_seconds']:.0f} s of CPU{where} ({wall}){when}{commit}.")


def add_runtime(app, doctree) -> None:
    """After a chapter is parsed: put its runtime line right below its title."""
    match = CHAPTER.search(app.env.docname)
    if match is None:
        return
    entry = _read_runtimes().get(match.group(1))
    if not entry:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not section.children:
        return
    line = nodes.paragraph(classes=["snnlab-runtime"])
    line += nodes.emphasis(text=runtime_sentence(entry))
    section.insert(1, line)                      # children[0] is the title


def setup(app):
    app.connect("doctree-read", add_runtime)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
