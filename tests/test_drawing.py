"""Graphviz drawings: the right edges, in the right style (no rendering needed)."""
from types import SimpleNamespace

from snnlab.drawing import draw_snasnet_cell

OPS = ("none", "skip_connect", "spike_conv_1x1", "spike_conv_3x3", "avg_pool_3x3")


def test_snasnet_cell_edges_and_styles():
    # the released CIFAR-10 cell: 4 forward edges, 2 backward (2->0 and 3->1)
    matrix = [[0, 3, 0, 3], [0, 0, 3, 0], [2, 0, 0, 2], [0, 2, 0, 0]]
    dot = draw_snasnet_cell(SimpleNamespace(matrix=matrix, ops=OPS), title="cell")
    edges = [line.strip() for line in dot.body if "->" in line]
    assert len(edges) == 6
    dashed = [e for e in edges if "dashed" in e]
    assert sorted(e.split(" [")[0] for e in dashed) == ["2 -> 0", "3 -> 1"]
    assert all("(t-1)" in e for e in dashed)
    assert sum("spike_conv_3x3" in e for e in edges) == 3


def test_html_label_sets_tex_subscripts_and_escapes():
    from snnlab.drawing import html_label

    assert html_label("c_{k-2}") == "<c<SUB>k-2</SUB>>"
    assert html_label("s_0") == "<s<SUB>0</SUB>>"
    assert html_label("a<b") == "<a&lt;b>"


def test_darts_cell_names_inputs_without_braces():
    import pytest
    from snnlab.drawing import draw_darts_cell
    from snnlab.genotypes import DARTS_V2

    dot = draw_darts_cell(DARTS_V2, "normal")
    assert "{" not in " ".join(line for line in dot.body if "label=<" in line)
    assert "label=<c<SUB>k-2</SUB>>" in dot.source and "label=<c<SUB>k</SUB>>" in dot.source
    assert sum("->" in line for line in dot.body) == 8 + 4   # 8 kept edges, 4 into the output
    renamed = draw_darts_cell(DARTS_V2, "reduce", inputs=("s_0", "s_1"))
    assert "label=<s<SUB>1</SUB>>" in renamed.source and "k-1" not in renamed.source
    with pytest.raises(ValueError, match="2 input nodes"):
        draw_darts_cell(DARTS_V2, inputs=("s0",))
