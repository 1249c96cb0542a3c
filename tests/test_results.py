"""Stored results: read from a folder, the checkout, or a clear error."""
import json

import pytest

from snnlab import results
from snnlab.results import load_result


def test_reads_from_the_given_folder(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"a": 1, "provenance": {}}))
    assert load_result("x.json", folder=tmp_path) == {"a": 1, "provenance": {}}


def test_stored_results_of_the_book_have_provenance():
    for name in ("spikenas_rank.json", "spikenas_search.json"):
        assert "commit" in load_result(name)["provenance"]


def test_missing_result_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_URL", "http://127.0.0.1:9/")   # nothing listens
    with pytest.raises(FileNotFoundError, match="not found in .*missing.json"):
        load_result("missing.json", folder=tmp_path)


@pytest.mark.parametrize("name", ["", "../x.json", "a/b.json", ".hidden"])
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError, match="plain file name"):
        load_result(name)


def test_results_are_strict_json_nan_written_as_null(tmp_path):
    """Stored results must parse in any JSON reader (no NaN/Infinity tokens)."""
    from snnlab.cli import _write_json_atomic
    path = tmp_path / "r.json"
    _write_json_atomic(path, {"tau": float("nan"), "xs": [1.0, float("inf")], "n": {"m": 2}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"tau": None, "xs": [1.0, None], "n": {"m": 2}}


def test_stored_book_results_are_strict_json():
    from pathlib import Path
    for path in sorted(Path(__file__).resolve().parents[1].glob("book/results/*.json")):
        json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path.name}: {c}"))
