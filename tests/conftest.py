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


@pytest.fixture(scope="session")
def book_build(tmp_path_factory):
    """The HTML book, built once per test session from the stored outputs.

    ``jupyter-book build --all -W -n --keep-going`` of a copy of the sources with
    execution off (nbval executes the chapters in the same run). tests/test_book.py
    checks that it built without a warning; tests/test_browser.py opens its pages.
    Returns a namespace: ``returncode``, ``log`` (the tail of the build's output),
    ``html`` (the ``_build/html`` folder) and ``config`` (the ``_config.yml`` used).
    """
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    import yaml

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config["execute"]["execute_notebooks"] = "off"
    src = tmp_path_factory.mktemp("book") / "src"
    src.mkdir()
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    shutil.copy(root / "_toc.yml", src / "_toc.yml")
    shutil.copytree(root / "book", src / "book", ignore=shutil.ignore_patterns(
        ".ipynb_checkpoints", "__pycache__", "conftest.py"))
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book"]
    command += ["build", "--all", "-W", "-n", "--keep-going", str(src)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    return SimpleNamespace(returncode=result.returncode,
                           log=(result.stdout + result.stderr)[-6000:],
                           html=src / "_build" / "html", config=config)
