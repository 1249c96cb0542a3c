"""Tests for snnlab.viz: every helper returns an Axes with the expected artists and labels."""
import matplotlib

matplotlib.use("Agg")   # headless; the library itself never chooses a backend

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from torch import nn  # noqa: E402

from snnlab.layers import TimeDistributed  # noqa: E402
from snnlab.monitor import SpikeMonitor  # noqa: E402
from snnlab.neurons import LIF  # noqa: E402
from snnlab.surrogates import ATan, Dspike, Sigmoid  # noqa: E402
from snnlab.viz import (plot_history, plot_membrane, plot_raster, plot_spike_counts,  # noqa: E402
                        plot_surrogates)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lif_trace():
    x = (torch.ones(6, 1, 3) * torch.tensor([0.6, 1.5, 0.3])).requires_grad_()   # [T, B, N]
    spikes, trace = LIF(tau=2.0)(x, record=True)
    return spikes[:, 0], trace.v[:, 0]                                          # [T, N]


def test_plot_membrane_lines_threshold_and_spikes():
    spikes, v = _lif_trace()
    assert v.requires_grad
    ax = plot_membrane(v, threshold=1.0, spikes=spikes)
    assert isinstance(ax, Axes)
    assert len(ax.lines) == 3 + 1                   # 3 neurons + threshold line
    assert len(ax.collections) == 2                 # neurons 0 and 1 spike, neuron 2 does not
    assert ax.get_xlabel() == "time step" and "membrane" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "threshold" in labels and "neuron 0" in labels
    # the spike markers sit on the trace at the spike times
    offsets = ax.collections[0].get_offsets()
    torch.testing.assert_close(torch.as_tensor(offsets[:, 0]),
                               torch.nonzero(spikes[:, 0]).flatten().double())


def test_plot_membrane_single_trace_into_given_axes():
    _, v = _lif_trace()
    fig, ax = plt.subplots()
    out = plot_membrane(v[:, 0], threshold=torch.tensor(1.0), ax=ax)
    assert out is ax and len(ax.lines) == 2
    with pytest.raises(ValueError, match=r"\[T\] or \[T, N\]"):
        plot_membrane(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="shape of v"):
        plot_membrane(v, spikes=torch.zeros(5, 3))


def test_plot_raster_one_dot_per_spike():
    spikes = torch.zeros(5, 4)
    spikes[0, 1] = spikes[2, 3] = spikes[4, 1] = 1
    ax = plot_raster(spikes.requires_grad_())
    assert isinstance(ax, Axes)
    assert len(ax.collections) == 1
    assert sorted(map(tuple, ax.collections[0].get_offsets().tolist())) == [
        (0, 1), (2, 3), (4, 1)]
    assert ax.get_xlabel() == "time step" and ax.get_ylabel() == "neuron index"
    with pytest.raises(ValueError, match=r"\[T, N\]"):
        plot_raster(torch.zeros(5, 2, 3))


def _monitored():
    torch.manual_seed(0)
    model = nn.Sequential(TimeDistributed(nn.Linear(4, 6)), LIF(threshold=0.2),
                          TimeDistributed(nn.Linear(6, 3)), LIF(threshold=0.1))
    with SpikeMonitor(model) as mon:
        model(torch.rand(4, 2, 4) * 2)
    return mon


def test_plot_spike_counts_from_summary_table_and_groups():
    mon = _monitored()
    s = mon.summary()
    ax = plot_spike_counts(s)
    assert isinstance(ax, Axes)
    assert len(ax.patches) == 2
    heights = [p.get_height() for p in ax.patches]
    torch.testing.assert_close(heights, [r["spikes_per_image"] for r in s.layers])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3"]
    assert ax.get_ylabel() == "spikes per image"
    assert len(plot_spike_counts(mon.table()).patches) == 2            # synapse rows skipped
    assert len(plot_spike_counts(mon.group_by(lambda n: "all")).patches) == 1
    with pytest.raises(ValueError, match="no spike counts"):
        plot_spike_counts([])


def test_plot_surrogates_objects_and_names():
    ax = plot_surrogates([ATan(), Sigmoid(slope=4.0), Dspike(b=3.0)])
    assert isinstance(ax, Axes)
    assert len(ax.lines) == 3 + 1                   # + the dotted x = 0 line
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["ATan(alpha=2.0)", "Sigmoid(slope=4.0)", "Dspike(b=3.0)"]
    assert "dS/dx" in ax.get_ylabel() and "threshold" in ax.get_xlabel()
    # ATan's peak alpha/2 = 1 at x = 0
    x = torch.linspace(-1, 1, 5)
    ax = plot_surrogates("atan", x=x)
    torch.testing.assert_close(torch.as_tensor(ax.lines[0].get_ydata())[2].item(), 1.0)
    with pytest.raises(TypeError, match="derivative"):
        plot_surrogates([object()])


def test_plot_history_lines_and_gaps():
    history = [{"epoch": 1, "train_loss": 2.0, "val_acc": 0.3},
               {"epoch": 2, "train_loss": 1.2},
               {"epoch": 3, "train_loss": torch.tensor(0.8), "val_acc": 0.7}]
    ax = plot_history(history)
    assert isinstance(ax, Axes)
    assert len(ax.lines) == 2
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    assert ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train_loss", "val_acc"]
    ax = plot_history([{"loss": 1.0}, {"loss": 0.5}], keys="loss")
    assert list(ax.lines[0].get_xdata()) == [1, 2]
    with pytest.raises(ValueError, match="available"):
        plot_history(history, keys=("val_loss",))


def test_book_style_sets_legible_fonts_for_the_column():
    import matplotlib
    from snnlab.viz import BOOK_COLUMN_INCHES, BOOK_STYLE, use_book_style

    with matplotlib.rc_context():
        use_book_style()                     # outside IPython: no retina, no error
        assert matplotlib.rcParams["font.size"] == BOOK_STYLE["font.size"]
        assert matplotlib.rcParams["legend.fontsize"] == 10.0
    # 10-point text in an 11-inch figure, shrunk into the column, is >= 9 px
    assert 10 * 100 / 72 * BOOK_COLUMN_INCHES / 11 >= 9
