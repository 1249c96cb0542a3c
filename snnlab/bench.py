"""SpikeNAS-Bench: the trained accuracies of SNASNet's whole Fw space, read from a user's clone.

Sun et al., "SpikeNAS-Bench: Benchmarking NAS Algorithms for Spiking Neural
Network Architecture", IEEE Trans. AI (2025); repository
``tju-sun-lab/SpikeNAS-Bench`` (commit 9994ce3, cited below by file and line).
Every one of the 5^6 = 15,625 forward cells was trained on CIFAR-10 (T = 5,
SGD + cosine, batch 55) and logged in ``data/CIFAR10/<arch_id>/train_process.txt``::

    architecture id: 14862
    model parameters: 21607908
    epoch, train_acc, train_loss, val_acc, val_loss
    0.000, 24.708, 1.998, 38.832, 1.659          <- one row per epoch, accuracies in %
    ...
    test accuracy: 88.500
    firing rate of layers: 0.239, 0.239, ...      <- 16 values, -1 = not a spiking layer
    Elapsed time: 3.0hour4.0minute28.8second

The repository has **no licence**: snnlab ships none of its data. Get it with
``git clone https://github.com/tju-sun-lab/SpikeNAS-Bench`` (or its zip) and pass
the path to :func:`load_bench`.

**Splits** (``Train_all_networks/train_all_networks.py`` L29-43): "val" is the
second half of the CIFAR-10 *training* set (25,000 images, evaluated after every
epoch); "test" is the 10,000-image test set, evaluated once after the last epoch.
Select on ``val``, report ``test``.

**Epochs.** 14,935 cells were logged for 100 epochs, 690 (ids 3276..14178) for 200;
:attr:`SpikeNASBench.epochs` says which, and per-epoch arrays are NaN past a
cell's last epoch. The logged seconds are those of the cell's whole run.

**Ops** (``Train_all_networks/searchcells/search_cell_snn.py`` L21-51): code 0 zero
(a ``ScaleLayer`` times 0), 1 identity, 2/3/4 a multi-step LIF with threshold
0.5/1.0/1.5 (tau 4/3, hard reset detached, ATan), then conv 3x3 + BN. They are
registered here through :func:`snnlab.ops.register_op` as :data:`BENCH_OPS`. A node
is the plain sum of its incoming edges, as in snnlab's Fw cell.

**Arch id -> cell.** ``get_cntmat_3`` (``Train_all_networks/utils.py`` L155-170 and
``NAS/utils.py`` L148) writes the id in base 5 and puts its *least significant*
digit on edge 0->1. With the bench's edge order :data:`BENCH_EDGES` =
(0->1, 0->2, 0->3, 1->2, 1->3, 2->3)::

    arch_id = sum(code[k] * 5**k for k, edge in enumerate(BENCH_EDGES))

The 6-digit "encoding" of the bench's NAS code (``NAS/utils.py`` L380
``encoding_to_id``, ``NAS/evolution_algorithm.py`` L12-18) lists ``code[k]`` in
that order, so it is the base-5 id written *backwards*. snnlab's own edge order
(:data:`snnlab.snasnet_space.CellGenotype.edges`: 0->1, 0->2, **1->2, 0->3**, 1->3,
2->3) is a third order: it is the order in which ``Neuronal_Cell`` builds its
``cell_architecture`` list (``for col in range(1, 4): for row in range(col)``),
hence the order of the 12 first firing rates (cell 1, then cell 2; L88-90 of
``train_all_networks.py``). A naive mapping builds the wrong cell silently.

Checked by hand: id 0 has no edges (test accuracy 10 %); id 14862, the best
cell (val 88.64 %, test 88.50 %), is 14862 = 2 + 2*5 + 4*25 + 3*125 + 3*625 +
4*3125: 0->1 and 0->2 threshold 0.5, 0->3 threshold 1.5, 1->2 and 1->3
threshold 1.0, 2->3 threshold 1.5; its logged firing rates agree (the three
edges leaving node 0 see the same input: equal rates for equal thresholds,
0.239 and 0.239, and less for 1.5, 0.034). :func:`verify_id_mapping` makes that
check for every cell of a clone: the layout of the -1 entries must match the
spiking edges, and the parameter count must depend only on the number of convs.

**Dead cells.** 15,625 counts every op matrix; in many the input never reaches
the output (:attr:`SpikeNASBench.connected` is False): they train to chance.
:attr:`SpikeNASBench.pruned_ids` maps each cell to the id of its pruned cell
(:meth:`CellGenotype.pruned`): cells with the same pruned id compute the same
function up to a learnable constant (BN's shift after a silent conv), yet were
trained separately (seed = arch id), which measures the training noise.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .ops import OPS, SpikeConvBN, register_op
from .snasnet_space import CellGenotype

__all__ = ["BENCH_OPS", "BENCH_EDGES", "NUM_ARCHS", "DATASETS", "CLONE_HINT",
           "arch_id_to_codes", "codes_to_arch_id", "genotype_from_arch_id",
           "genotype_from_encoding", "arch_id_from_genotype", "parse_train_log",
           "SpikeNASBench", "load_bench", "verify_id_mapping"]

NUM_ARCHS = 5 ** 6
DATASETS = ("CIFAR10", "CIFAR100", "TinyImagenet")   # folder names under data/
CLONE_HINT = ("Get the bench with `git clone https://github.com/tju-sun-lab/SpikeNAS-Bench` "
              "(or its zip) and pass the clone's folder (or the zip).")

# Edge order of the bench's id and encoding (get_cntmat_3's `position`, utils.py L158).
BENCH_EDGES: Tuple[Tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
# Edge order of Neuronal_Cell's module list = of the logged firing rates (snnlab's order).
_LAYER_EDGES: Tuple[Tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_THRESHOLDS = {"spike_conv_3x3_th05": 0.5, "spike_conv_3x3_th10": 1.0,
               "spike_conv_3x3_th15": 1.5}
# Codes 0..4 of search_cell_snn.py L21-51, in that order.
BENCH_OPS: Tuple[str, ...] = ("none", "skip_connect") + tuple(_THRESHOLDS)
_FORMAT_VERSION = 1          # bump when the parsed arrays change: old caches are then ignored


# ---- the three thresholded convs, through the public registry --------------------

def _bench_factory(threshold: float):
    def factory(C: int, stride: int, neuron: dict):
        # the op fixes the threshold; tau and the rest follow the network's neuron (4/3)
        return SpikeConvBN(C, 3, stride, {**neuron, "threshold": threshold})
    factory.snnlab_bench = True    # marks our factory, so a re-import may replace it
    return factory


for _name, _threshold in _THRESHOLDS.items():
    if _name in OPS and not getattr(OPS[_name], "snnlab_bench", False):
        raise ValueError(f"op {_name!r} is registered by someone else; snnlab.bench needs "
                         "that name for SpikeNAS-Bench's conv: unregister_op it first.")
    register_op(_name, replace=True)(_bench_factory(_threshold))


# ---- arch id <-> cell ----------------------------------------------------------------

def _check_arch_id(arch_id) -> int:
    if isinstance(arch_id, bool) or not isinstance(arch_id, (int, np.integer)):
        raise TypeError(f"arch_id must be an int; got {type(arch_id).__name__} {arch_id!r}.")
    if not 0 <= arch_id < NUM_ARCHS:
        raise ValueError(f"arch_id must be in 0..{NUM_ARCHS - 1} (SpikeNAS-Bench numbers the "
                         f"5^6 cells of SNASNet's Fw space); got {arch_id}.")
    return int(arch_id)


def arch_id_to_codes(arch_id: int) -> Tuple[int, ...]:
    """The 6 op codes of a cell in :data:`BENCH_EDGES` order (code k = base-5 digit k).

    Example:
        >>> arch_id_to_codes(14862)
        (2, 2, 4, 3, 3, 4)
    """
    arch_id = _check_arch_id(arch_id)
    return tuple((arch_id // 5 ** k) % 5 for k in range(6))


def codes_to_arch_id(codes: Sequence[int]) -> int:
    """Inverse of :func:`arch_id_to_codes` (the bench's ``encoding_to_id``)."""
    codes = [int(c) for c in codes]
    if len(codes) != 6 or not all(0 <= c < 5 for c in codes):
        raise ValueError(f"codes must be 6 op codes in 0..4 (edges {BENCH_EDGES}); got {codes}.")
    return sum(c * 5 ** k for k, c in enumerate(codes))


def _genotype_from_codes(codes: Sequence[int]) -> CellGenotype:
    rows = [[0] * 4 for _ in range(4)]
    for (i, j), code in zip(BENCH_EDGES, codes):
        rows[i][j] = code
    return CellGenotype(tuple(map(tuple, rows)), BENCH_OPS)


def genotype_from_arch_id(arch_id: int) -> CellGenotype:
    """The cell of bench entry ``arch_id`` (unpruned, ops :data:`BENCH_OPS`).

    Example:
        >>> str(genotype_from_arch_id(25))
        '0->3 skip_connect'
    """
    return _genotype_from_codes(arch_id_to_codes(arch_id))


def genotype_from_encoding(encoding: Union[str, Sequence[int]]) -> CellGenotype:
    """The cell of the bench's 6-digit encoding (``NAS/evolution_algorithm.py``): codes in
    :data:`BENCH_EDGES` order, e.g. ``"224334"`` = id 14862 (its base-5 digits reversed)."""
    if isinstance(encoding, str):
        text = encoding.replace(" ", "")
        if len(text) != 6 or any(c not in "01234" for c in text):
            raise ValueError(f"encoding must be 6 digits 0..4, one per edge in the bench's order "
                             f"{BENCH_EDGES}; got {encoding!r}.")
        encoding = [int(c) for c in text]
    return genotype_from_arch_id(codes_to_arch_id(encoding))


def arch_id_from_genotype(genotype: CellGenotype) -> int:
    """The bench id of a forward cell over :data:`BENCH_OPS` (unpruned: every edge counts)."""
    if not isinstance(genotype, CellGenotype):
        raise TypeError(f"expected a CellGenotype; got {type(genotype).__name__}.")
    if genotype.ops != BENCH_OPS or genotype.is_backward:
        raise ValueError(f"only forward cells over BENCH_OPS = {BENCH_OPS} have a bench id; got "
                         f"{genotype!r}. Build it with genotype_from_arch_id or ops=BENCH_OPS.")
    return codes_to_arch_id([genotype.matrix[i][j] for i, j in BENCH_EDGES])


def _codes_array(arch_ids: np.ndarray) -> np.ndarray:
    """``[N]`` ids -> ``[N, 6]`` codes in :data:`BENCH_EDGES` order."""
    return (arch_ids[:, None] // 5 ** np.arange(6)) % 5


def _live_edges(codes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Vectorised :attr:`CellGenotype.connected` and :meth:`CellGenotype.pruned` of a forward
    cell: ``codes [N, 6]`` -> ``(connected [N] bool, kept [N, 6] bool)``."""
    e = {edge: codes[:, k] > 0 for k, edge in enumerate(BENCH_EDGES)}
    # from the input: node 1, node 2, node 3 (a DAG of 4 nodes needs one pass)
    r1 = e[0, 1]
    r2 = e[0, 2] | (r1 & e[1, 2])
    r3 = e[0, 3] | (r1 & e[1, 3]) | (r2 & e[2, 3])
    # to the output
    b2 = e[2, 3]
    b1 = e[1, 3] | (e[1, 2] & b2)
    alive = {0: r3, 1: r1 & b1 & r3, 2: r2 & b2 & r3, 3: r3}     # dead cell: nothing is alive
    kept = np.stack([e[i, j] & alive[i] & alive[j] for i, j in BENCH_EDGES], axis=1)
    return r3, kept


# ---- one log file --------------------------------------------------------------------

_ID = re.compile(r"^architecture id:\s*(\d+)$")
_PARAMS = re.compile(r"^model parameters:\s*(\d+)$")
_TEST = re.compile(r"^test (?:accuracy|top1):\s*([-\d.]+)")      # CIFAR / TinyImagenet forms
_RATES = re.compile(r"^firing rate of layers:\s*(.*)$")
_TIME = re.compile(r"^Elapsed time:\s*([\d.]+)hour([\d.]+)minute([\d.]+)second$")
_COLUMNS = ("epoch", "train_acc", "train_loss", "val_acc", "val_loss")
NUM_RATES = 16   # 6 edges x 2 cells, downconv1, last_act, classifier, whole net


def _bad(where: str, line_no: int, expected: str, line: str) -> ValueError:
    return ValueError(f"{where}: line {line_no}: expected {expected}, got {line[:80]!r}. The log "
                      f"is truncated or not a SpikeNAS-Bench train_process.txt. {CLONE_HINT}")


def parse_train_log(text: str, where: str = "train_process.txt") -> dict:
    """Parse one ``train_process.txt``.

    Returns a dict: ``arch_id`` int, ``params`` int, ``rows`` ``[E, 5]`` float64
    (epoch, train_acc %, train_loss, val_acc %, val_loss; the TinyImagenet logs'
    top-5 columns are dropped), ``test_acc`` float (%), ``firing_rates`` ``[16]``
    (-1: not a spiking layer), ``seconds`` float. Raises ``ValueError`` naming the
    file and line when a part is missing or malformed (e.g. a truncated log).
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines += [""] * max(0, 6 - len(lines))        # so a short file fails with a line number
    found = {}
    for key, pattern, k, what in (("arch_id", _ID, 0, "'architecture id: N'"),
                                  ("params", _PARAMS, 1, "'model parameters: N'")):
        match = pattern.match(lines[k])
        if not match:
            raise _bad(where, k + 1, what, lines[k])
        found[key] = int(match[1])
    header = [c.strip() for c in lines[2].split(",")]
    if header[:1] != ["epoch"] or not set(_COLUMNS) <= set(header):
        raise _bad(where, 3, f"a header with the columns {_COLUMNS}", lines[2])
    end = next((k for k in range(3, len(lines)) if lines[k].startswith("test")), None)
    if end is None or end == 3 or len(lines) < end + 3:
        raise _bad(where, len(lines), "epoch rows, then the test accuracy, firing rates and "
                   "elapsed time", lines[-1])
    table = _parse_rows(lines[3:end], len(header), where)            # [E, len(header)]
    rows = table[:, [header.index(c) for c in _COLUMNS]]            # [E, 5]
    epochs = rows[:, 0]
    if np.any(epochs != np.round(epochs)) or np.any(np.diff(epochs) <= 0) or epochs[0] < 0:
        raise _bad(where, 4, "epoch numbers 0, 1, 2, ... increasing", lines[3])
    test, rates, time = _TEST.match(lines[end]), _RATES.match(lines[end + 1]), \
        _TIME.match(lines[end + 2])
    if not test:
        raise _bad(where, end + 1, "'test accuracy: X'", lines[end])
    rate_values = [v for v in rates[1].split(",") if v.strip()] if rates else []
    if len(rate_values) != NUM_RATES:
        raise _bad(where, end + 2, f"'firing rate of layers:' and {NUM_RATES} numbers",
                   lines[end + 1])
    if not time:
        raise _bad(where, end + 3, "'Elapsed time: Hhour Mminute Ssecond'", lines[end + 2])
    hours, minutes, seconds = (float(v) for v in time.groups())
    return {**found, "rows": rows, "test_acc": float(test[1]),
            "firing_rates": np.array(rate_values, dtype=np.float64),
            "seconds": hours * 3600 + minutes * 60 + seconds}


def _parse_rows(lines: List[str], ncol: int, where: str) -> np.ndarray:
    """Epoch rows -> ``[E, ncol]`` float64; one join and one split (fast), or find the bad row."""
    if all(line.count(",") == ncol - 1 for line in lines):
        try:
            values = np.array(",".join(lines).split(","), dtype=np.float64)
            if np.all(np.isfinite(values)):
                return values.reshape(len(lines), ncol)
        except ValueError:
            pass
    for k, line in enumerate(lines):              # slow path, only to name the bad line
        parts = line.split(",")
        try:
            ok = len(parts) == ncol and all(np.isfinite(float(p)) for p in parts)
        except ValueError:
            ok = False
        if not ok:
            raise _bad(where, k + 4, f"{ncol} comma-separated numbers", line)
    raise _bad(where, 4, f"{ncol} comma-separated numbers per row", lines[0])


# ---- a clone or a zip ----------------------------------------------------------------

_MEMBER = re.compile(r"(?:^|/)(?:data/)?{}/(\d+)/train_process\.txt$")


def _find_logs(path: Path, dataset: str) -> Tuple[str, Path, Dict[int, str]]:
    """``("dir" | "zip", where, {arch_id: file path or zip member})`` for ``dataset``."""
    if not path.exists():
        raise FileNotFoundError(f"path {str(path)!r} does not exist. {CLONE_HINT}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{str(path)!r} is a file but not a zip of SpikeNAS-Bench. {CLONE_HINT}")
        member = re.compile(_MEMBER.pattern.format(re.escape(dataset)))
        with zipfile.ZipFile(path) as archive:
            logs = {int(m[1]): name for name in archive.namelist() if (m := member.search(name))}
        return "zip", path, _nonempty(logs, path, dataset)
    for folder in (path / "data" / dataset, path / dataset, path):
        if folder.is_dir() and (folder.name == dataset or folder != path):
            logs = {int(entry.name): os.path.join(entry.path, "train_process.txt")
                    for entry in os.scandir(folder) if entry.is_dir() and entry.name.isdigit()}
            return "dir", folder, _nonempty(logs, path, dataset)
    raise FileNotFoundError(f"{str(path)!r} holds no data/{dataset} folder: it is not a "
                            f"SpikeNAS-Bench clone. {CLONE_HINT}")


def _nonempty(logs: dict, path: Path, dataset: str) -> dict:
    if not logs:
        raise FileNotFoundError(f"no {dataset}/<arch_id>/train_process.txt under {str(path)!r}. "
                                f"{CLONE_HINT}")
    return logs


def _fingerprint(kind: str, where: Path, logs: Dict[int, str], dataset: str) -> str:
    """sha256 of the entries' names and sizes with their mtimes (folder) or CRCs (zip):
    cheap (no file is read), and any edit, addition or removal changes it."""
    digest = hashlib.sha256(f"{_FORMAT_VERSION}|{dataset}|".encode())
    if kind == "zip":
        with zipfile.ZipFile(where) as archive:
            for arch_id in sorted(logs):
                info = archive.getinfo(logs[arch_id])
                digest.update(f"{arch_id}:{info.file_size}:{info.CRC};".encode())
        return digest.hexdigest()
    for arch_id in sorted(logs):
        try:
            st = os.stat(logs[arch_id])
        except FileNotFoundError:
            raise FileNotFoundError(f"{logs[arch_id]} is missing: the clone is incomplete. "
                                    f"{CLONE_HINT}") from None
        digest.update(f"{arch_id}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()


def _read_all(kind: str, where: Path, logs: Dict[int, str]) -> List[dict]:
    """Parse every log, in ascending arch id order; checks the id inside the file."""
    parsed = []
    archive = zipfile.ZipFile(where) if kind == "zip" else None
    try:
        for arch_id in sorted(logs):
            if archive is not None:
                text = archive.read(logs[arch_id]).decode("utf-8", errors="replace")
            else:
                with open(logs[arch_id], encoding="utf-8", errors="replace") as f:
                    text = f.read()
            entry = parse_train_log(text, logs[arch_id])
            if entry["arch_id"] != arch_id:
                raise ValueError(f"{logs[arch_id]} says 'architecture id: {entry['arch_id']}' "
                                 f"but lies in folder {arch_id}. {CLONE_HINT}")
            _check_arch_id(arch_id)
            parsed.append(entry)
    finally:
        if archive is not None:
            archive.close()
    return parsed


# ---- the table -------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SpikeNASBench:
    """The bench as a table: one row per cell, rows in ascending ``arch_ids``.

    Per-epoch arrays are ``[N, E]`` float32 (E = the longest run, 200 on CIFAR-10),
    NaN after a cell's last logged epoch (``epochs[i]``); accuracies are in %.
    Build it with :func:`load_bench`.

    Attributes:
        dataset: ``"CIFAR10"``, ``"CIFAR100"`` or ``"TinyImagenet"``.
        arch_ids: ``[N]`` int64. params: ``[N]`` int64, as logged.
        epochs: ``[N]`` int64, logged epochs (100, or 200 for 690 CIFAR-10 cells).
        train_acc, train_loss, val_acc, val_loss: ``[N, E]`` float32.
        test_acc: ``[N]`` float64, after the last epoch.
        firing_rates: ``[N, 16]`` float32: the 6 cell-1 edges and the 6 cell-2 edges in
            snnlab's edge order (-1: not a spiking op), downconv1, last_act,
            classifier, whole net.
        train_seconds: ``[N]`` float64, wall time of the cell's whole training run.
        source: the folder or zip read. fingerprint: see :func:`load_bench`.

    Example (needs a clone)::

        bench = load_bench("SpikeNAS-Bench", cache_dir=".cache")
        i = bench.index(14862); bench.final_val_acc[i], bench.test_acc[i]   # 88.64, 88.5
    """

    dataset: str
    arch_ids: np.ndarray
    params: np.ndarray
    epochs: np.ndarray
    train_acc: np.ndarray
    train_loss: np.ndarray
    val_acc: np.ndarray
    val_loss: np.ndarray
    test_acc: np.ndarray
    firing_rates: np.ndarray
    train_seconds: np.ndarray
    source: str = ""
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.arch_ids)

    def __repr__(self) -> str:
        return (f"SpikeNASBench({self.dataset}, {len(self)} cells, "
                f"{int(self.connected.sum())} live, source={self.source!r})")

    def index(self, arch_id: int) -> int:
        """Row of ``arch_id``; ``ValueError`` if it is not a bench id or not in this table."""
        arch_id = _check_arch_id(arch_id)
        row = int(np.searchsorted(self.arch_ids, arch_id))
        if row == len(self) or self.arch_ids[row] != arch_id:
            raise ValueError(f"arch id {arch_id} is not in this table ({len(self)} of "
                             f"{NUM_ARCHS} cells were read from {self.source!r}).")
        return row

    def genotype(self, arch_id: int) -> CellGenotype:
        """The cell of ``arch_id`` (checked to be in the table)."""
        self.index(arch_id)
        return genotype_from_arch_id(arch_id)

    @property
    def codes(self) -> np.ndarray:
        """``[N, 6]`` op codes in :data:`BENCH_EDGES` order."""
        return _codes_array(self.arch_ids)

    @property
    def connected(self) -> np.ndarray:
        """``[N]`` bool: the input reaches the output (False: a dead cell, chance accuracy)."""
        return _live_edges(self.codes)[0]

    @property
    def pruned_ids(self) -> np.ndarray:
        """``[N]`` int64: the id of each cell after :meth:`CellGenotype.pruned` (0 if dead)."""
        codes = self.codes                                           # [N, 6]
        return (codes * _live_edges(codes)[1] * 5 ** np.arange(6)).sum(axis=1)

    @property
    def final_val_acc(self) -> np.ndarray:
        """``[N]`` float32: validation accuracy after each cell's last epoch (what the
        bench's NAS code selects on, ``NAS/evolution_algorithm.py`` L64)."""
        return self.val_acc[np.arange(len(self)), self.epochs - 1]

    def val_acc_at(self, epoch: int) -> np.ndarray:
        """``[N]`` validation accuracy after ``epoch`` epochs (1-based), as an early-stopped
        run would see it; a cell trained for 200 epochs was still early in its cosine schedule."""
        if not 1 <= epoch <= self.val_acc.shape[1]:
            raise ValueError(f"epoch must be in 1..{self.val_acc.shape[1]}; got {epoch}.")
        return self.val_acc[:, epoch - 1]

    def entry(self, arch_id: int) -> dict:
        """One cell as a dict: genotype, params, epochs, final val and test accuracy, seconds."""
        row = self.index(arch_id)
        return {"arch_id": int(arch_id), "genotype": genotype_from_arch_id(arch_id),
                "connected": bool(self.connected[row]), "params": int(self.params[row]),
                "epochs": int(self.epochs[row]),
                "val_acc": round(float(self.final_val_acc[row]), 3),   # float32 -> as logged
                "test_acc": float(self.test_acc[row]),
                "train_seconds": float(self.train_seconds[row])}


_ARRAYS = ("arch_ids", "params", "test_acc", "firing_rates", "train_seconds")
_CURVES = ("train_acc", "train_loss", "val_acc", "val_loss")


def _table(parsed: List[dict], dataset: str, source: str, fingerprint: str) -> SpikeNASBench:
    """Parsed logs -> the table (per-epoch rows scattered into NaN-padded ``[N, E]``)."""
    rows = [entry["rows"] for entry in parsed]
    flat = np.concatenate(rows)                                     # [R, 5]
    owner = np.repeat(np.arange(len(rows)), [len(r) for r in rows])  # [R] row of the table
    return _from_flat(dataset, source, fingerprint, owner, flat, {
        "arch_ids": np.array([e["arch_id"] for e in parsed], dtype=np.int64),
        "params": np.array([e["params"] for e in parsed], dtype=np.int64),
        "test_acc": np.array([e["test_acc"] for e in parsed], dtype=np.float64),
        "firing_rates": np.stack([e["firing_rates"] for e in parsed]).astype(np.float32),
        "train_seconds": np.array([e["seconds"] for e in parsed], dtype=np.float64)})


def _from_flat(dataset, source, fingerprint, owner, flat, arrays) -> SpikeNASBench:
    epoch = flat[:, 0].astype(np.int64)                             # [R]
    n, width = len(arrays["arch_ids"]), int(epoch.max()) + 1
    epochs = np.zeros(n, dtype=np.int64)
    np.maximum.at(epochs, owner, epoch + 1)
    curves = {}
    for k, name in enumerate(_CURVES):
        curve = np.full((n, width), np.nan, dtype=np.float32)      # [N, E]
        curve[owner, epoch] = flat[:, k + 1]
        curves[name] = curve
    return SpikeNASBench(dataset=dataset, epochs=epochs, source=source,
                         fingerprint=fingerprint, **arrays, **curves)


def _save_cache(file: Path, bench: SpikeNASBench) -> None:
    """Write the table as the flat rows it was parsed from (no NaN padding), atomically."""
    owner, epoch = np.nonzero(~np.isnan(bench.val_acc))            # [R], [R], sorted by owner
    values = np.stack([getattr(bench, c)[owner, epoch] for c in _CURVES], axis=1)   # [R, 4]
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, counts=np.bincount(owner, minlength=len(bench)).astype(np.int32),
                     epoch=epoch.astype(np.int32), values=values.astype(np.float32),
                     meta=np.array([bench.dataset, bench.source, bench.fingerprint]),
                     **{name: getattr(bench, name) for name in _ARRAYS})
        os.chmod(tmp, 0o644)                 # mkstemp makes it private; a cache may be shared
        os.replace(tmp, file)
    except BaseException:
        os.unlink(tmp)
        raise


def _load_cache(file: Path, fingerprint: str) -> Optional[SpikeNASBench]:
    try:
        with np.load(file) as data:
            dataset, source, stored = (str(v) for v in data["meta"])
            if stored != fingerprint:
                return None
            arrays = {name: data[name] for name in _ARRAYS}
            owner = np.repeat(np.arange(len(arrays["arch_ids"])), data["counts"])   # [R]
            flat = np.column_stack([data["epoch"], data["values"]])                 # [R, 5]
            return _from_flat(dataset, source, stored, owner, flat, arrays)
    except (OSError, KeyError, ValueError):     # absent or unreadable: parse again
        return None


def load_bench(path: Union[str, os.PathLike], dataset: str = "CIFAR10",
               cache_dir: Optional[Union[str, os.PathLike]] = None,
               allow_missing: bool = False) -> SpikeNASBench:
    """Read a SpikeNAS-Bench clone (or the repository's zip) into a :class:`SpikeNASBench`.

    Args:
        path: the clone's folder, its ``data`` or ``data/<dataset>`` folder, or the zip.
        dataset: one of :data:`DATASETS` (only CIFAR10 is complete in the repository).
        cache_dir: if given, the parsed table is stored there as
            ``spikenas_<dataset>_<fingerprint>.npz`` and read back on the next call
            (about a second instead of a parse). The fingerprint hashes every log's
            name and size with its mtime (folder) or CRC (zip), so an edited clone
            is parsed again.
        allow_missing: accept a table with fewer than 15,625 cells (the CIFAR100 and
            TinyImagenet folders hold a few hundred).
    Raises:
        FileNotFoundError: no clone at ``path``; ValueError: a malformed or truncated log,
        a mismatched id, or missing cells without ``allow_missing``.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}; got {dataset!r}.")
    kind, where, logs = _find_logs(Path(path), dataset)
    if len(logs) < NUM_ARCHS and not allow_missing:
        raise ValueError(f"{str(where)!r} holds {len(logs)} of the {NUM_ARCHS} cells. Pass "
                         f"allow_missing=True to use a partial table (the repository's CIFAR100 "
                         f"and TinyImagenet folders are partial), or re-clone: {CLONE_HINT}")
    fingerprint = _fingerprint(kind, where, logs, dataset)
    file = Path(cache_dir) / f"spikenas_{dataset}_{fingerprint[:16]}.npz" if cache_dir else None
    if file is not None:
        cached = _load_cache(file, fingerprint)
        if cached is not None:
            return cached
    bench = _table(_read_all(kind, where, logs), dataset, str(where), fingerprint)
    if file is not None:
        _save_cache(file, bench)
    return bench


def verify_id_mapping(bench: SpikeNASBench) -> dict:
    """Check the id -> cell mapping against what the logs say independently of the id.

    * layout: the logged firing rates of the 12 cell edges are -1 exactly where the
      mapped op is not spiking (the bench logs -1 for modules without a LIF);
    * params: cells with the same number of convs have the same parameter count.

    Returns ``{"cells": N, "layout_agrees": n1, "params_agree": n2}``.
    """
    spiking = bench.codes >= 2                                      # [N, 6] bench order
    order = [BENCH_EDGES.index(edge) for edge in _LAYER_EDGES]
    expected = np.concatenate([spiking[:, order]] * 2, axis=1)      # [N, 12] layer order
    layout = ((bench.firing_rates[:, :12] >= 0) == expected).all(axis=1)
    n_conv = spiking.sum(axis=1)
    params_ok = np.zeros(len(bench), dtype=bool)
    for n in np.unique(n_conv):
        group = n_conv == n
        values, counts = np.unique(bench.params[group], return_counts=True)
        params_ok[group] = bench.params[group] == values[np.argmax(counts)]
    return {"cells": len(bench), "layout_agrees": int(layout.sum()),
            "params_agree": int(params_ok.sum())}
