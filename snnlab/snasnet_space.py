"""SNASNet's cell genotype (the official 4x4 op matrix) and its Fw/Bw search spaces.

Kim, Li, Park, Venkatesha & Panda, "Neural Architecture Search for Spiking
Neural Networks", ECCV 2022 (arXiv 2201.10355); official code
``Intelligent-Computing-Lab-Yale/Neural-Architecture-Search-for-Spiking-Neural-Networks``
(HEAD 4980409), cited below by file and line. The cell that runs a genotype and
the macro network are in :mod:`snnlab.snasnet`, which re-exports these names.

A cell has 4 nodes: node 0 is the input, node 3 the output. Entry ``[i][j]`` of
the op matrix is the code of the op on the edge ``i -> j`` (an index into the
op names ``ops``; code 0 is ``"none"``, no edge):

* ``i < j`` (upper triangle): a **forward** edge, used within the time step;
* ``i > j`` (lower triangle): a **backward** edge, temporal feedback that
  reaches node ``j`` one time step later.

The official command line writes the matrix as its 4 rows,
``--cnt_mat 0303 0030 2002 0200`` (the released CIFAR-10 cell): forward 0->1,
0->3 and 1->2 spike_conv_3x3, 2->3 spike_conv_1x1; backward 2->0 and 3->1
spike_conv_1x1.

**Spaces.** Fw searches the 6 forward edges: 5^6 = 15,625 op matrices. Bw puts
each of the 6 node pairs either forward or backward, never both: 9 choices per
pair with the 5 SNASNet ops, 9^6 = 531,441. The official sampler also insists
on a direct input->output edge (``require_input_output_edge``).
"""
from __future__ import annotations

import itertools
import math
import numbers
import random
import re
from dataclasses import dataclass, field
from typing import Iterator, List, NamedTuple, Sequence, Tuple

from .ops import SNASNET_OPS, check_op_names

__all__ = ["NUM_NODES", "SPACE_KINDS", "Edge", "CellGenotype", "SNASNetSpace"]

NUM_NODES = 4
SPACE_KINDS = ("fw", "bw")

# Edge order of the official cells (search_cell_snn.py L19-20 and L100-101).
_FORWARD_PAIRS = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_BACKWARD_EDGES = ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))
_EDGE_TEXT = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s+(\S+)\s*(?:\((forward|backward)\))?\s*$")


class Edge(NamedTuple):
    """One edge of a cell: ``src -> dst`` carrying the op ``op`` (a name)."""

    src: int
    dst: int
    op: str

    @property
    def direction(self) -> str:
        """``"forward"`` (``src < dst``, same step) or ``"backward"`` (feedback, next step)."""
        return "forward" if self.src < self.dst else "backward"

    def __str__(self) -> str:
        text = f"{self.src}->{self.dst} {self.op}"
        return text if self.src < self.dst else text + " (backward)"


def _check_ops(ops) -> Tuple[str, ...]:
    """An op tuple for genotypes: unique strings with ``ops[0] == "none"`` (code 0 = no edge)."""
    if isinstance(ops, str) or not isinstance(ops, Sequence):
        raise TypeError(f"ops must be a tuple of op names such as SNASNET_OPS; got {ops!r}.")
    ops = tuple(ops)
    if len(ops) < 2 or not all(isinstance(name, str) for name in ops):
        raise ValueError(f"ops must hold at least two op names (str); got {ops}.")
    if ops[0] != "none":
        raise ValueError(f"ops[0] must be 'none': code 0 means 'no edge' in the op matrix (the "
                         f"diagonal and the unused direction of each pair hold 0); got {ops}.")
    if len(set(ops)) != len(ops):
        raise ValueError(f"ops must not repeat a name; got {ops}.")
    return ops


def _reachable(matrix, start: int, reverse: bool = False) -> set:
    """Nodes reachable from ``start`` along non-zero edges, forward and backward alike
    (``reverse=True``: nodes from which ``start`` is reachable). Includes ``start``."""
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for other in range(len(matrix)):
            code = matrix[other][node] if reverse else matrix[node][other]
            if code and other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


