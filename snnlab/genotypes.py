"""DARTS genotypes: the discrete cell a search hands over to retraining.

A DARTS cell (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture
Search", ICLR 2019, §2.1) is a DAG over ``steps + 2`` nodes: node 0 and node 1
are the outputs of the two previous cells, nodes ``2 .. steps + 1`` are the
intermediate nodes, and the cell output concatenates some of them. A
:class:`Genotype` keeps, for the normal and the reduction cell, two incoming
edges per intermediate node as ``(op_name, source_node)`` pairs: entries
``2k`` and ``2k + 1`` feed node ``k + 2``. It is plain data: print it, paste its
``repr`` back into code, or store it as JSON with :meth:`Genotype.to_dict`.

:func:`derive_genotype` turns the softmax weights of a supernet into a
genotype with the paper's rule (§2.4): every intermediate node keeps the two
strongest incoming edges from *distinct* predecessors, an edge's strength
being its largest non-``none`` weight, and each kept edge takes its best
non-``none`` op. ``none`` is excluded because, in DARTS's ANN cells, its weight
says nothing about the classification once batch norm follows (DARTS §2.4;
quark0/darts#45 confirms the "largest single weight" reading). At a spiking
node with a fixed threshold that argument fails (the weights, ``none``'s
included, scale the membrane current; :mod:`snnlab.darts`), so there the
exclusion is a convention kept from DARTS. Its ``max_skips`` option is the
skip-connection cap of P-DARTS (Chen et al., ICCV 2019), one remedy for the
skip collapse of DARTS.

:func:`draw_genotype` draws a cell with graphviz.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

__all__ = ["Genotype", "GenotypeEdge", "CELL_KINDS", "NONE_OP", "SKIP_OP", "DARTS_V2",
           "derive_genotype", "derive_cell", "num_edges", "draw_genotype"]

CELL_KINDS = ("normal", "reduce")
NONE_OP = "none"                # the zero op: never kept (found by name, not position)
SKIP_OP = "skip_connect"        # what the skip cap and the collapse indicators count


class GenotypeEdge(NamedTuple):
    """One kept edge: ``op`` applied to node ``source``, feeding node ``target``.

    Nodes 0 and 1 are the cell inputs (outputs of cells k-2 and k-1); nodes
    ``2 .. steps + 1`` are the intermediate nodes.
    """

    op: str
    source: int
    target: int


def num_edges(steps: int) -> int:
    """Edges of a DARTS cell with ``steps`` intermediate nodes: ``2 + 3 + ... + (steps + 1)``."""
    return sum(2 + i for i in range(steps))


def _edge_list(value: Any, field: str) -> Tuple[Tuple[str, int], ...]:
    """Check and normalise a list of ``(op, source)`` pairs (tuples or JSON lists)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"Genotype.{field} must be a sequence of (op_name, source_node) pairs; "
                        f"got {type(value).__name__}.")
    if len(value) == 0 or len(value) % 2:
        raise ValueError(f"Genotype.{field} must hold two (op_name, source_node) pairs per "
                         f"intermediate node, so an even, non-zero number; got {len(value)}.")
    edges = []
    for position, item in enumerate(value):
        if (isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 2
                or not isinstance(item[0], str) or isinstance(item[1], bool)
                or not isinstance(item[1], int)):
            raise ValueError(f"Genotype.{field}[{position}] must be a pair (op_name: str, "
                             f"source_node: int), e.g. ('conv_3x3', 0); got {item!r}.")
        op, source = item[0], int(item[1])
        target = 2 + position // 2
        if not 0 <= source < target:
            raise ValueError(f"Genotype.{field}[{position}] = {item!r} feeds node {target}, so "
                             f"its source must be in 0..{target - 1} (0, 1: the cell inputs; "
                             f"2..: earlier intermediate nodes); got {source}.")
        edges.append((op, source))
    return tuple(edges)


def _concat(value: Any, field: str, steps: int) -> Tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise TypeError(f"Genotype.{field} must be a non-empty sequence of node indices, "
                        f"e.g. (2, 3, 4, 5); got {value!r}.")
    nodes = []
    for node in value:
        if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < steps + 2:
            raise ValueError(f"Genotype.{field} holds {node!r}; node indices must be ints in "
                             f"0..{steps + 1} for a cell with {steps} intermediate nodes.")
        nodes.append(int(node))
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"Genotype.{field} repeats a node: {tuple(nodes)}.")
    return tuple(nodes)


