"""Fixtures shared by several test modules."""
import pytest
import torch
from torch import nn


class SmoothSupernet(nn.Module):
    """A twice-differentiable stand-in for a DARTS supernet, in float64.

    ``rows`` mixed edges in a chain, each a softmax over three ``tanh(Linear(5, 5))``
    paths, then a ``Linear(5, 4)`` head: inputs ``[B, 5]``, logits ``[B, 4]``. The LIF's
    fused backward cannot be differentiated again, so tests of the exact
    (double-backward) Hessian-vector product and of the architect's pieces use this.
    """

    def __init__(self, rows: int = 1):
        super().__init__()
        self.alphas = nn.Parameter(torch.randn(rows, 3, dtype=torch.float64))
        self.paths = nn.ModuleList(nn.Linear(5, 5).double() for _ in range(3))
        self.head = nn.Linear(5, 4).double()

    def arch_parameters(self):
        return [self.alphas]

    def weight_parameters(self):
        return [p for n, p in self.named_parameters() if n != "alphas"]

    def forward(self, x):
        for w in torch.softmax(self.alphas, -1):
            x = sum(wk * torch.tanh(path(x)) for wk, path in zip(w, self.paths))
        return self.head(x)


@pytest.fixture
def smooth_supernet():
    """The class :class:`SmoothSupernet`: call it (after seeding) for a fresh model."""
    return SmoothSupernet
