"""Structure and consistency of the book, and the HTML build.

The chapters themselves are executed and their outputs compared by nbval in the same
pytest run (see pyproject.toml); these tests check everything around them:

* every page in ``_toc.yml`` exists, and every notebook in ``book/`` is in the toc;
* every chapter is stored executed, in order, without errors;
* the first code cell of every chapter is the Colab install cell, tagged to be skipped,
  pointing at ``repository.url`` of ``_config.yml`` (written by ``tools/sync_colab.py``);
* every ``{cite}`` key used in the book is defined in ``book/references.bib``;
* the HTML book builds with warnings as errors, from the stored outputs (``slow``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def _load_sync_colab():
    spec = importlib.util.spec_from_file_location("sync_colab", ROOT / "tools" / "sync_colab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync_colab = _load_sync_colab()


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def _toc_docs() -> list[str]:
    """Document names in _toc.yml, in order (e.g. 'book/intro'), root first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key))

    for key in ("parts", "chapters", "sections"):
        walk(toc.get(key))
    return docs


def _doc_path(doc: str) -> Path | None:
    """The source file of a toc document name, with or without its suffix."""
    path = ROOT / doc
    if path.suffix in (".md", ".ipynb"):
        return path if path.is_file() else None
    found = [p for p in (path.with_suffix(".md"), path.with_suffix(".ipynb")) if p.is_file()]
    return found[0] if len(found) == 1 else None


NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
NB_IDS = [nb.name for nb in NOTEBOOKS]


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


# ------------------------------------------------------------------ configuration and toc


def test_config_fails_the_build_on_errors_and_times_out_cells():
    execute = _config()["execute"]
    assert execute["execute_notebooks"] == "cache"
    assert execute["allow_errors"] is False
    assert execute["raise_on_error"] is True
    assert 0 < execute["timeout"] <= 600


def test_config_has_one_repository_url_and_a_colab_button():
    config = _config()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", sync_colab.repository_url())
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["repository"]["path_to_book"] == ""
    for name in config["bibtex_bibfiles"]:
        assert (ROOT / name).is_file(), f"bibtex_bibfiles lists {name}, which does not exist"


def test_toc_starts_with_the_preface_then_the_chapters():
    docs = _toc_docs()
    assert docs[0] == "book/intro"
    assert docs[1:3] == ["book/01_spiking_neurons", "book/02_training_an_snn"]
    assert len(docs) == len(set(docs)), f"a page is listed twice in _toc.yml: {docs}"


@pytest.mark.parametrize("doc", _toc_docs())
def test_toc_entry_exists(doc):
    assert _doc_path(doc) is not None, (
        f"_toc.yml lists {doc!r} but there is no single {doc}.md or {doc}.ipynb"
    )


def test_every_notebook_is_in_the_toc():
    listed = {str(Path(doc).with_suffix("")) for doc in _toc_docs()}
    missing = [nb.name for nb in NOTEBOOKS if str(nb.relative_to(ROOT).with_suffix("")) not in listed]
    assert not missing, f"notebooks in book/ missing from _toc.yml (they would not be built): {missing}"


# ------------------------------------------------------------------ chapters stored executed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_chapter_is_stored_executed_in_order(path):
    nb = _notebook(path)
    assert nb.get("nbformat") == 4
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", (
        "the kernelspec should be 'python3' (what Colab and a plain Jupyter install provide)"
    )
    counts = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        if "skip-execution" in _tags(cell):
            assert not cell.get("outputs"), f"cell {i} is skipped by the build but has stored outputs"
            continue
        assert cell.get("execution_count") is not None, (
            f"code cell {i} of {path.name} has not been executed: run `make notebooks` and commit"
        )
        counts.append(cell["execution_count"])
        if "raises-exception" not in _tags(cell):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            assert not errors, f"code cell {i} of {path.name} stored an error: {errors[0].get('ename')}"
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name} was not executed top to bottom in one fresh kernel "
        f"(execution counts {counts}); run `make notebooks` and commit"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NB_IDS)
