"""Faults that used to lose work: each output path is checked before the run, a failed
last write keeps the result elsewhere, and temp files of killed runs are swept
(issue 11, "work lost")."""
import errno
import hashlib
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pytest

import snnlab.cli as cli
from snnlab import data, safeio
from snnlab.cli import main
from snnlab.safeio import (OutputNotWritten, atomic_file, check_output_paths,
                           sweep_stale_temps, write_or_fallback)
from snnlab.train import save_checkpoint
from test_data import write_cifar

TRAIN = ["train", "--profile", "tiny", "--epochs", "1", "--device", "cpu"]


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.delenv("SNNLAB_PROFILE", raising=False)
    monkeypatch.setenv("SNNLAB_PROGRESS", "0")


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command gets as far as loading its data."""
    def refuse(*args, **kwargs):
        raise AssertionError("the command started its work despite a bad output path")
    monkeypatch.setattr(cli, "load_dataset", refuse)


def _read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` refuse new files (chmod does not stop root, so patch mkstemp)."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(safeio.tempfile, "mkstemp", mkstemp)


# ----------------------------------------------------------------------------- checked first

def test_out_in_a_read_only_folder_is_refused_before_the_run(tmp_path, monkeypatch, capsys,
                                                              quiet, no_work):
    locked = tmp_path / "locked"
    locked.mkdir()
    _read_only(monkeypatch, locked)
    assert main(TRAIN + ["--out", str(locked / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "refuses new files" in err and "nothing has run yet" in err


def test_out_onto_a_directory_is_refused(tmp_path, capsys, quiet, no_work):
    assert main(TRAIN + ["--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_out_onto_the_genotype_file_is_refused_and_the_input_kept(tmp_path, capsys, quiet,
                                                                  no_work):
    genotype = tmp_path / "search.json"
    genotype.write_text('{"method": "random"}')
    assert main(TRAIN + ["--genotype", str(genotype), "--out", str(genotype)]) == 2
    assert "is the file given as --genotype" in capsys.readouterr().err
    assert genotype.read_text() == '{"method": "random"}'


def test_out_and_checkpoint_on_one_file_are_refused(tmp_path, capsys, quiet, no_work):
    same = tmp_path / "run.pt"
    assert main(TRAIN + ["--checkpoint", str(same), "--out", str(same)]) == 2
    assert "same file" in capsys.readouterr().err


def test_existing_checkpoint_without_resume_is_not_overwritten(tmp_path, capsys, quiet,
                                                               no_work):
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"a half-done run")
    assert main(TRAIN + ["--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err
    assert checkpoint.read_bytes() == b"a half-done run"


def test_missing_output_folders_are_fine_when_an_ancestor_is_writable(tmp_path):
    check_output_paths({"--out": tmp_path / "new" / "deeper" / "r.json"})
    assert not (tmp_path / "new").exists()                 # nothing created by the check
    assert os.listdir(tmp_path) == []                       # and no probe left


# ----------------------------------------------------------------------------- last write fails

def test_failed_final_write_keeps_the_result_and_says_where(tmp_path, monkeypatch, capsys,
                                                            quiet):
    out = tmp_path / "r.json"
    spare = tmp_path / "spare"
    spare.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    real = cli.write_json_atomic

    def disk_full_at_out(path, obj):
        if Path(path) == out:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, obj)

    monkeypatch.setattr(cli, "write_json_atomic", disk_full_at_out)
    assert main(TRAIN + ["--out", str(out)]) == 1
    captured = capsys.readouterr()
    printed = json.loads(captured.out)                       # the summary still printed
    [kept] = list(spare.glob("snnlab-r-*.json"))
    assert json.loads(kept.read_text())["accuracy"] == printed["accuracy"]
    assert str(kept) in captured.err and "disk is full" in captured.err
    assert not out.exists()


def test_write_or_fallback_reports_when_both_writes_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def always_fails(path):
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(OutputNotWritten, match="the result is lost") as info:
        write_or_fallback(tmp_path / "r.json", always_fails)
    assert info.value.fallback is None


# ----------------------------------------------------------------------------- temp files

def test_stale_temp_files_of_a_killed_write_are_swept(tmp_path):
    target = tmp_path / "run.pt"
    stale = tmp_path / ".run.pt.abc123.tmp"               # left by a kill -9: nobody holds it
    stale.write_bytes(b"half")
    other = tmp_path / ".other.pt.abc123.tmp"             # another target's: not ours to sweep
    other.write_bytes(b"half")
    save_checkpoint(target, {"epoch": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.abc123.tmp", "run.pt"]


def test_a_temp_file_being_written_is_not_swept(tmp_path):
    target = tmp_path / "r.json"
    with atomic_file(target, "w") as f:                   # a live writer holds its lock
        f.write("{}")
        [live] = [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
        assert sweep_stale_temps(target) == []
        assert live.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def _cifar_tarball(tmp_path: Path, name: str):
    """A small CIFAR-10 archive in the official layout, and its MD5."""
    source = tmp_path / "src"
    write_cifar(source, "cifar10")
    tar = tmp_path / name
    with tarfile.open(tar, "w:gz") as t:
        t.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return tar, hashlib.md5(tar.read_bytes()).hexdigest()


def test_stale_download_part_and_extraction_folder_are_swept(tmp_path):
    tar, md5 = _cifar_tarball(tmp_path, "cifar-10-python.tar.gz")
    root = tmp_path / "root"
    root.mkdir()
    (root / ".cifar-10-python.tar.gz.x1y2.part").write_bytes(b"170 MB, cut short")
    stale_extract = root / ".extract-old"
    stale_extract.mkdir()
    (stale_extract / ".lock").write_bytes(b"")
    data.download_cifar("cifar10", root, url=tar.as_uri(), md5=md5)
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py",
                                                      "cifar-10-python.tar.gz"]


def test_damaged_cached_archive_is_deleted_and_fetched_again(tmp_path):
    tar, md5 = _cifar_tarball(tmp_path, "good.tar.gz")
    root = tmp_path / "root"
    root.mkdir()
    (root / "good.tar.gz").write_bytes(tar.read_bytes()[:100])        # truncated copy
    with pytest.warns(UserWarning, match="damaged .* deleted"):
        folder = data.download_cifar("cifar10", root, url=tar.as_uri(), md5=md5)
    assert folder.is_dir()
    assert hashlib.md5((root / "good.tar.gz").read_bytes()).hexdigest() == md5


def test_json_lines_survive_a_write_cut_by_a_kill(tmp_path):
    """A killed append leaves a cut last line: only that record is lost, later ones are kept."""
    from snnlab.safeio import append_json_line, read_json_lines
    path = tmp_path / "rows.jsonl"
    append_json_line(path, {"n": 1})
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"n": 2, "cut')                  # the kill, mid-record
    append_json_line(path, {"n": 3, "x": float("nan")})
    assert read_json_lines(path) == [{"n": 1}, {"n": 3, "x": None}]
    assert len(path.read_text().splitlines()) == 3      # no blank line added after a whole one
    assert read_json_lines(tmp_path / "none.jsonl") == [] and read_json_lines(None) == []
