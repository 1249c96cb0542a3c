"""kill -9 at random moments, then resume: the result equals an uninterrupted run and no
temp file is left (the bar of issue 11).

A training run and a DARTS search, each on the tiny profile through the command line,
are killed with SIGKILL three times at seeded random moments (during imports, an
epoch, a checkpoint or the final write; the second kill at a random moment after a
new checkpoint, so that resuming is surely exercised), and restarted each time with
``--resume`` once a checkpoint exists. The final JSON must equal that of a run never interrupted
(times aside) and the folder must hold only the checkpoint and the result.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.name != "posix", reason="kill -9 is POSIX")]

TRAIN = ["train", "--profile", "tiny", "--epochs", "3", "--device", "cpu"]
DARTS = ["search", "darts", "--profile", "tiny", "--epochs", "3", "--device", "cpu",
         "--set", "layers=2", "--set", "C=4", "--set", "max_images=256"]
KILLS = 3


def _env() -> dict:
    # one thread: the resumed run must compute bit for bit what the reference computed
    return {**os.environ, "OMP_NUM_THREADS": "1", "SNNLAB_PROGRESS": "0",
            "SNNLAB_PROFILE": "tiny"}


def _command(argv, folder: Path, resume: bool) -> list:
    return ([sys.executable, "-m", "snnlab", *argv, "--checkpoint", str(folder / "run.pt"),
             "--out", str(folder / "result.json")] + (["--resume"] if resume else []))


def _run_to_end(argv, folder: Path) -> float:
    """Run (resuming if a checkpoint exists) until it exits; return its wall time."""
    start = time.perf_counter()
    done = subprocess.run(_command(argv, folder, (folder / "run.pt").exists()), cwd=folder,
                          env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - start


def _checkpoint_stamp(folder: Path):
    path = folder / "run.pt"
    return path.stat().st_mtime_ns if path.exists() else None


def _kill_at(argv, folder: Path, delay: float, after_checkpoint: bool = False) -> bool:
    """Start a (resumed) run and SIGKILL it after ``delay`` s (counted from its first new
    checkpoint if ``after_checkpoint``); False if it ended first."""
    before = _checkpoint_stamp(folder)
    process = subprocess.Popen(_command(argv, folder, before is not None), cwd=folder,
                               env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while after_checkpoint and process.poll() is None and _checkpoint_stamp(folder) == before:
        time.sleep(0.02)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True
    assert process.returncode == 0, process.stderr.read().decode()[-3000:]
    return False


def _comparable(result: dict) -> dict:
    """A result without what differs between runs: times, the command, the date."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items()
                    if "seconds" not in k
                    and k not in ("provenance", "command", "date", "commit")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj
    return strip(result)


def _killed_three_times_equals_uninterrupted(argv, tmp_path: Path, seed: int) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reference.mkdir()
    killed.mkdir()
    wall = _run_to_end(argv, reference)
    rng = random.Random(seed)
    kills = 0
    while kills < KILLS:
        # the second kill lands after a checkpoint, so a later run surely resumes one
        after_checkpoint = kills == 1
        delay = rng.uniform(0.0, 0.3 if after_checkpoint else 0.9) * wall
        if _kill_at(argv, killed, delay, after_checkpoint):
            kills += 1
        else:                   # it finished first: start over with a fresh folder
            for path in killed.iterdir():
                path.unlink()
    _run_to_end(argv, killed)
    expected = json.loads((reference / "result.json").read_text())
    got = json.loads((killed / "result.json").read_text())
    assert _comparable(got) == _comparable(expected)
    assert sorted(p.name for p in killed.iterdir()) == ["result.json", "run.pt"]


def test_training_killed_three_times_resumes_to_the_same_result(tmp_path):
    _killed_three_times_equals_uninterrupted(TRAIN, tmp_path, seed=11)


def test_darts_search_killed_three_times_resumes_to_the_same_result(tmp_path):
    _killed_three_times_equals_uninterrupted(DARTS, tmp_path, seed=12)
