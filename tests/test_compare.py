"""Chapter 7's study runner: summaries, resume from the rows file, one real (small) row."""
import dataclasses
import json
import math

import pytest

from snnlab.compare import Contender, compare, read_rows, run_contender, summarise
from snnlab.data import load_dataset
from snnlab.profiles import get_profile


def test_summarise_mean_and_sample_sd_per_contender():
    rows = [{"contender": "a", "method": "darts", "accuracy": x, "params": 10}
            for x in (0.5, 0.7, 0.9)] + [{"contender": "b", "method": "baseline",
                                          "accuracy": 0.4, "params": 3}]
    out = summarise(rows, metrics=("accuracy", "params"))
    assert list(out) == ["a", "b"]
    assert out["a"]["seeds"] == 3
    assert out["a"]["accuracy"]["mean"] == pytest.approx(0.7)
    assert out["a"]["accuracy"]["sd"] == pytest.approx(0.2)        # ddof = 1
    assert out["b"]["accuracy"]["sd"] is None                      # one seed: no spread
    assert out["a"]["params"]["sd"] == 0


def test_read_rows_drops_a_half_written_last_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"contender": "a", "seed": 0}) + "\n" + '{"contender": "b", "se')
    assert read_rows(path) == [{"contender": "a", "seed": 0}]
    assert read_rows(tmp_path / "missing.jsonl") == []


@pytest.fixture(scope="module")
def tiny():
    profile = dataclasses.replace(get_profile("tiny"), epochs=1, widths=(4, 8))
    return profile, load_dataset(profile.dataset, seed=0, val_fraction=profile.val_fraction)


def test_baseline_row_measures_the_retrained_network(tiny):
    profile, bundle = tiny
    row = run_contender(Contender("cnn", "baseline"), profile, bundle, seed=0, search_epochs=1)
    assert row["contender"] == "cnn" and row["seed"] == 0
    assert 0.0 <= row["accuracy"] <= 1.0 and row["nos_per_image"] > 0
    assert row["search_seconds"] == 0.0 and row["search_images"] == 0
    assert row["params"] > 0 and math.isfinite(row["energy_per_image_uJ"])


def test_rows_already_done_are_not_rerun(tiny, tmp_path):
    profile, _ = tiny
    rows_path = tmp_path / "rows.jsonl"
    done = {"contender": "cnn", "method": "baseline", "seed": 0, "accuracy": 0.123}
    rows_path.write_text(json.dumps(done) + "\n")
    rows = compare(profile, [Contender("cnn", "baseline")], seeds=(0,), rows_path=rows_path,
                   log=lambda line: None)
    assert rows == [done]                      # read back, nothing recomputed


def test_same_seed_same_row(tiny):
    profile, bundle = tiny
    a = run_contender(Contender("cnn", "baseline"), profile, bundle, seed=1, search_epochs=1)
    b = run_contender(Contender("cnn", "baseline"), profile, bundle, seed=1, search_epochs=1)
    assert a["accuracy"] == b["accuracy"] and a["nos_per_image"] == b["nos_per_image"]


def test_unknown_method_is_named(tiny):
    profile, bundle = tiny
    with pytest.raises(ValueError, match="nosuch"):
        run_contender(Contender("x", "nosuch"), profile, bundle, seed=0, search_epochs=1)


def test_verdict_needs_separated_intervals():
    from snnlab.compare import verdict
    summary = {"a": {"accuracy": {"mean": 0.9, "sd": 0.01}},
               "b": {"accuracy": {"mean": 0.8, "sd": 0.05}},
               "c": {"accuracy": {"mean": 0.88, "sd": 0.03}}}
    assert verdict(summary, "a", "b") == "higher"
    assert verdict(summary, "b", "a") == "lower"
    assert verdict(summary, "a", "c") == "within spread"     # 0.89 > 0.91? no: overlap


def test_mean_difference_and_its_standard_error():
    from snnlab.compare import mean_difference
    diff, se = mean_difference({"mean": 2.0, "sd": 3.0}, {"mean": 1.0, "sd": 4.0}, 9, 16)
    assert diff == pytest.approx(1.0)
    assert se == pytest.approx(math.sqrt(1.0 + 1.0))
    with pytest.raises(ValueError, match="n_a"):
        mean_difference({"mean": 0, "sd": 1}, {"mean": 0, "sd": 1}, 0, 1)
