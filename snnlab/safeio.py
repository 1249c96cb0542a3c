"""Files that survive faults: atomic writes, stale temp files, output paths checked early.

Three rules keep a run's work from being lost or silently overwritten:

1. **Atomic writes** (:func:`atomic_path`, :func:`atomic_file`, :func:`write_json_atomic`).
   A file is written to a temp file beside its target, ``.<name>.<random>.tmp``, flushed
   to disk and moved into place with ``os.replace``: a reader (or a resumed run)
   sees the old file or the new one, never half of one. While it is written the
   temp file holds an exclusive ``flock``; the kernel drops the lock when the
   process dies, even by ``kill -9``.
2. **Stale temp files are swept** (:func:`sweep_stale_temps`, and
   :func:`sweep_stale_temp_dirs` for :func:`temp_dir` folders). Before writing a
   target, temp files of that target that no live process holds locked (left by a
   killed run) are deleted; so are ``.part`` downloads. Where ``fcntl`` is missing
   (Windows) a temp file counts as stale after :data:`STALE_AFTER_S` seconds.
3. **Output paths are checked before the work starts** (:func:`check_output_paths`):
   a folder that cannot be written, a path that is a directory, an output that is one
   of the inputs, two outputs on one file, or a checkpoint that would silently be
   restarted are refused with the fix, before hours of search or training. If a
   final write still fails (the disk filled up meanwhile), :func:`write_or_fallback`
   saves the result in the temp folder and says where (:class:`OutputNotWritten`).

Example::

    check_output_paths({"--out": "r.json"}, inputs={"--genotype": "g.json"})
    ...                                     # the long run
    write_or_fallback("r.json", lambda p: write_json_atomic(p, result), "--out")
"""
from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union

try:                                    # POSIX: lock temp files while they are written
    import fcntl
except ImportError:                     # Windows: fall back to the age of a temp file
    fcntl = None

__all__ = ["atomic_path", "atomic_file", "write_json_atomic", "strict_json", "read_json",
           "append_json_line", "read_json_lines",
           "sweep_stale_temps", "temp_dir", "sweep_stale_temp_dirs", "check_output_paths",
           "write_or_fallback", "OutputNotWritten", "describe_os_error", "STALE_AFTER_S"]

PathLike = Union[str, os.PathLike]
STALE_AFTER_S = 24 * 3600        # without fcntl: a temp file this old belongs to a dead run
TEMP_SUFFIXES = (".tmp", ".part")


class OutputNotWritten(RuntimeError):
    """The final write of a result failed; the result was saved at ``fallback`` instead."""

    def __init__(self, message: str, fallback: Optional[Path]):
        super().__init__(message)
        self.fallback = fallback


# ----------------------------------------------------------------------------- temp files

