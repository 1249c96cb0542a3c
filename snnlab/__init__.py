"""snnlab: the library of the book *Neural Architecture Search for Spiking Neural Networks*.

Spiking tensors are time first, ``[T, B, ...]``; neurons keep no state between
calls. The submodules are small and each holds one idea:

    surrogates  the surrogate-gradient family (atan, sigmoid, triangle, fast_sigmoid, dspike)
    neurons     LIF over [T, B, ...] (fused) and one step at a time
    encoding    direct, rate and latency encoders
    layers      TimeDistributed wrappers and spiking conv blocks
    models      the hand-designed baseline SpikingCNN
    monitor     spike counts (NoS), SOPs and energy
    data        digits (embedded default), CIFAR-10/100
    train       fit / evaluate with checkpoints and resume
    profiles    tiny / colab / paper settings, seed_everything
    search      every search method: registry, SearchResult, run loop, Pareto front
    viz         plots for the book

Example:
    >>> import torch, snnlab as sl
    >>> sl.LIF(tau=2.0)(torch.ones(3, 1, 2)).shape
    torch.Size([3, 1, 2])
"""
from . import data, encoding, layers, models, monitor, neurons, profiles, surrogates, train, viz
from . import search
from .data import DataBundle, load_cifar, load_dataset, load_digits, make_loaders
from .encoding import direct, latency, rate
from .layers import SpikingConvBlock, TimeDistributed
from .models import SpikingCNN
from .monitor import SpikeMonitor, estimate_energy_uj
from .neurons import LIF, LIFTrace, lif_step
from .profiles import PROFILES, Profile, get_profile, seed_everything
from .surrogates import ATan, Dspike, FastSigmoid, Sigmoid, Triangle, get_surrogate, spike
from .train import TrainConfig, default_device, evaluate, fit, load_checkpoint, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "data", "encoding", "layers", "models", "monitor", "neurons", "profiles", "search",
    "surrogates", "train", "viz",
    "DataBundle", "load_cifar", "load_dataset", "load_digits", "make_loaders",
    "direct", "latency", "rate",
    "SpikingConvBlock", "TimeDistributed", "SpikingCNN",
    "SpikeMonitor", "estimate_energy_uj",
    "LIF", "LIFTrace", "lif_step",
    "PROFILES", "Profile", "get_profile", "seed_everything",
    "ATan", "Dspike", "FastSigmoid", "Sigmoid", "Triangle", "get_surrogate", "spike",
    "TrainConfig", "default_device", "evaluate", "fit", "load_checkpoint", "save_checkpoint",
    "__version__",
]
