"""Graphviz drawings of searched cells, for the book and for your own reports.

Each function returns a ``graphviz.Digraph``: Jupyter shows it inline, and
``.render("cell", format="png")`` writes a file (rendering needs Graphviz's
``dot`` program; ``make book`` and CI install it).
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import graphviz

__all__ = ["draw_snasnet_cell", "draw_darts_cell", "html_label"]

_NODE_NAMES = ("input", "node 1", "node 2", "output")


def draw_snasnet_cell(genotype, title: str = "") -> graphviz.Digraph:
    """Draw a SNASNet cell: forward edges solid, backward (feedback) edges dashed red.

    Args:
        genotype: anything with ``matrix`` (4x4 op indices, ``[i][j]`` is the op on
            edge i -> j; 0 is ``none``) and ``ops`` (the op names), such as
            :class:`snnlab.snasnet.CellGenotype`.
        title: an optional caption.
    Returns:
        a ``graphviz.Digraph``; a backward edge j -> i (j > i) feeds node i one
        time step later, so it is labelled ``t-1``.
    """
    matrix: Sequence[Sequence[int]] = genotype.matrix
    ops: Sequence[str] = genotype.ops
    dot = graphviz.Digraph(graph_attr={"rankdir": "LR", "label": title, "labelloc": "t",
                                       "fontsize": "12"},
                           node_attr={"shape": "circle", "fontsize": "10", "width": "0.6"},
                           edge_attr={"fontsize": "9"})
    for i, name in enumerate(_NODE_NAMES):
        color = "lightblue" if i in (0, 3) else "white"
        dot.node(str(i), name, style="filled", fillcolor=color)
    for i, row in enumerate(matrix):
        for j, op_index in enumerate(row):
            if op_index == 0 or i == j:
                continue
            if i < j:
                dot.edge(str(i), str(j), label=ops[op_index])
            else:   # backward: drawn against the flow, one step late
                dot.edge(str(i), str(j), label=f"{ops[op_index]} (t-1)", style="dashed",
                         color="firebrick", fontcolor="firebrick", constraint="false")
    return dot


def html_label(name: str) -> str:
    """A TeX-style name as a Graphviz HTML label: ``"c_{k-2}"`` -> ``"<c<SUB>k-2</SUB>>"``.

    Graphviz prints a plain label verbatim, braces included; an HTML label sets the
    subscript. ``x_1`` (one character) works too; names without ``_`` are only escaped.
    """
    text = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"_\{([^{}]*)\}|_(\w)", lambda m: f"<SUB>{m.group(1) or m.group(2)}</SUB>", text)
    return f"<{text}>"


# The names snnlab.genotypes.draw_genotype gives the two input nodes and the output node.
_DARTS_IO = ("c_{k-2}", "c_{k-1}", "c_{k}")


def draw_darts_cell(genotype, kind: str = "normal", title: Optional[str] = None,
                    inputs: Sequence[str] = ("c_{k-2}", "c_{k-1}"),
                    output: str = "c_{k}") -> graphviz.Digraph:
    """Draw one cell of a DARTS genotype with subscripted input and output names.

    The drawing is :func:`snnlab.genotypes.draw_genotype`'s (inputs and output as boxes,
    one circle per LIF node, skip edges dashed); only the three names change, from the
    literal ``c_{k-2}`` to c with the subscript k-2 (or to your own names, e.g.
    ``inputs=("s_0", "s_1")`` for SpikeDHS's notation).

    Args:
        genotype: a :class:`snnlab.genotypes.Genotype`.
        kind: ``"normal"`` or ``"reduce"``.
        title: caption; default ``"<kind> cell"``.
        inputs: names of the two input nodes (previous-previous and previous cell).
        output: name of the output node (the concatenation).
    Returns:
        a ``graphviz.Digraph``.
    """
    from .genotypes import draw_genotype     # the one drawing of a DARTS cell

    if isinstance(inputs, str) or len(inputs) != 2:
        raise ValueError(f"inputs must name the 2 input nodes; got {inputs!r}.")
    dot = draw_genotype(genotype, kind, title)
    names = dict(zip(_DARTS_IO, (*inputs, output)))
    quoted = {f'label="{old}"': f"label={html_label(new)}" for old, new in names.items()}
    pattern = re.compile("|".join(re.escape(q) for q in quoted))
    dot.body = [pattern.sub(lambda m: quoted[m.group(0)], line) for line in dot.body]
    return dot