@dataclass(frozen=True, repr=False)
class CellGenotype:
    """A SNASNet cell: the official 4x4 op matrix and the op names its codes index.

    Args:
        matrix: 4x4 nested sequence (or array/tensor) of int codes; ``matrix[i][j]``
            is ``ops[code]`` on the edge ``i -> j``; ``i < j`` forward, ``i > j``
            backward (one-step-delayed feedback). Stored as a tuple of tuples.
        ops: the op names, ``ops[0] == "none"``; default :data:`SNASNET_OPS`.

    Raises ``ValueError`` on a malformed matrix: not 4x4, a non-zero diagonal, a
    code outside ``range(len(ops))``, or a node pair with both a forward and a
    backward edge. A cell whose input never reaches its output is well formed
    (the paper counts it in 15,625); :attr:`connected` tells, and building a cell
    or :meth:`SNASNetSpace.validate` rejects it.

    Example:
        >>> g = CellGenotype.from_string("0303 0030 2002 0200")   # released CIFAR-10 cell
        >>> [str(e) for e in g.edges()][:2]
        ['0->1 spike_conv_3x3', '1->2 spike_conv_3x3']
        >>> g.is_backward, CellGenotype.from_dict(g.to_dict()) == g
        (True, True)
    """

    matrix: Tuple[Tuple[int, ...], ...]
    ops: Tuple[str, ...] = field(default=SNASNET_OPS)

    def __post_init__(self):
        ops = _check_ops(self.ops)
        matrix = self.matrix.tolist() if hasattr(self.matrix, "tolist") else self.matrix
        n = NUM_NODES
        if (isinstance(matrix, str) or not isinstance(matrix, Sequence) or len(matrix) != n
                or any(isinstance(r, str) or not isinstance(r, Sequence) or len(r) != n
                       for r in matrix)):
            raise ValueError(f"matrix must be {n}x{n} (rows of op codes); got {self.matrix!r}. "
                             "Example: CellGenotype.from_string('0303 0030 2002 0200').")
        rows = []
        for i, row in enumerate(matrix):
            for j, code in enumerate(row):
                if isinstance(code, bool) or not isinstance(code, numbers.Integral):
                    raise ValueError(f"matrix[{i}][{j}] must be an int op code; got {code!r}.")
                if not 0 <= int(code) < len(ops):
                    raise ValueError(f"matrix[{i}][{j}] = {int(code)} is not an op code: codes "
                                     f"index ops = {ops} (0..{len(ops) - 1}).")
            rows.append(tuple(int(code) for code in row))
        for i in range(n):
            if rows[i][i]:
                raise ValueError(f"matrix[{i}][{i}] = {rows[i][i]}: the diagonal must be 0 "
                                 "(a node has no edge to itself).")
        for i, j in _FORWARD_PAIRS:
            if rows[i][j] and rows[j][i]:
                raise ValueError(
                    f"nodes {i} and {j} have both a forward edge {i}->{j} ({ops[rows[i][j]]}) and "
                    f"a backward edge {j}->{i} ({ops[rows[j][i]]}); SNASNet allows one direction "
                    f"per node pair: set matrix[{i}][{j}] or matrix[{j}][{i}] to 0.")
        object.__setattr__(self, "matrix", tuple(rows))
        object.__setattr__(self, "ops", ops)

    # ---- readable forms -----------------------------------------------------
    @classmethod
    def from_string(cls, text, ops: Sequence[str] = SNASNET_OPS) -> "CellGenotype":
        """Parse the official ``--cnt_mat`` form, 4 rows of 4 digits: ``"0303 0030 2002 0200"``.

        ``text`` may also be a list of the 4 row strings (``argparse`` ``nargs=4``);
        rows may be separated by spaces, commas, semicolons or slashes.
        """
        if isinstance(text, (list, tuple)):
            text = " ".join(str(part) for part in text)
        if not isinstance(text, str):
            raise TypeError(f"text must be a str like '0303 0030 2002 0200'; got {text!r}.")
        rows = [r for r in re.split(r"[\s,;/]+", text.strip()) if r]
        if len(rows) != NUM_NODES or not all(len(r) == NUM_NODES and r.isdigit() for r in rows):
            raise ValueError(f"expected {NUM_NODES} rows of {NUM_NODES} digits (row i holds the op "
                             f"codes of the edges leaving node i), like '0303 0030 2002 0200'; "
                             f"got {text!r}.")
        return cls(tuple(tuple(int(c) for c in row) for row in rows), tuple(ops))

    def to_string(self) -> str:
        """The official ``--cnt_mat`` form (single-digit codes, so at most 10 ops)."""
        if len(self.ops) > 10:
            raise ValueError(f"to_string needs single-digit codes but this genotype has "
                             f"{len(self.ops)} ops; use to_dict() instead.")
        return " ".join("".join(str(code) for code in row) for row in self.matrix)

    def edges(self) -> Tuple[Edge, ...]:
        """The edges that are not ``none``: forward ones in the official order (0->1, 0->2,
        1->2, 0->3, 1->3, 2->3), then backward ones (1->0, 2->0, 3->0, 2->1, 3->1, 3->2)."""
        pairs = _FORWARD_PAIRS + _BACKWARD_EDGES
        return tuple(Edge(i, j, self.ops[self.matrix[i][j]]) for i, j in pairs if self.matrix[i][j])

    @classmethod
    def from_edges(cls, edges, ops: Sequence[str] = SNASNET_OPS) -> "CellGenotype":
        """Build from edges ``(src, dst, op_name)`` or their text ``"2->0 spike_conv_1x1"``
        (a trailing ``(forward)``/``(backward)`` is checked); absent edges are ``none``."""
        ops = _check_ops(ops)
        rows = [[0] * NUM_NODES for _ in range(NUM_NODES)]
        seen = set()
        for edge in edges:
            src, dst, name = _parse_edge(edge)
            if not (0 <= src < NUM_NODES and 0 <= dst < NUM_NODES) or src == dst:
                raise ValueError(f"edge {edge!r}: nodes must be distinct, in 0..{NUM_NODES - 1}.")
            if (src, dst) in seen:
                raise ValueError(f"edge {src}->{dst} is given twice.")
            if name not in ops:
                raise ValueError(f"edge {edge!r}: op {name!r} is not in ops = {ops}.")
            seen.add((src, dst))
            rows[src][dst] = ops.index(name)
        return cls(tuple(map(tuple, rows)), ops)

    def to_dict(self) -> dict:
        """JSON-ready ``{"matrix": [[...]], "ops": [...], "edges": ["0->1 skip_connect", ...]}``."""
        return {"matrix": [list(row) for row in self.matrix], "ops": list(self.ops),
                "edges": [str(e) for e in self.edges()]}

    @classmethod
    def from_dict(cls, data: dict) -> "CellGenotype":
        """Inverse of :meth:`to_dict`; needs ``"matrix"`` or ``"edges"`` (both must agree)."""
        if not isinstance(data, dict) or not ("matrix" in data or "edges" in data):
            raise ValueError(f"expected a dict with 'matrix' (and 'ops'), as written by "
                             f"CellGenotype.to_dict(); got {data!r}.")
        ops, matrix = data.get("ops", SNASNET_OPS), data.get("matrix")
        matrix = matrix.tolist() if hasattr(matrix, "tolist") else matrix   # an array
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise ValueError(f"'ops' must be a list of op names like {list(SNASNET_OPS)}; "
                             f"got {ops!r}.")
        if "matrix" in data and (isinstance(matrix, str) or not isinstance(matrix, Sequence)
                                 or not all(isinstance(r, Sequence) for r in matrix)):
            raise ValueError(f"'matrix' must be {NUM_NODES} rows of {NUM_NODES} int op codes, "
                             f"e.g. {[[0, 3, 0, 3], [0, 0, 3, 0], [2, 0, 0, 2], [0, 2, 0, 0]]}; "
                             f"got {matrix!r}.")
        ops = tuple(ops)
        genotype = (cls(tuple(map(tuple, matrix)), ops) if "matrix" in data
                    else cls.from_edges(data["edges"], ops))
        if "edges" in data and cls.from_edges(data["edges"], ops) != genotype:
            raise ValueError(f"'matrix' and 'edges' disagree: the matrix has edges "
                             f"{[str(e) for e in genotype.edges()]}, 'edges' says {data['edges']}.")
        return genotype

    def __repr__(self) -> str:
        ops = "" if self.ops == SNASNET_OPS else f", ops={self.ops!r}"
        if len(self.ops) > 10:
            return f"CellGenotype({self.matrix!r}{ops})"
        return f"CellGenotype.from_string({self.to_string()!r}{ops})"

    def __str__(self) -> str:
        return ", ".join(str(e) for e in self.edges()) or "(no edges)"

    # ---- structure -------------------------------------------------------------
    @property
    def is_backward(self) -> bool:
        """True if any backward (feedback) edge is present."""
        return any(self.matrix[i][j] for i, j in _BACKWARD_EDGES)

    @property
    def connected(self) -> bool:
        """True if the input (node 0) reaches the output (node 3), feedback edges included."""
        return NUM_NODES - 1 in _reachable(self.matrix, 0)

    def pruned(self) -> "CellGenotype":
        """Remove the edges of nodes that the input does not reach or that do not reach the output.

        Reachability follows forward and backward edges alike and is recomputed
        after each removal until nothing changes. A disconnected cell prunes to no
        edges at all. The official sampler (``model_snn.py`` L30-43) instead counts
        walks once (``A + A^2 + A^3 + A^4`` with the op codes as weights) and zeroes
        in two passes without recomputing; the results agree, because a node on a
        path between kept nodes is itself kept (tests compare both on every Fw matrix).
        """
        rows = [list(row) for row in self.matrix]
        while True:
            alive = _reachable(rows, 0) & _reachable(rows, NUM_NODES - 1, reverse=True)
            dead = [n for n in range(NUM_NODES) if n not in alive]
            if not any(rows[d][k] or rows[k][d] for d in dead for k in range(NUM_NODES)):
                return CellGenotype(tuple(map(tuple, rows)), self.ops)
            for d in dead:
                for k in range(NUM_NODES):
                    rows[d][k] = rows[k][d] = 0