@dataclass(frozen=True)
class Genotype:
    """A DARTS cell pair: normal and reduction edges plus the nodes each concatenates.

    Attributes:
        normal: ``((op, source), ...)``, two pairs per intermediate node, in node
            order (entries ``2k, 2k+1`` feed node ``k + 2``).
        normal_concat: the nodes concatenated into the normal cell's output,
            ``(2, 3, 4, 5)`` in DARTS.
        reduce, reduce_concat: the same for the reduction cell.

    Lists (as JSON gives them) are accepted and stored as tuples, so the
    ``repr`` is a valid expression that rebuilds an equal genotype:

        >>> g = Genotype(normal=(("conv_3x3", 0), ("skip_connect", 1)), normal_concat=(2,),
        ...              reduce=(("max_pool_3x3", 0), ("conv_3x3", 1)), reduce_concat=(2,))
        >>> eval(repr(g)) == g
        True

    Op names are checked against the op registry only when a network is built
    (:class:`snnlab.darts.DiscreteNetwork`), so genotypes of other spaces (the
    published ``DARTS_V2``) can still be printed and drawn.
    """

    normal: Tuple[Tuple[str, int], ...]
    normal_concat: Tuple[int, ...]
    reduce: Tuple[Tuple[str, int], ...]
    reduce_concat: Tuple[int, ...]

    def __post_init__(self) -> None:
        for kind in CELL_KINDS:
            edges = _edge_list(getattr(self, kind), kind)
            object.__setattr__(self, kind, edges)
            concat = _concat(getattr(self, f"{kind}_concat"), f"{kind}_concat", len(edges) // 2)
            object.__setattr__(self, f"{kind}_concat", concat)

    # ---- reading -------------------------------------------------------------
    @staticmethod
    def _check_kind(kind: str) -> str:
        if kind not in CELL_KINDS:
            raise ValueError(f"kind must be one of {CELL_KINDS}; got {kind!r}.")
        return kind

    def steps_of(self, kind: str = "normal") -> int:
        """Number of intermediate nodes of the ``kind`` cell."""
        return len(getattr(self, self._check_kind(kind))) // 2

    def concat_of(self, kind: str = "normal") -> Tuple[int, ...]:
        """The nodes the ``kind`` cell concatenates into its output."""
        return getattr(self, f"{self._check_kind(kind)}_concat")

    def edges_of(self, kind: str = "normal") -> Tuple[GenotypeEdge, ...]:
        """The kept edges of the ``kind`` cell as ``GenotypeEdge(op, source, target)``."""
        edges = getattr(self, self._check_kind(kind))
        return tuple(GenotypeEdge(op, source, 2 + i // 2) for i, (op, source) in enumerate(edges))

    def ops_used(self) -> Tuple[str, ...]:
        """Sorted op names appearing in either cell."""
        return tuple(sorted({op for kind in CELL_KINDS for op, _ in getattr(self, kind)}))

    def skip_count(self, kind: str = "normal", skip_name: str = SKIP_OP) -> int:
        """How many kept edges of the ``kind`` cell are ``skip_name`` (the collapse indicator)."""
        return sum(op == skip_name for op, _ in getattr(self, self._check_kind(kind)))

    # ---- text and JSON ---------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict: edges as ``[op, source]`` lists, concats as lists."""
        return {kind: [[op, source] for op, source in getattr(self, kind)]
                for kind in CELL_KINDS} | {
            f"{kind}_concat": list(getattr(self, f"{kind}_concat")) for kind in CELL_KINDS}

    @classmethod
    def from_dict(cls, data: dict) -> "Genotype":
        """Inverse of :meth:`to_dict` (also accepts tuples); raises on missing or extra keys."""
        if not isinstance(data, dict):
            raise TypeError(f"Genotype.from_dict needs a dict like Genotype.to_dict() returns; "
                            f"got {type(data).__name__}.")
        keys = {"normal", "normal_concat", "reduce", "reduce_concat"}
        missing, extra = sorted(keys - set(data)), sorted(set(data) - keys)
        if missing or extra:
            raise ValueError(f"a genotype dict has exactly the keys {sorted(keys)}; missing "
                             f"{missing}, unexpected {extra}. A search result file keeps it "
                             "under result['genotype'].")
        return cls(**{k: data[k] for k in keys})

    def __str__(self) -> str:
        def name(node: int) -> str:
            return ("c_{k-2}", "c_{k-1}")[node] if node < 2 else str(node)

        lines = []
        for kind in CELL_KINDS:
            concat = ", ".join(name(n) for n in self.concat_of(kind))
            lines.append(f"{kind} cell (output = concat of {concat}):")
            edges = self.edges_of(kind)
            for target in sorted({e.target for e in edges}):
                inputs = ", ".join(f"{e.op}({name(e.source)})" for e in edges if e.target == target)
                lines.append(f"  node {target} = LIF({inputs})")
        return "\n".join(lines)


# DARTS (second order) as published: DARTS paper Figures 4-5, quark0/darts cnn/genotypes.py
# DARTS_V2 (stored as data; its op names are DARTS's, which snnlab.darts registers as
# spiking-node ops, so this cell can be retrained as an SNN for comparison). It keeps
# quark0's order (a node's edges by strength, e.g. node 4 lists source 1 before 0), while
# derive_genotype lists them by source: compare cells as per-node sets, not with ==.
DARTS_V2 = Genotype(
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    normal_concat=(2, 3, 4, 5),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
    reduce_concat=(2, 3, 4, 5))


# ----------------------------------------------------------------------------- derivation

def _as_rows(weights: Any, name: str, steps: int, n_ops: int) -> List[List[float]]:
    """``weights`` (tensor, array or nested lists) as Python float rows, checked."""
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu().double().tolist()
    elif hasattr(weights, "tolist"):
        weights = weights.tolist()
    try:
        rows = [[float(v) for v in row] for row in weights]
    except TypeError as err:
        raise TypeError(f"{name} must be a 2-d [edges, ops] tensor, array or nested list; "
                        f"got {type(weights).__name__}.") from err
    edges = num_edges(steps)
    if len(rows) != edges or any(len(row) != n_ops for row in rows):
        shape = (len(rows), len(rows[0]) if rows else 0)
        raise ValueError(f"{name} must have shape [{edges}, {n_ops}] ({steps} nodes, "
                         f"{n_ops} ops); got {shape}.")
    for e, row in enumerate(rows):
        if (any(not math.isfinite(v) or v < -1e-6 or v > 1 + 1e-6 for v in row)
                or abs(sum(row) - 1.0) > 1e-3):
            raise ValueError(f"{name} row {e} is not a probability vector (sum {sum(row):.4g}, "
                             f"min {min(row):.4g}): pass softmax weights, "
                             "torch.softmax(alphas, dim=-1), not raw alphas "
                             "(ranking raw alphas picks the wrong edges, khanrc/pt.darts#38).")
    return rows


def derive_cell(rows: Sequence[Sequence[float]], ops: Sequence[str], steps: int = 4,
                excluded: frozenset = frozenset()) -> Tuple[Tuple[str, int, int], ...]:
    """The DARTS rule for one cell; returns ``((op, source, edge_row), ...)``, 2 per node.

    Args:
        rows: ``[edges, ops]`` weights, row ``offset(k) + j`` is the edge from node
            ``j`` into intermediate node ``k + 2`` (quark0 ``model_search.py`` order).
        ops: the op names of the columns; ``"none"`` is found by name.
        excluded: ``(row, column)`` pairs treated as unavailable (the skip cap).

    Ties are broken deterministically: between ops, the earlier column wins;
    between edges of equal strength, the lower source node wins.
    """
    candidates = [c for c, op in enumerate(ops) if op != NONE_OP]
    kept, offset = [], 0
    for k in range(steps):
        scored = []        # (strength, source, row, best column)
        for source in range(k + 2):
            row = offset + source
            usable = [c for c in candidates if (row, c) not in excluded]
            if not usable:
                continue
            # best op: largest weight, earlier column on ties (max keeps the first maximum)
            best = max(usable, key=lambda c: (rows[row][c], -c))
            scored.append((rows[row][best], source, row, best))
        if len(scored) < 2:
            raise ValueError(f"node {k + 2} has fewer than 2 usable incoming edges; the skip "
                             "cap excluded too much (raise max_skips or add ops).")
        scored.sort(key=lambda s: (-s[0], s[1]))          # strongest first, lower source on ties
        for strength, source, row, best in sorted(scored[:2], key=lambda s: s[1]):
            kept.append((ops[best], source, row))
        offset += k + 2
    return tuple(kept)


def derive_genotype(weights_normal: Any, weights_reduce: Any, ops: Sequence[str],
                    steps: int = 4, max_skips: Optional[int] = None,
                    concat: Optional[Sequence[int]] = None) -> Genotype:
    """Derive the discrete genotype from softmax architecture weights (DARTS §2.4).

    Args:
        weights_normal, weights_reduce: ``[num_edges(steps), len(ops)]`` softmax
            weights (rows sum to 1), e.g. ``torch.softmax(model.alphas_normal, -1)``.
        ops: the op names indexing the columns (the supernet's op tuple).
        steps: intermediate nodes per cell (DARTS: 4).
        max_skips: P-DARTS cap on ``skip_connect`` edges in the *normal* cell:
            while the derived normal cell has more, the kept skip edge with the
            smallest skip weight loses its skip option and the cell is derived
            again (that edge may then keep another op or give way to another
            edge). None: no cap (plain DARTS).
        concat: nodes concatenated into the output; default all intermediate
            nodes, ``(2, ..., steps + 1)``.
    Returns:
        the :class:`Genotype`; edges of each node are listed by source node.
        quark0's ``_parse`` lists them by strength instead: the kept sets are the
        same, the tuples may differ, so a derived genotype can differ with ``==``
        from a published one (``DARTS_V2``) that has the same edges; compare the
        per-node sets of ``(op, source)``.

    Example:
        >>> import torch
        >>> w = torch.softmax(torch.zeros(14, 3), -1)
        >>> derive_genotype(w, w, ("none", "skip_connect", "conv_3x3")).normal[:2]
        (('skip_connect', 0), ('skip_connect', 1))
    """
    if isinstance(ops, str):
        raise TypeError(f"ops must be a sequence of op names, not the str {ops!r}.")
    ops = tuple(ops)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}.")
    if not any(op != NONE_OP for op in ops):
        raise ValueError(f"ops {ops} has no op besides {NONE_OP!r}; nothing can be kept.")
    normal = _as_rows(weights_normal, "weights_normal", steps, len(ops))
    reduce = _as_rows(weights_reduce, "weights_reduce", steps, len(ops))
    normal_edges = derive_cell(normal, ops, steps)
    if max_skips is not None:
        if isinstance(max_skips, bool) or not isinstance(max_skips, int) or max_skips < 0:
            raise ValueError(f"max_skips must be None (no cap) or an int >= 0; got {max_skips!r}.")
        if SKIP_OP in ops:
            if not any(op not in (NONE_OP, SKIP_OP) for op in ops):
                raise ValueError(f"max_skips needs an op besides {NONE_OP!r} and {SKIP_OP!r} "
                                 f"to put in place of a capped skip; ops are {ops}.")
            column, excluded = ops.index(SKIP_OP), set()
            while True:
                skips = [(normal[row][column], -row, row) for op, _, row in normal_edges
                         if op == SKIP_OP]
                if len(skips) <= max_skips:
                    break
                weakest = min(skips)[2]         # smallest skip weight; the later row on ties
                excluded.add((weakest, column))
                normal_edges = derive_cell(normal, ops, steps, frozenset(excluded))
    reduce_edges = derive_cell(reduce, ops, steps)
    concat = tuple(range(2, steps + 2)) if concat is None else tuple(concat)
    return Genotype(normal=tuple((op, src) for op, src, _ in normal_edges), normal_concat=concat,
                    reduce=tuple((op, src) for op, src, _ in reduce_edges), reduce_concat=concat)


# ----------------------------------------------------------------------------- drawing

def draw_genotype(genotype: Genotype, kind: str = "normal", title: Optional[str] = None):
    """Draw one cell of ``genotype`` as a ``graphviz.Digraph`` (left to right).

    Inputs ``c_{k-2}``, ``c_{k-1}`` and the output ``c_{k}`` are blue boxes; the
    numbered intermediate nodes are circles, each one LIF layer that sums the
    currents of its incoming ops; edges are labelled with their op. Jupyter shows
    the result inline; ``.render(path, format="png")`` needs Graphviz's ``dot``
    program (``make book`` and CI install it).

    Args:
        genotype: a :class:`Genotype`.
        kind: ``"normal"`` or ``"reduce"``.
        title: caption; default ``"<kind> cell"``.
    """
    import graphviz   # local: importing snnlab.genotypes must not need graphviz

    if not isinstance(genotype, Genotype):
        raise TypeError(f"genotype must be a snnlab.genotypes.Genotype; got "
                        f"{type(genotype).__name__}. Convert a dict with Genotype.from_dict.")
    Genotype._check_kind(kind)
    dot = graphviz.Digraph(
        graph_attr={"rankdir": "LR", "label": title if title is not None else f"{kind} cell",
                    "labelloc": "t", "fontsize": "12"},
        node_attr={"fontsize": "10", "height": "0.4"}, edge_attr={"fontsize": "9"})
    inputs = {0: "c_{k-2}", 1: "c_{k-1}"}
    for node, label in inputs.items():
        dot.node(str(node), label, shape="box", style="filled", fillcolor="lightblue")
    for node in range(2, genotype.steps_of(kind) + 2):
        dot.node(str(node), str(node), shape="circle", style="filled", fillcolor="lightyellow")
    dot.node("out", "c_{k}", shape="box", style="filled", fillcolor="palegoldenrod")
    for edge in genotype.edges_of(kind):
        dot.edge(str(edge.source), str(edge.target), label=edge.op,
                 style="dashed" if edge.op == SKIP_OP else "solid")
    for node in genotype.concat_of(kind):
        dot.edge(str(node), "out", color="gray")
    return dot