def _lock(f) -> None:
    """Hold an exclusive lock on an open temp file or fd (released at close or process death)."""
    if fcntl is None:
        return
    try:
        fcntl.flock(f if isinstance(f, int) else f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise
    except OSError:     # a file system without locks (some network mounts): write unlocked;
        pass            # _is_stale cannot lock it either, so it is never swept as stale


def _is_stale(temp: Path) -> bool:
    """True when no live process is writing ``temp``: unlocked (POSIX) or old (elsewhere)."""
    if fcntl is None:
        try:
            return time.time() - temp.stat().st_mtime > STALE_AFTER_S
        except OSError:
            return False
    try:
        with open(temp, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True                  # we got the lock: its writer is gone
    except BlockingIOError:
        return False                     # a live process is writing it
    except OSError:
        return False                     # vanished meanwhile, or unreadable: leave it


def sweep_stale_temps(target: PathLike, suffixes: tuple = TEMP_SUFFIXES) -> list:
    """Delete the temp files of ``target`` (``.<name>.*.tmp`` / ``.part``) left by dead runs.

    Args:
        target: the file whose temp files to look for (in its folder).
        suffixes: temp-file endings to consider.
    Returns:
        the removed paths (empty when there were none, or the folder does not exist).
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    removed = []
    for suffix in suffixes:
        for temp in target.parent.glob(f".{_glob_escape(target.name)}.*{suffix}"):
            if temp.is_file() and _is_stale(temp):
                temp.unlink(missing_ok=True)
                removed.append(temp)
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextmanager
def temp_dir(parent: PathLike, prefix: str) -> Iterator[Path]:
    """A temp folder in ``parent``, kept alive by a locked ``.lock`` file, removed at exit.

    Folders of the same ``prefix`` left by killed runs are swept first. Used to extract
    an archive beside its final place and move the result in with ``os.replace``.
    """
    parent = Path(parent)
    sweep_stale_temp_dirs(parent, prefix)
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    lock = open(path / ".lock", "wb")
    try:
        _lock(lock)
        yield path
    finally:
        lock.close()
        shutil.rmtree(path, ignore_errors=True)


def sweep_stale_temp_dirs(parent: PathLike, prefix: str) -> list:
    """Remove folders ``parent/<prefix>*`` of :func:`temp_dir` whose writer is gone."""
    removed = []
    for folder in Path(parent).glob(f"{_glob_escape(prefix)}*"):
        lock = folder / ".lock"
        if not folder.is_dir():
            continue
        if lock.is_file():
            stale = _is_stale(lock)
        else:                           # being created right now, or from an old version
            stale = time.time() - folder.stat().st_mtime > 60
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def describe_os_error(err: OSError, path: PathLike, what: str = "file") -> str:
    """One sentence naming ``path``, the cause and the fix of a failed write."""
    cause = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        fix = "the disk is full: free some space or write to another disk"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "the folder is not writable: choose a folder you can write to"
    else:
        fix = "check the path and the disk"
    return f"could not write {what} {str(path)!r} ({cause}); {fix}"


def _reworded(err: OSError, path: Path, what: str) -> OSError:
    """The same kind of OSError (same errno, so PermissionError stays one), reworded."""
    message = describe_os_error(err, path, what)
    return OSError(err.errno, message) if err.errno is not None else OSError(message)


@contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp", what: str = "file") -> Iterator[Path]:
    """Yield a locked temp path beside ``path`` for the block to write; then move it there.

    Stale temp files of ``path`` are swept first. On a clean exit the temp file is
    flushed to disk (``fsync``) and renamed onto ``path`` (``os.replace``); if the
    block raises, it is removed and ``path`` keeps its old content. An ``OSError`` (a
    full disk, a read-only folder) is re-raised with the same errno and a message that
    names ``path``, the cause and the fix; ``what`` names the file ("checkpoint").
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(path)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as err:
        raise _reworded(err, path, what) from err
    tmp = Path(tmp_name)
    try:
        _lock(fd)
        yield tmp
        os.fsync(fd)                     # fsync is per file: it covers writes via other fds
        if fcntl is not None:            # rename while locked: no sweeper can take it
            os.replace(tmp, path)
        os.close(fd)
        fd = None
        if fcntl is None:                # Windows cannot rename an open file
            os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _reworded(err, path, what) from err
        raise
    finally:
        if fd is not None:
            os.close(fd)


@contextmanager
def atomic_file(path: PathLike, mode: str = "wb", suffix: str = ".tmp",
                what: str = "file") -> Iterator[Any]:
    """:func:`atomic_path` with the temp file opened in ``mode`` (text modes use UTF-8).

    Example::

        with atomic_file("run.pt", what="checkpoint") as f:
            torch.save(state, f)
    """
    with atomic_path(path, suffix, what) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f


def strict_json(obj: Any) -> Any:
    """``obj`` with every float NaN/inf replaced by None: strict JSON that every parser reads."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_json_atomic(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as strict, indented JSON (NaN/inf as null) with :func:`atomic_file`."""
    with atomic_file(path, "w", what="JSON file") as f:
        json.dump(strict_json(obj), f, indent=2, allow_nan=False)
        f.write("\n")


def read_json(path: PathLike, what: str = "JSON file", fix: str = "") -> Any:
    """Parse a JSON file; a missing or invalid file raises an error naming it.

    Args:
        path: the file.
        what: what the file should be, for the message ("search result").
        fix: a sentence saying how to get a good file.
    Raises:
        FileNotFoundError: no such file. ValueError: not valid JSON (line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist. {fix}".strip())
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} {str(path)!r} is not a text (UTF-8 JSON) file ({err}). "
                         f"{fix}".strip()) from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON: {err.msg} at line {err.lineno}, "
                         f"column {err.colno} (an interrupted copy or a hand edit?). "
                         f"{fix}".strip()) from err


def append_json_line(path: PathLike, record: Any) -> None:
    """Append ``record`` as one line of strict JSON to a JSON-lines file, on disk on return.

    The resumable studies (rank study, bench DARTS, chapter 7's comparison) keep one line
    per finished unit of work. A run killed mid-write leaves a cut last line; the next
    record starts on a fresh line so that only the cut one is lost (see
    :func:`read_json_lines`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        cut = False
        if f.seek(0, os.SEEK_END) > 0:         # the file so far ends mid-line?
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        line = json.dumps(strict_json(record), allow_nan=False) + "\n"
        f.write((("\n" if cut else "") + line).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_json_lines(path: Optional[PathLike]) -> list:
    """The records of a JSON-lines file, in order; a line cut by a killed write is skipped.
    No file (or ``path`` None): an empty list."""
    if path is None or not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:           # the cut line of an interrupted write
            continue
    return records


# ----------------------------------------------------------------------------- output paths

def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_writable_folder(flag: str, path: Path) -> None:
    """Raise unless a file can be created at ``path`` (probing with a real temp file)."""
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise ValueError(f"{flag} {str(path)!r}: {str(folder)!r} is a file, not a folder; "
                         f"choose a path inside a folder.")
    try:
        # named like the target's temp files, so that a probe left by a kill is swept
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        Path(probe).unlink(missing_ok=True)
    except OSError as err:
        raise ValueError(f"{flag} {str(path)!r} cannot be written: the folder {str(folder)!r} "
                         f"refuses new files ({err.strerror or err}). Choose a writable folder "
                         f"(e.g. {flag} {Path.home() / path.name}); nothing has run yet.") from err


def check_output_paths(outputs: Mapping[str, Optional[PathLike]],
                       inputs: Optional[Mapping[str, Optional[PathLike]]] = None,
                       resumable: Optional[Mapping[str, bool]] = None) -> None:
    """Refuse output paths that would lose the work, before the work starts.

    Args:
        outputs: ``{flag: path}`` of every file the command will write (None: not given),
            e.g. ``{"--out": "r.json", "--checkpoint": "run.pt"}``.
        inputs: ``{flag: path}`` of the files it reads; none may be an output.
        resumable: ``{flag: resume}`` for checkpoint outputs: an existing checkpoint with
            ``resume`` False would silently start over and overwrite a run, so it is refused.
    Raises:
        ValueError naming the flag, the path, the problem and the fix when an output is a
        directory, lies in a folder that cannot be written, is one of the inputs, is
        another output's file, or is a checkpoint that exists without ``--resume``.
    """
    given = {flag: Path(p) for flag, p in outputs.items() if p is not None}
    sources = {flag: Path(p) for flag, p in (inputs or {}).items()
               if p is not None and Path(p).exists()}
    seen: dict = {}
    for flag, path in given.items():
        if path.is_dir():
            raise ValueError(f"{flag} {str(path)!r} is a directory; give a file path such as "
                             f"{str(path / 'result.json')!r}.")
        _check_writable_folder(flag, path)
        for source_flag, source in sources.items():
            if _same_file(path, source):
                raise ValueError(f"{flag} {str(path)!r} is the file given as {source_flag}: "
                                 f"writing it would overwrite the input. Choose another {flag}.")
        for other_flag, other in seen.items():
            if _same_file(path, other):
                raise ValueError(f"{flag} and {other_flag} are the same file {str(path)!r}; "
                                 "each output needs its own path.")
        seen[flag] = path
        if resumable and flag in resumable and not resumable[flag] and path.exists():
            raise ValueError(f"{flag} {str(path)!r} already holds a run. Pass --resume to "
                             f"continue it, or delete it (or choose another {flag}) to start "
                             "over; snnlab never overwrites a checkpoint unasked.")


def write_or_fallback(path: PathLike, write: Callable[[Path], None], flag: str = "--out") -> None:
    """``write(path)``; if that fails with an OSError, ``write`` into the temp folder instead.

    Raises:
        OutputNotWritten (a RuntimeError) naming ``path``, the cause, and where the result
        was saved instead (``.fallback``), so hours of work are never lost to a last write.
    """
    path = Path(path)
    try:
        write(path)
        return
    except OSError as err:
        reason = describe_os_error(err, path, flag)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"snnlab-{path.stem}-{stamp}-{os.getpid()}{path.suffix}"
    fallback = Path(tempfile.gettempdir()) / name
    try:
        write(fallback)
    except OSError as err:
        raise OutputNotWritten(f"{reason}. Saving it to {str(fallback)!r} failed too "
                               f"({err.strerror or err}); the result is lost.", None) from err
    raise OutputNotWritten(f"{reason}. The result was saved to {str(fallback)!r} instead; "
                           "move it where you want it.", fallback)
