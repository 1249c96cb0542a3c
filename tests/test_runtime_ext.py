"""The book extension that shows each chapter's measured runtime under its title."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import snnlab_runtime  # noqa: E402


def test_sentence_leads_with_cpu_seconds_and_names_its_measurement():
    entry = {"seconds": 46.2, "cpu_seconds": 38.4,
             "provenance": {"profile": "tiny", "threads": 1, "load_average_1min": 5.6,
                            "date": "2026-12-01T15:56:18+00:00", "commit": "69b78a7"}}
    assert snnlab_runtime.runtime_sentence(entry) == (
        "Runtime on the tiny profile: 38 s of CPU on 1 thread (46 s of wall time at load "
        "5.6), measured 2026-12-01 at commit 69b78a7.")


def test_only_chapters_get_a_line_and_every_chapter_has_a_measurement():
    assert snnlab_runtime.CHAPTER.search("book/04_darts").group(1) == "04_darts"
    assert snnlab_runtime.CHAPTER.search("book/api/snnlab-neurons") is None
    assert snnlab_runtime.CHAPTER.search("book/intro") is None
    chapters = {p.stem for p in Path(snnlab_runtime.RUNTIMES).parents[1].glob("0*.ipynb")}
    assert chapters <= set(snnlab_runtime._read_runtimes())
