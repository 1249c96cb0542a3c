"""Plot helpers for the book: membranes, rasters, spike counts, surrogates, histories, alphas.

Every helper follows one pattern (STYLE habit 12)::

    ax = plot_something(data, ..., ax=None)   # -> matplotlib Axes

It draws into ``ax`` if you give one, else into a new figure; it never calls
``plt.show()`` and never changes ``rcParams`` (only :func:`use_book_style`, called
once by each chapter, does). Tensors may live on any device
and may require grad: they are detached and copied to the CPU first. Axes are
labelled with their units ("time step", "neuron index", ...). ``matplotlib.pyplot``
is imported only when a new figure is needed, so importing this module selects
no backend.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from matplotlib.axes import Axes

__all__ = ["BOOK_STYLE", "BOOK_COLUMN_INCHES", "use_book_style", "plot_membrane", "plot_raster",
           "plot_spike_counts", "plot_surrogates", "plot_history", "plot_alphas"]

# The book's text column is about 757 CSS pixels wide on a 1366-pixel desktop screen. A figure
# W inches wide (drawn at 100 dpi) is shrunk to 7.57 / W of its size there, so a font of
# p points shows p * 100 / 72 * 7.57 / W pixels: 10 points stay >= 9 px up to W = 11.7.
BOOK_COLUMN_INCHES = 7.57
BOOK_STYLE = {
    "figure.dpi": 100,               # the text/plain "<Figure size WxH>" of the chapters
    "font.size": 12.0,               # "small" labels (0.83x) stay at 10 points
    "axes.titlesize": 12.0,
    "axes.labelsize": 11.0,
    "xtick.labelsize": 10.0,
    "ytick.labelsize": 10.0,
    "legend.fontsize": 10.0,
    "legend.title_fontsize": 10.0,
    "figure.titlesize": 13.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
"""rcParams of the book's figures: fonts that stay legible (>= 9 px) in the HTML column."""


def use_book_style(retina: bool = True) -> None:
    """Apply :data:`BOOK_STYLE` to every figure drawn from now on (chapters call it once).

    Args:
        retina: in a Jupyter kernel, store figures as PNG at twice their pixel size with
            their display size in the metadata (sharp on high-density screens, the same
            size on the page); ignored outside IPython.
    """
    import matplotlib
    import matplotlib.pyplot as plt    # the kernel's backend first: it may set its own rc

    del plt
    matplotlib.rcParams.update(BOOK_STYLE)
    if retina:
        _use_retina_figures()


