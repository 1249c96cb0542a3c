"""Write the API reference pages: one page per module of ``snnlab``, grouped by concept.

Run it after adding or removing a module, then commit what it writes::

    python book/api/generate_pages.py            # writes book/api/*.md and the toc's API part
    python book/api/generate_pages.py --check    # exit 1 if a page or a toc entry is missing

A module page holds only an ``automodule`` directive: Sphinx autodoc fills it from the
docstrings at build time, so the pages never go stale; only the list of modules does
(``tests/test_api_docs.py`` runs ``--check``). A module that no group below names lands
in "More modules" until someone files it under its concept.
"""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "book" / "api"
TOC = ROOT / "_toc.yml"
TOC_MARKER = "  - caption: API reference\n"

# (page name, title, what the group is for, modules in reading order)
GROUPS = [
    ("core", "Spiking core",
     "Neurons, surrogate gradients, encoders, time-distributed layers, attention blocks, the "
     "baseline network and spike counting: the pieces every chapter builds on (chapters 1, 2 "
     "and 5).",
     ["surrogates", "neurons", "compiled", "encoding", "layers", "attention", "models",
      "monitor"]),
    ("search", "Search spaces and methods",
     "Candidate operations, genotypes, and the three methods of the book: SNASNet's "
     "training-free search (chapter 3), spiking DARTS and MA-DARTS (chapters 4 and 5), SpikeDHS "
     "with DGS and searched time constants (chapter 6).",
     ["ops", "genotypes", "snasnet_space", "snasnet", "trainfree", "snasnet_search", "ranking",
      "darts_ops", "darts", "architect", "darts_search", "madarts", "spikedhs", "trellis",
      "spikedhs_search", "dgs", "temporal"]),
    ("framework", "One interface for every search",
     "The search-method registry, the one result type every search returns, the shared epoch "
     "loop of the differentiable searches, the accuracy-versus-spikes Pareto selection, "
     "chapter 7's side-by-side comparison and searches shared by many workers (Optuna).",
     ["search", "search.registry", "search.config", "search.result", "search.loop",
      "search.methods", "search.pareto", "search.provenance", "compare", "optuna_search"]),
    ("bench", "SpikeNAS-Bench",
     "The trained accuracies of SNASNet's Fw space read from a clone of SpikeNAS-Bench, the rank "
     "study at scale, the tabular searches and DARTS judged by the table (chapter 3).",
     ["bench", "bench_rank", "bench_search", "bench_darts"]),
    ("running", "Running experiments",
     "Data, training (on one process or several: torchrun + DDP) and its safeguards, run "
     "profiles, stored results, plots and drawings, and the command line.",
     ["data", "train", "distributed", "checkpoints", "guards", "safeio", "profiles", "smoke",
      "results", "viz", "drawing", "cli", "cli_common", "cli_search", "cli_bench", "cli_compare"]),
]
MORE = ("more", "More modules", "Modules not yet filed under a concept.")


def library_files() -> list[Path]:
    """The package's .py files: those under version control in a git checkout (a module
    not yet added gets no page, so a commit never lists one it lacks), else all on disk."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "snnlab"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):
        return sorted((ROOT / "snnlab").rglob("*.py"))
    return sorted(ROOT / name for name in listed if name.endswith(".py"))


def library_modules() -> list[str]:
    """Every module of snnlab as a dotted name below the package ('neurons', 'search.loop')."""
    names = []
    for path in library_files():
        parts = list(path.relative_to(ROOT / "snnlab").with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and parts[-1] != "__main__" and not any(p.startswith("_") for p in parts):
            names.append(".".join(parts))
    return names


def first_line(module: str) -> str:
    """The first line of a module's docstring, read without importing it."""
    base = ROOT / "snnlab" / Path(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().split("\n")[0].replace("|", "/")


def grouped_modules() -> list[tuple[str, str, str, list[str]]]:
    """GROUPS restricted to the modules that exist, plus MORE for the unfiled ones."""
    existing = library_modules()
    groups = [(key, title, blurb, [m for m in mods if m in existing])
              for key, title, blurb, mods in GROUPS]
    filed = {m for *_, mods in groups for m in mods}
    unfiled = [m for m in existing if m not in filed]
    if unfiled:
        groups.append((*MORE, unfiled))
    return [g for g in groups if g[3]]


def group_page(title: str, blurb: str, modules: list[str]) -> str:
    rows = "\n".join(f"| {{py:mod}}`snnlab.{m}` | {first_line(m)} |" for m in modules)
    return f"# {title}\n\n{blurb}\n\n| module | what it holds |\n|---|---|\n{rows}\n"


def page_name(module: str) -> str:
    """The page of a module: ``snnlab-neurons``, ``snnlab-search-loop`` (no dots: a dot would
    read as a file suffix in ``_toc.yml``)."""
    return "snnlab-" + module.replace(".", "-")


def module_page(module: str) -> str:
    return (f"# `snnlab.{module}`\n\n```{{eval-rst}}\n.. automodule:: snnlab.{module}\n```\n")


def toc_part(groups) -> str:
    lines = [TOC_MARKER, "    chapters:\n", "      - file: book/api/index\n"]
    for key, _, _, modules in groups:
        lines.append(f"      - file: book/api/{key}\n        sections:\n")
        lines += [f"          - file: book/api/{page_name(m)}\n" for m in modules]
    return "".join(lines)


def wanted_files() -> dict[Path, str]:
    """Every generated file and its text: group pages, module pages, the toc."""
    groups = grouped_modules()
    files = {}
    for key, title, blurb, modules in groups:
        files[API / f"{key}.md"] = group_page(title, blurb, modules)
        for m in modules:
            files[API / f"{page_name(m)}.md"] = module_page(m)
    toc = TOC.read_text(encoding="utf-8")
    if TOC_MARKER not in toc:
        raise SystemExit(f"{TOC} has no '{TOC_MARKER.strip()}' part to replace.")
    files[TOC] = toc[:toc.index(TOC_MARKER)] + toc_part(groups)
    return files


def stale_pages(files: dict[Path, str]) -> list[Path]:
    """Generated module or group pages of modules that no longer exist."""
    keep = set(files) | {API / "index.md"}
    return [p for p in API.glob("*.md") if p not in keep]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    files = wanted_files()
    differ = [p for p, text in files.items()
              if not p.is_file() or p.read_text(encoding="utf-8") != text]
    stale = stale_pages(files)
    if args.check:
        for p in differ:
            print(f"out of date: {p.relative_to(ROOT)}")
        for p in stale:
            print(f"no longer a module: {p.relative_to(ROOT)}")
        if differ or stale:
            print("run: python book/api/generate_pages.py", file=sys.stderr)
        return 1 if differ or stale else 0
    for p in differ:
        p.write_text(files[p], encoding="utf-8")
    for p in stale:
        p.unlink()
    print(f"{len(differ)} written, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