def test_first_code_cell_is_the_colab_install_cell(path):
    _, cell = sync_colab.first_code_cell(_notebook(path))
    assert cell is not None, f"{path.name} has no code cell"
    url = sync_colab.repository_url()
    assert _source(cell) == sync_colab.colab_cell_source(url), (
        f"the first code cell of {path.name} is not the Colab install cell for {url}; "
        "run `python tools/sync_colab.py`"
    )
    assert url in _source(cell)
    for tag in sync_colab.COLAB_TAGS:
        assert tag in _tags(cell), f"the Colab install cell of {path.name} lacks the tag {tag!r}"


def test_sync_colab_inserts_then_updates_the_install_cell(tmp_path):
    path = tmp_path / "chapter.ipynb"
    nb = {
        "cells": [
            {"cell_type": "markdown", "id": "title", "metadata": {}, "source": ["# A chapter"]},
            {"cell_type": "code", "id": "code", "execution_count": 1, "metadata": {},
             "outputs": [], "source": ["x = 1"]},
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb), encoding="utf-8")

    assert sync_colab.sync_notebook(path, "https://github.com/a/b") is True
    cells = _notebook(path)["cells"]
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code"]
    assert _source(cells[1]) == sync_colab.colab_cell_source("https://github.com/a/b")
    assert set(sync_colab.COLAB_TAGS) <= set(_tags(cells[1]))
    assert cells[1]["execution_count"] is None and cells[1]["id"] == "colab-install"
    assert _source(cells[2]) == "x = 1"

    assert sync_colab.sync_notebook(path, "https://github.com/a/b") is False  # idempotent
    assert sync_colab.sync_notebook(path, "https://github.com/c/d", write=False) is True
    assert "git+https://github.com/a/b" in _source(_notebook(path)["cells"][1])  # --check writes nothing
    assert sync_colab.sync_notebook(path, "https://github.com/c/d") is True
    cells = _notebook(path)["cells"]
    assert len(cells) == 3 and 'git+https://github.com/c/d"' in _source(cells[1])


# ------------------------------------------------------------------ bibliography

CITE = re.compile(r"\{(?:foot)?cite(?::\w+)?\}`([^`]+)`")


def _citations() -> dict[str, set[str]]:
    """Cited keys per page, from the markdown pages and the notebooks' markdown cells."""
    cited = {}
    for doc in _toc_docs():
        path = _doc_path(doc)
        if path is None:
            continue
        if path.suffix == ".ipynb":
            text = "\n".join(_source(c) for c in _notebook(path)["cells"] if c["cell_type"] == "markdown")
        else:
            text = path.read_text(encoding="utf-8")
        cited[path.name] = {key.strip() for group in CITE.findall(text) for key in group.split(",")}
    return cited


def test_bibliography_parses_and_every_citation_is_defined():
    from pybtex.database import parse_file  # comes with jupyter-book (sphinxcontrib-bibtex)

    keys = set(parse_file(str(ROOT / "book" / "references.bib")).entries.keys())
    cited = _citations()
    assert cited.get("intro.md"), "the preface cites nothing"
    missing = {page: sorted(found - keys) for page, found in cited.items() if found - keys}
    assert not missing, f"cited but not in book/references.bib: {missing}"


# ------------------------------------------------------------------ the HTML build


@pytest.mark.slow
def test_html_book_builds_with_warnings_as_errors(book_build):
    """Build the HTML from the stored outputs (nbval executes the chapters in this run;
    the build is tests/conftest.py's ``book_build``, shared with the browser test)."""
    config, log = book_build.config, book_build.log
    assert config["execute"]["execute_notebooks"] == "off"
    assert book_build.returncode == 0, f"jupyter-book build failed:\n{log}"

    html = book_build.html
    assert (html / "index.html").is_file(), f"no index.html although the build exited 0:\n{log}"
    for doc in _toc_docs():
        page = html / f"{Path(doc).with_suffix('')}.html"
        assert page.is_file() and page.stat().st_size > 0, f"missing page {page.relative_to(html)}"

    owner_repo = sync_colab.repository_url().removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    for nb in NOTEBOOKS:
        page = (html / "book" / nb.with_suffix(".html").name).read_text(encoding="utf-8")
        colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/book/{nb.name}"
        assert colab in page, f"no Colab launch button to {colab} on {nb.stem}.html"