def _use_retina_figures() -> None:
    """Ask IPython's inline backend for double-density PNGs (nothing outside a kernel)."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def _new_axes(ax: Optional[Axes], figsize=(6.0, 3.5)) -> Axes:
    """``ax`` itself, or the Axes of a new figure."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt     # deferred: no backend choice at import time
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _to_numpy(x, name: str) -> np.ndarray:
    """A tensor on any device (or an array/list) as a float numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a tensor or array of numbers; "
                        f"got {type(x).__name__}.") from err


def plot_membrane(v, threshold=None, spikes=None, ax: Optional[Axes] = None) -> Axes:
    """Membrane potential over time, with the threshold and the spike times.

    Args:
        v: membrane ``[T]`` (one neuron) or ``[T, N]`` (a few neurons), e.g.
            ``trace.v[:, 0, :3]`` from ``LIF(...)(x_seq, record=True)``.
        threshold: draw a dashed horizontal line at this value (float or 0-dim tensor).
        spikes: same shape as ``v``; a marker is drawn on the trace where it is nonzero.
        ax: Axes to draw into; a new figure if ``None``.
    Returns:
        The Axes: one line per neuron, plus the threshold line and one marker
        collection per neuron that spiked.
    """
    v_np = _to_numpy(v, "v")
    if v_np.ndim not in (1, 2):
        raise ValueError(f"v must be [T] or [T, N]; got shape {v_np.shape}. "
                         "Select neurons first, e.g. trace.v[:, 0, :3] for sample 0.")
    v_np = v_np.reshape(v_np.shape[0], -1)                    # [T, N]
    ax = _new_axes(ax)
    t = np.arange(v_np.shape[0])
    lines = ax.plot(t, v_np, marker=".", linewidth=1.2)
    if v_np.shape[1] > 1:
        for n, line in enumerate(lines):
            line.set_label(f"neuron {n}")
    else:
        lines[0].set_label("v")
    if spikes is not None:
        s_np = _to_numpy(spikes, "spikes")
        if s_np.size != v_np.size or s_np.shape[0] != v_np.shape[0]:
            raise ValueError(f"spikes must have the shape of v {tuple(np.shape(v_np))}; "
                             f"got {s_np.shape}.")
        s_np = s_np.reshape(v_np.shape)
        for n, line in enumerate(lines):
            hit = s_np[:, n] != 0
            if hit.any():
                ax.scatter(t[hit], v_np[hit, n], marker="^", s=40, color=line.get_color(),
                           zorder=3, label="spike" if n == 0 else None)
    if threshold is not None:
        ax.axhline(float(threshold), linestyle="--", color="gray", linewidth=1,
                   label="threshold")
    ax.set_xlabel("time step")
    ax.set_ylabel("membrane potential v (a.u.)")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_raster(spikes, ax: Optional[Axes] = None) -> Axes:
    """Spike raster: a dot at ``(t, n)`` for every spike of neuron ``n`` at step ``t``.

    Args:
        spikes: ``[T, N]`` (flatten the neurons of one sample first, e.g.
            ``spikes[:, 0].reshape(T, -1)``); nonzero means a spike.
        ax: Axes to draw into; a new figure if ``None``.
    Returns:
        The Axes, with one scatter collection holding all spikes.
    """
    s_np = _to_numpy(spikes, "spikes")
    if s_np.ndim != 2:
        raise ValueError(f"spikes must be [T, N]; got shape {s_np.shape}. For one sample of "
                         "[T, B, ...] pass spikes[:, b].reshape(T, -1).")
    T, N = s_np.shape
    t, n = np.nonzero(s_np)
    ax = _new_axes(ax)
    ax.scatter(t, n, marker="|", s=60, color="black", linewidths=1.5)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(-0.5, N - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron index")
    ax.set_title(f"{len(t)} spikes, {N} neurons, T = {T}", fontsize="medium")
    return ax


def plot_spike_counts(summary_or_rows, ax: Optional[Axes] = None) -> Axes:
    """Bar chart of spikes per image for each layer (or group of layers).

    Args:
        summary_or_rows: a :class:`~snnlab.monitor.SpikeSummary` (uses its
            ``layers``), a list of row dicts with ``name`` and ``spikes_per_image``
            (``mon.table()``; rows whose value is ``None`` are skipped), or a
            ``{name: spikes_per_image}`` dict such as ``mon.group_by(...)``.
        ax: Axes to draw into; a new figure if ``None``.
    Returns:
        The Axes, one bar per layer, names on the x axis.
    """
    if hasattr(summary_or_rows, "layers"):
        rows = summary_or_rows.layers
    else:
        rows = summary_or_rows
    if isinstance(rows, Mapping):
        names, values = list(rows.keys()), [float(v) for v in rows.values()]
    else:
        try:
            pairs = [(r["name"], r["spikes_per_image"]) for r in rows
                     if r.get("spikes_per_image") is not None]
        except (TypeError, KeyError, AttributeError) as err:
            raise TypeError("summary_or_rows must be a SpikeSummary, a list of dicts with keys "
                            "'name' and 'spikes_per_image', or a {name: value} dict; got "
                            f"{type(summary_or_rows).__name__}.") from err
        names = [p[0] for p in pairs]
        values = [float(p[1]) for p in pairs]
    if not names:
        raise ValueError("summary_or_rows holds no spike counts; run the model inside "
                         "`with SpikeMonitor(model) as mon:` before plotting.")
    ax = _new_axes(ax, figsize=(max(4.0, 0.6 * len(names) + 2), 3.5))
    x = np.arange(len(names))
    ax.bar(x, values, color="tab:blue")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize="small")
    ax.set_xlabel("layer")
    ax.set_ylabel("spikes per image")
    return ax


def plot_surrogates(surrogates, x=None, ax: Optional[Axes] = None) -> Axes:
    """Surrogate gradients ``dS/dx`` side by side.

    Args:
        surrogates: a sequence of surrogate objects (anything with
            ``.derivative(x)``, e.g. ``snnlab.surrogates.ATan()``) or names
            (``"atan"``, looked up with ``snnlab.surrogates.get_surrogate``); a
            single surrogate is accepted too. Legend entries are their ``repr``.
        x: points ``x = v - threshold`` to evaluate at; default ``linspace(-2, 2, 401)``.
        ax: Axes to draw into; a new figure if ``None``.
    Returns:
        The Axes, one line per surrogate.
    """
    if isinstance(surrogates, str) or hasattr(surrogates, "derivative"):
        surrogates = [surrogates]
    x_t = (torch.linspace(-2.0, 2.0, 401) if x is None
           else torch.as_tensor(_to_numpy(x, "x"), dtype=torch.float32))
    ax = _new_axes(ax)
    for sg in surrogates:
        if isinstance(sg, str):
            from snnlab.surrogates import get_surrogate
            sg = get_surrogate(sg)
        if not hasattr(sg, "derivative"):
            raise TypeError(f"each surrogate needs a .derivative(x) method; got {sg!r}.")
        ax.plot(x_t.numpy(), _to_numpy(sg.derivative(x_t), "derivative"), label=repr(sg))
    ax.axvline(0.0, color="gray", linewidth=0.8, linestyle=":")
    ax.set_xlabel("x = v - threshold (a.u.)")
    ax.set_ylabel("surrogate gradient dS/dx")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_history(history: Sequence[Mapping], keys: Union[str, Iterable[str]] = (
        "train_loss", "val_acc"), ax: Optional[Axes] = None) -> Axes:
    """Curves of training-history values against the epoch.

    Args:
        history: one dict per epoch, e.g. ``[{"epoch": 1, "train_loss": 2.1,
            "val_acc": 0.4}, ...]``. If every entry has ``"epoch"`` it is the x
            axis, else the position 1, 2, ... Entries lacking a key leave a gap.
        keys: which values to draw (a name or a sequence of names); keys that no
            entry has raise ``ValueError``.
        ax: Axes to draw into; a new figure if ``None``.
    Returns:
        The Axes, one line per key.
    """
    if isinstance(keys, str):
        keys = (keys,)
    history = list(history)
    if not history or not all(isinstance(h, Mapping) for h in history):
        raise ValueError("history must be a non-empty list of dicts, one per epoch "
                         "(as returned by the training loop).")
    available = sorted({k for h in history for k in h})
    missing = [k for k in keys if k not in available]
    if missing:
        raise ValueError(f"keys {missing} are in no history entry; available: {available}.")
    if all("epoch" in h for h in history):
        epochs = [h["epoch"] for h in history]
    else:
        epochs = list(range(1, len(history) + 1))
    ax = _new_axes(ax)
    for key in keys:
        values = [float(h[key]) if h.get(key) is not None else np.nan for h in history]
        ax.plot(epochs, values, marker=".", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("value (units of each key, see legend)")
    ax.legend(loc="best", fontsize="small")
    return ax


def _edge_labels(edges: int) -> list:
    """Row labels ``"c_{k-2} -> 2"`` of a DARTS cell with ``edges`` rows (quark0 order)."""
    steps, total = 0, 0
    while total < edges:
        total += steps + 2
        steps += 1
    if total != edges:
        raise ValueError(f"weights have {edges} rows, which is no DARTS cell's edge count "
                         "(2 + 3 + ... + (steps + 1): 2, 5, 9, 14, 20, ...); pass the "
                         "[edges, ops] softmax weights of one cell.")
    names = ["$c_{k-2}$", "$c_{k-1}$"] + [str(n) for n in range(2, steps + 2)]
    return [f"{names[j]} \u2192 {i + 2}" for i in range(steps) for j in range(i + 2)]


def plot_alphas(weights, ops: Sequence[str], kept: Optional[Iterable] = None,
                vmin: Optional[float] = None, vmax: Optional[float] = None,
                cmap: str = "viridis", center: Optional[float] = None,
                colorbar: bool = True, ax: Optional[Axes] = None) -> Axes:
    """Heatmap of one DARTS cell's architecture weights: a row per edge, a column per op.

    Args:
        weights: ``[edges, ops]`` softmax weights (tensor, array or nested lists),
            e.g. ``model.arch_weights()[0]`` or a search history's
            ``row["alphas_normal"]``. Rows are in quark0 order (edge
            ``offset(i) + j`` from state ``j`` into node ``i + 2``) and are labelled
            ``"$c_{k-2}$ -> 2"``, ... (matplotlib mathtext); the edge count fixes
            the number of nodes.
        ops: the op names of the columns (the supernet's ``ops``).
        kept: optional ``(row, column)`` pairs to mark with a white dot, e.g. the
            edges and ops a derived genotype keeps.
        vmin, vmax: colour range; default the range of ``weights`` (give the same
            values to panels you compare).
        cmap: a matplotlib colormap name.
        center: put the middle of the colormap at this value (a two-slope norm
            from ``vmin`` to ``vmax``); with ``center=1 / len(ops)`` and a
            diverging ``cmap`` such as ``"RdBu_r"``, red cells gained weight
            since the uniform start and blue cells lost it.
        colorbar: add a colour bar labelled "softmax weight".
        ax: Axes to draw into; a new figure if ``None``.
    Returns:
        The Axes; its single image (``ax.images[0]``) holds the weights.
    """
    w = _to_numpy(weights, "weights")
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-d [edges, ops]; got shape {w.shape}.")
    if isinstance(ops, str) or len(ops) != w.shape[1]:
        raise ValueError(f"ops must name the {w.shape[1]} columns of weights; got {ops!r}.")
    labels = _edge_labels(w.shape[0])
    ax = _new_axes(ax, figsize=(0.7 * w.shape[1] + 2.5, 0.28 * w.shape[0] + 1.5))
    if center is None:
        scale = {"vmin": vmin, "vmax": vmax}
    else:
        from matplotlib.colors import TwoSlopeNorm
        low = float(np.min(w)) if vmin is None else float(vmin)
        high = float(np.max(w)) if vmax is None else float(vmax)
        if not low < center < high:
            raise ValueError(f"center={center} must lie strictly between vmin ({low:.4g}) and "
                             f"vmax ({high:.4g}); pass vmin/vmax around it.")
        scale = {"norm": TwoSlopeNorm(vcenter=center, vmin=low, vmax=high)}
    image = ax.imshow(w, aspect="auto", cmap=cmap, interpolation="nearest", **scale)
    ax.set_xticks(np.arange(w.shape[1]))
    ax.set_xticklabels(list(ops), rotation=45, ha="right", fontsize="small")
    ax.set_yticks(np.arange(w.shape[0]))
    ax.set_yticklabels(labels, fontsize="small")
    ax.set_xlabel("candidate op")
    ax.set_ylabel("edge (source \u2192 node)")
    if kept is not None:
        pairs = [(int(r), int(c)) for r, c in kept]
        bad = [p for p in pairs if not (0 <= p[0] < w.shape[0] and 0 <= p[1] < w.shape[1])]
        if bad:
            raise ValueError(f"kept holds (row, column) pairs outside the {w.shape} weights: "
                             f"{bad}.")
        if pairs:
            ax.scatter([c for _, c in pairs], [r for r, _ in pairs], s=18, c="white",
                       edgecolors="black", linewidths=0.5, zorder=3)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="softmax weight")
    return ax
