"""The API reference (book/api/) lists every module of snnlab, and its Sphinx helpers work.

The pages only hold ``automodule`` directives (autodoc fills them from the docstrings when
the book is built, see test_book.py's build test); what can go stale is the list of modules,
which ``book/api/generate_pages.py`` writes into the pages and into ``_toc.yml``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pages = _load("generate_pages", ROOT / "book" / "api" / "generate_pages.py")


def test_every_module_has_an_api_page_listed_in_the_toc():
    files = pages.wanted_files()
    out_of_date = [str(p.relative_to(ROOT)) for p, text in files.items()
                   if not p.is_file() or p.read_text(encoding="utf-8") != text]
    stale = [str(p.relative_to(ROOT)) for p in pages.stale_pages(files)]
    assert not out_of_date and not stale, (
        f"API pages out of date {out_of_date}, pages of removed modules {stale}: "
        "run `python book/api/generate_pages.py` and commit")


def test_module_pages_name_real_modules_and_groups_hold_each_module_once():
    modules = pages.library_modules()
    assert {"neurons", "darts", "train"} <= set(modules)
    grouped = [m for *_, mods in pages.grouped_modules() for m in mods]
    assert sorted(grouped) == sorted(modules), "a module is in no group or in two"
    text = pages.module_page("neurons")
    assert ".. automodule:: snnlab.neurons" in text


def test_toc_has_an_api_part_after_the_chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    captions = [part["caption"] for part in toc["parts"]]
    assert captions[-1] == "API reference"
    api = toc["parts"][-1]["chapters"]
    assert api[0]["file"] == "book/api/index"


def test_sphinx_helper_reads_prose_as_text_and_names_as_references():
    ext = _load("snnlab_api", ROOT / "book" / "_ext" / "snnlab_api.py")
    assert ext.is_prose_word("exc", "unreadable")          # napoleon read prose as a type
    assert not ext.is_prose_word("exc", "ValueError")
    assert not ext.is_prose_word("class", "tuple")          # a builtin stays a reference
    assert ext.PYTHON_NAME.fullmatch("snnlab.search.SearchResult")
    assert not ext.PYTHON_NAME.fullmatch("ValueError naming the flag")


def test_bibliography_entries_link_somewhere_and_are_labelled_author_year():
    from pybtex.database import parse_file

    bib = _load("snnlab_bib", ROOT / "book" / "_ext" / "snnlab_bib.py")
    entries = parse_file(str(ROOT / "book" / "references.bib")).entries
    unlinked = [key for key, e in entries.items()
                if not {"doi", "url", "eprint"} & {f.lower() for f in e.fields}]
    assert not unlinked, f"entries without a DOI, URL or arXiv id: {unlinked}"
    assert bib.author_year_label(entries["kim2022snasnet"]) == "Kim et al., 2022"
    assert bib.author_year_label(entries["horowitz2014energy"]) == "Horowitz, 2014"
    assert bib.author_year_label(entries["sun2025spikenasbench"]) == "Sun et al., 2025"
    labels = list(bib.AuthorYearLabelStyle().format_labels(
        [entries["liu2019autodeeplab"], entries["liu2019darts"]]))
    assert labels == ["Liu et al., 2019a", "Liu et al., 2019b"]