def _parse_edge(edge) -> Tuple[int, int, str]:
    """``(src, dst, op)``, an :class:`Edge`, or ``"src->dst op [(direction)]"``."""
    if isinstance(edge, str):
        match = _EDGE_TEXT.match(edge)
        if not match:
            raise ValueError(f"cannot read edge {edge!r}; write it like '0->1 spike_conv_3x3' or "
                             "'2->0 spike_conv_1x1 (backward)'.")
        src, dst, name, direction = int(match[1]), int(match[2]), match[3], match[4]
        actual = Edge(src, dst, name).direction
        if direction and direction != actual:
            raise ValueError(f"edge {edge!r} says {direction} but {src}->{dst} is {actual} "
                             "(backward edges go to a lower node).")
        return src, dst, name
    if isinstance(edge, Sequence) and len(edge) == 3:
        src, dst, name = edge
        if isinstance(src, int) and isinstance(dst, int) and isinstance(name, str):
            return src, dst, name
    raise ValueError(f"an edge is (src, dst, op_name) or text like '0->1 skip_connect'; "
                     f"got {edge!r}.")


# ---- search spaces -------------------------------------------------------------

@dataclass(frozen=True)
class SNASNetSpace:
    """SNASNet's cell search space: Fw (forward edges only) or Bw (forward or backward per pair).

    Args:
        kind: ``"fw"`` or ``"bw"``.
        ops: op names (registered in :data:`snnlab.ops.OPS`), ``ops[0] == "none"``.
        require_input_output_edge: only cells with a non-``none`` direct edge 0->3,
            as the official sampler enforces ("fast information propagation",
            ``model_snn.py`` L45). Without it, the space counts every op matrix (the
            paper's 5^6 = 15,625 for Fw), including cells whose input never reaches
            the output: :meth:`enumerate` yields those too, while :meth:`sample`,
            :meth:`mutate` and :meth:`validate` exclude them.

    Counts with the 5 SNASNet ops (``k = len(ops)``): Fw ``k^6 = 15,625``, or
    ``(k-1) k^5 = 12,500`` with the 0->3 edge; Bw ``(2k-1)^6 = 531,441``, or
    ``(k-1)(2k-1)^5 = 236,196``.

    Example:
        >>> SNASNetSpace("fw", require_input_output_edge=False).size
        15625
        >>> space = SNASNetSpace("bw")
        >>> g = space.sample(random.Random(0)); space.validate(g) is g
        True
    """

    kind: str = "fw"
    ops: Tuple[str, ...] = SNASNET_OPS
    require_input_output_edge: bool = True

    def __post_init__(self):
        if self.kind not in SPACE_KINDS:
            raise ValueError(f"kind must be one of {SPACE_KINDS} ('fw': forward edges only, 'bw': "
                             f"each node pair forward or backward); got {self.kind!r}.")
        object.__setattr__(self, "ops", check_op_names(_check_ops(self.ops)))
        if not isinstance(self.require_input_output_edge, bool):
            raise TypeError("require_input_output_edge must be a bool; got "
                            f"{self.require_input_output_edge!r}.")

    def _choices(self, pair: Tuple[int, int]) -> List[Tuple[int, bool]]:
        """(code, backward) options of a node pair, in enumeration order."""
        k = len(self.ops)
        forced = self.require_input_output_edge and pair == (0, NUM_NODES - 1)
        options = [(code, False) for code in range(1 if forced else 0, k)]
        if self.kind == "bw" and not forced:
            options += [(code, True) for code in range(1, k)]
        return options

    def _genotype(self, choice: Sequence[Tuple[int, bool]]) -> CellGenotype:
        rows = [[0] * NUM_NODES for _ in range(NUM_NODES)]
        for (i, j), (code, backward) in zip(_FORWARD_PAIRS, choice):
            if backward:
                rows[j][i] = code
            else:
                rows[i][j] = code
        return CellGenotype(tuple(map(tuple, rows)), self.ops)

    @property
    def size(self) -> int:
        """Number of op matrices in the space (= ``len(list(self.enumerate()))``)."""
        return math.prod(len(self._choices(pair)) for pair in _FORWARD_PAIRS)

    def enumerate(self) -> Iterator[CellGenotype]:
        """Every op matrix of the space, unpruned, in a fixed order (a generator).

        With ``require_input_output_edge=False`` this includes disconnected cells;
        keep ``g for g in space.enumerate() if g.connected`` to drop them.
        """
        for choice in itertools.product(*(self._choices(pair) for pair in _FORWARD_PAIRS)):
            yield self._genotype(choice)

    def _accept(self, genotype: CellGenotype) -> bool:
        if self.require_input_output_edge and not genotype.matrix[0][NUM_NODES - 1]:
            return False
        return genotype.connected

    def sample(self, rng: random.Random, max_tries: int = 100_000) -> CellGenotype:
        """Draw a pruned cell as the official sampler does (``model_snn.py`` L27-46, L98-110).

        Per node pair ``i < j``: a forward op uniform over all codes; for Bw also a
        backward op uniform over all codes and a fair coin choosing which one to
        keep. Then prune (:meth:`CellGenotype.pruned`) and redraw unless the cell is
        connected (and has a non-``none`` 0->3 edge when required). So ``none``
        has probability 1/k per pair: sampling is not uniform over :meth:`enumerate`.

        Args:
            rng: a ``random.Random`` (``random.Random(seed)`` for reproducible draws).
        """
        _check_rng(rng)
        k = len(self.ops)
        for _ in range(max_tries):
            choice = []
            for _pair in _FORWARD_PAIRS:
                upper = rng.randrange(k)
                if self.kind == "bw":
                    lower, keep_upper = rng.randrange(k), rng.randrange(2)
                    choice.append((upper, False) if keep_upper else (lower, True))
                else:
                    choice.append((upper, False))
            genotype = self._genotype(choice).pruned()
            if self._accept(genotype):
                return genotype
        raise RuntimeError(f"no valid cell in {max_tries} draws; check the space's ops {self.ops}.")

    def mutate(self, genotype: CellGenotype, rng: random.Random,
               max_tries: int = 10_000) -> CellGenotype:
        """A valid, pruned neighbour: one node pair gets another op or direction.

        A node pair is picked uniformly and its choice (op, and for Bw direction) is
        replaced by a different one uniformly; the result is pruned and redrawn until
        it is valid and differs from ``genotype`` (pruned). Beyond the paper, which
        uses random search only; for :func:`snnlab.trainfree.evolutionary_search`.
        """
        self.validate(genotype)
        _check_rng(rng)
        parent = genotype.pruned()
        current = [(genotype.matrix[j][i], True) if genotype.matrix[j][i]
                   else (genotype.matrix[i][j], False) for i, j in _FORWARD_PAIRS]
        for _ in range(max_tries):
            index = rng.randrange(len(_FORWARD_PAIRS))
            options = [c for c in self._choices(_FORWARD_PAIRS[index]) if c != current[index]]
            if not options:
                continue
            choice = list(current)
            choice[index] = options[rng.randrange(len(options))]
            child = self._genotype(choice).pruned()
            if child != parent and self._accept(child):
                return child
        raise RuntimeError(f"no valid mutation of {genotype!r} in {max_tries} tries.")

    def validate(self, genotype: CellGenotype) -> CellGenotype:
        """Return ``genotype`` if it belongs to this space and can be built; else ValueError."""
        if not isinstance(genotype, CellGenotype):
            raise TypeError(f"expected a CellGenotype; got {type(genotype).__name__}. Parse text "
                            "with CellGenotype.from_string('0303 0030 2002 0200').")
        if genotype.ops != self.ops:
            raise ValueError(f"the genotype's ops {genotype.ops} differ from the space's "
                             f"{self.ops}; build it with ops=space.ops.")
        if self.kind == "fw" and genotype.is_backward:
            backward = [str(e) for e in genotype.edges() if e.direction == "backward"]
            raise ValueError(f"a Fw space has forward edges only; {genotype!r} has {backward}. "
                             "Use SNASNetSpace('bw').")
        if self.require_input_output_edge and not genotype.matrix[0][NUM_NODES - 1]:
            raise ValueError(f"{genotype!r} has no 0->3 edge, which this space requires "
                             "(require_input_output_edge=True, as the official sampler).")
        if not genotype.connected:
            raise ValueError(f"in {genotype!r} the input (node 0) never reaches the output "
                             "(node 3); add a path of non-'none' edges from 0 to 3.")
        return genotype


def _check_rng(rng) -> None:
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random (e.g. random.Random(0)); got "
                        f"{type(rng).__name__}.")
