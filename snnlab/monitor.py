"""Count spikes, synaptic operations and energy with forward hooks.

``SpikeMonitor`` watches a model while it runs and reports, per image:

* **NoS** (number of spikes): every spike emitted by every ``snnlab.neurons.LIF``
  module, summed over all time steps and all neurons, divided by the number of
  images (the AutoSNN convention that MA-DARTS reports per cell).
* **SOPs** (synaptic operations): each spike that enters a synaptic layer
  (``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``) costs one accumulate for every
  output it is connected to. We count these pairs exactly, from the input the
  layer really received (see :func:`count_sops`).
* **MACs** (multiply-accumulates): a synaptic layer fed with real values (the
  first layer reading pixels, or average-pooled spikes) does dense arithmetic;
  we count every multiply-accumulate of the dense layer (see :func:`count_macs`).
* **Energy**: ``E = SOPs * E_AC + MACs * E_MAC`` with the 45 nm figures
  ``E_AC = 0.9 pJ`` and ``E_MAC = 4.6 pJ`` (32-bit float add and multiply-add;
  Horowitz, "Computing's energy problem", ISSCC 2014).

**Which layers pay MACs: the** ``mac_policy``. Two conventions are offered;
the monitor counts both on every call, so one run can report either
(``SpikeMonitor(model, mac_policy=...)`` sets the default,
``summary(mac_policy=...)`` overrides it):

* ``"nonbinary"`` (the default, what snnlab reported before the option existed):
  every synaptic layer whose input is not binary (some value other than 0 or 1)
  counts the dense MACs of :func:`count_macs`; binary inputs count SOPs. The test
  is made on every call, on the input as it arrives. A classifier reading
  average-pooled spikes therefore pays MACs at every step it runs.
* ``"first_layer"`` (the usual convention of SNN energy estimates, e.g.
  ``E = E_MAC * FLOPs_1 + E_AC * sum_l r_l * T * FLOPs_l``): only the **first**
  synaptic layer of each forward call of the monitored model (the analog
  encoding layer) pays MACs, if its input is not binary. Every later layer pays
  ACs: for binary input the SOPs above; for a real-valued input (pooled spikes,
  real stem currents read by a later conv) the same count applied to its
  nonzero inputs, i.e. nonzero inputs x fan-out (:func:`count_sops`), which is
  the "input rate x FLOPs" term of the formula. Nothing is ignored; a later
  real-valued layer is charged as if it were event-driven. "First" is the
  order of execution within the call (a layer called outside any forward call
  of the monitored model counts as first only if it is the first synaptic
  layer in ``model.named_modules()`` order).

Each synaptic row of :meth:`SpikeMonitor.summary` carries its ``energy_share``
(its fraction of the total energy under the policy used), so a chapter can
print the share of the stem or the classifier head.

This is the rough model of the energy-reporting literature on SNNs (the
45 nm constants and the SOP/MAC split; e.g. the DIET-SNN/Spikformer-style
estimates). The SNN NAS papers taught here publish no counting code: SNASNet
reports spike counts only, and no SpikeDHS repository contains energy code,
so its energy model is not confirmed. **Not counted**, under either policy: memory
traffic, neuron (membrane) updates, bias additions, pooling (an
``avg_pool_3x3`` edge on a 256x32x32 node is about 2.4 M adds per step), the
sums of edge currents at a node and skip-path additions, BN on real-valued
nodes (BN after a conv is assumed folded into it), and the elementwise
products of attention gates. So compare architectures with it, not chips.

Counts are of the operations the code executes: a first layer fed the same
image at every step (direct encoding) counts its MACs T times, whereas
SNASNet's stem runs once per image; this is an implementation choice, not an
architectural one.

Example::

    with SpikeMonitor(model) as mon:
        for x, y in loader:
            model(x)
    s = mon.summary()
    s.nos_per_image, s.energy_per_image_uJ

Reference: AutoSNN (Na et al., ICML 2022) for NoS per image; Horowitz (ISSCC
2014) for the energy constants; the SOP definition (spikes x fan-out) and the
first-layer-MAC convention follow the SNN energy-reporting literature
generally, written out exactly here because none of the papers taught in the
book publishes its counting code.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from snnlab.neurons import LIF

__all__ = [
    "ENERGY_AC_PJ", "ENERGY_MAC_PJ", "SYNAPTIC_LAYERS", "MAC_POLICIES",
    "count_sops", "count_macs", "estimate_energy_uj",
    "SpikeSummary", "SpikeMonitor",
]

ENERGY_AC_PJ = 0.9   # pJ per accumulate (32-bit float add, 45 nm; Horowitz, ISSCC 2014)
ENERGY_MAC_PJ = 4.6  # pJ per multiply-accumulate (32-bit float mult 3.7 + add 0.9; same source)

SYNAPTIC_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
MAC_POLICIES = ("nonbinary", "first_layer")   # which layers pay MACs; see the module doc
_CONV_FN = {1: F.conv1d, 2: F.conv2d}


def _acc_dtype(device: torch.device) -> torch.dtype:
    """float64 for exact counting (integers up to 2**53); float32 on MPS, which lacks float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check_policy(mac_policy: str) -> str:
    if mac_policy not in MAC_POLICIES:
        raise ValueError(f"mac_policy must be one of {MAC_POLICIES}; got {mac_policy!r}. "
                         "'nonbinary': every layer with non-binary input pays dense MACs; "
                         "'first_layer': only the first (encoding) layer does.")
    return mac_policy


def _check_layer(module: nn.Module) -> None:
    if not isinstance(module, SYNAPTIC_LAYERS):
        names = ", ".join(t.__name__ for t in SYNAPTIC_LAYERS)
        raise TypeError(f"module must be one of {names}; got {type(module).__name__}. "
                        "Pass the inner layer of a TimeDistributed wrapper (wrapper.module).")


def count_sops(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Synaptic operations: the number of (nonzero input, connected output) pairs.

    Each nonzero input value (a spike) is added once into every output it is
    wired to, so a spike costs one accumulate per connection. For binary input
    this is the exact number of additions an event-driven chip would do.

    * ``nn.Linear``: every input feeds every output, so
      ``SOPs = nnz(x) * out_features``.
    * ``nn.Conv1d`` / ``nn.Conv2d`` with ``G`` groups: output channel ``o`` of
      group ``g`` at position ``p`` reads the ``C_in / G`` input channels of
      group ``g`` at the kernel positions ``p*stride - padding + k*dilation``.
      How many of those inputs are nonzero does not depend on which of the
      ``C_out / G`` channels of the group ``o`` is, and summing over the groups
      sums over all input channels. So, with ``n[b, q]`` the number of nonzero
      channels at input position ``q``,
      ``SOPs = (C_out / G) * sum(conv(n, ones(kernel_size)))``, where ``conv``
      uses the layer's stride, padding (and padding mode) and dilation.

    Args:
        module: an ``nn.Linear``, ``nn.Conv1d`` or ``nn.Conv2d``.
        x: the layer's input, ``[N, ...]`` as the layer receives it (for
            ``TimeDistributed`` layers ``N = T * B``).
    Returns:
        0-dim float64 tensor on ``x.device`` (float32 on MPS), an exact integer.
    """
    _check_layer(module)
    x = x.detach()
    acc = _acc_dtype(x.device)
    if isinstance(module, nn.Linear):
        return torch.count_nonzero(x).to(acc) * module.out_features
    dims = len(module.kernel_size)
    if x.dim() == dims + 1:                          # unbatched conv input [C, ...]
        x = x.unsqueeze(0)
    n = (x != 0).to(torch.float32).sum(1, keepdim=True)   # [N, 1, *spatial] active channels
    padding = module.padding
    if module.padding_mode != "zeros":
        # reflect/replicate/circular padding copies input values, so it copies
        # the active-channel count too; pad first, then convolve without padding
        n = F.pad(n, module._reversed_padding_repeated_twice, mode=module.padding_mode)
        padding = 0
    ones = torch.ones((1, 1, *module.kernel_size), device=n.device, dtype=n.dtype)
    fan_in_active = _CONV_FN[dims](n, ones, stride=module.stride, padding=padding,
                                   dilation=module.dilation)   # [N, 1, *out_spatial]
    return fan_in_active.sum(dtype=acc) * (module.out_channels // module.groups)


def count_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the dense layer on input ``x`` (bias not counted).

    * ``nn.Linear``: ``rows * in_features * out_features`` where ``rows`` is the
      number of input vectors (``x.numel() / in_features``).
    * Convolutions: ``numel(output) * (C_in / G) * prod(kernel_size)``; every
      output reads its full fan-in, padded zeros included (the convention of
      the usual FLOP counters).

    Args:
        module: an ``nn.Linear``, ``nn.Conv1d`` or ``nn.Conv2d``.
        x: the layer's input, ``[N, ...]``.
    Returns:
        Python int.
    """
    _check_layer(module)
    if isinstance(module, nn.Linear):
        return x.numel() * module.out_features
    dims = len(module.kernel_size)
    if x.dim() == dims + 1:
        x = x.unsqueeze(0)
    out_spatial = []
    for k, size in enumerate(x.shape[2:]):
        if module.padding == "same":
            out_spatial.append(size)
            continue
        pad = 0 if module.padding == "valid" else module.padding[k]
        reach = module.dilation[k] * (module.kernel_size[k] - 1) + 1
        out_spatial.append((size + 2 * pad - reach) // module.stride[k] + 1)
    fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
    return x.shape[0] * module.out_channels * math.prod(out_spatial) * fan_in


def estimate_energy_uj(sops: float, macs: float, e_ac_pj: float = ENERGY_AC_PJ,
                       e_mac_pj: float = ENERGY_MAC_PJ) -> float:
    """Energy in microjoules: ``E = SOPs * e_ac_pj + MACs * e_mac_pj`` (pJ), times 1e-6.

    >>> round(estimate_energy_uj(1e6, 0), 3)   # a million spikes-in-synapses
    0.9
    """
    return (float(sops) * e_ac_pj + float(macs) * e_mac_pj) * 1e-6


@dataclass(frozen=True)
class SpikeSummary:
    """What a :class:`SpikeMonitor` saw, normalised per image.

    Attributes:
        images: number of images the totals are divided by.
        nos_per_image: spikes per image, summed over all LIF modules and time steps.
        sops_per_image, macs_per_image: synaptic operations and dense
            multiply-accumulates per image, summed over all synaptic layers.
        energy_per_image_uJ: ``(SOPs * 0.9 pJ + MACs * 4.6 pJ)`` per image, in uJ.
        layers: one dict per LIF module that ran, in model order: ``name``,
            ``neurons`` (per sample and step), ``time_steps`` (steps run per
            forward call of the model, averaged over the calls in which the
            module ran; a LIF stepped one step at a time inside a feedback cell
            still reports T), ``spikes`` (total), ``spikes_per_image``,
            ``firing_rate`` (spikes per neuron per step).
        synapses: one dict per synaptic layer that ran: ``name``, ``kind``
            (class name), ``sops_per_image``, ``macs_per_image``,
            ``energy_per_image_uJ``, ``energy_share`` (its fraction of
            ``energy_per_image_uJ``; 0.0 when the total is 0).
        mac_policy: which layers paid MACs, one of ``MAC_POLICIES`` (module doc).
    """

    images: int
    nos_per_image: float
    sops_per_image: float
    macs_per_image: float
    energy_per_image_uJ: float
    layers: List[dict] = field(default_factory=list)
    synapses: List[dict] = field(default_factory=list)
    mac_policy: str = "nonbinary"

    def to_dict(self) -> dict:
        """Plain dict (lists of dicts inside), ready for JSON or a results file."""
        return asdict(self)


class SpikeMonitor:
    """Context manager that counts spikes, SOPs and MACs of ``model`` while it runs.

    On creation it registers forward hooks on every ``snnlab.neurons.LIF``
    submodule and every ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` (also the
    ones inside ``TimeDistributed``), named by their path in
    ``model.named_modules()``. Counts accumulate over any number of forward
    calls (a whole evaluation epoch) until :meth:`reset`; hooks are removed by
    :meth:`close` or on leaving the ``with`` block. Counting happens on the
    model's device without synchronising; numbers are read in :meth:`summary`.

    Definitions (per LIF module; its output ``spikes`` is ``[T, B, ...]``):

    * ``neurons = prod(spikes.shape[2:])`` (neurons per sample and step),
    * ``spikes`` = sum of the output over all calls,
    * ``spikes_per_image = spikes / images``; NoS is its sum over modules,
    * ``firing_rate = spikes / (neurons * T * samples)``, the mean output,
      ``samples`` being ``B`` summed over the module's own calls.

    Per synaptic layer, on every call: :func:`count_sops` if the input is
    binary, else :func:`count_macs` (``mac_policy="nonbinary"``) or, unless
    the layer is the first of the call, :func:`count_sops` of its nonzero
    inputs (``mac_policy="first_layer"``); summed over calls, divided by
    ``images``. Both policies are counted; ``mac_policy`` picks the one
    :meth:`summary` reports by default.

    Args:
        model: the module to watch.
        mac_policy: ``"nonbinary"`` (default) or ``"first_layer"``; see the
            module docstring.

    **Images.** Synaptic layers see ``[T * B, ...]`` (time merged into batch),
    so they cannot tell images from time steps. The monitor therefore counts
    images once per forward call of ``model``: ``B`` of the first LIF output of
    the call (``[T, B, ...]``), or, if the call ran no LIF (a plain ANN, or a
    single layer called with ``[B, ...]``), the first dimension of the model's
    first input. Pass ``images=`` to :meth:`summary` to override it, e.g. when you
    call submodules directly.

    Not seen: neurons stepped with ``LIF.step`` (hooks fire on ``forward`` only)
    and functional ops (``F.linear``) that are not modules.

    Example::

        with SpikeMonitor(model) as mon:
            model(x_seq)
        mon.summary().nos_per_image
    """

    def __init__(self, model: nn.Module, mac_policy: str = "nonbinary"):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        self.mac_policy = _check_policy(mac_policy)
        self._kinds: Dict[str, str] = {}      # module name -> "LIF" or layer class, model order
        self._handles = []
        for name, module in model.named_modules():
            if isinstance(module, LIF):
                self._kinds[name] = "LIF"
                self._handles.append(module.register_forward_hook(self._lif_hook(name)))
            elif isinstance(module, SYNAPTIC_LAYERS):
                self._kinds[name] = type(module).__name__
                self._handles.append(module.register_forward_hook(self._syn_hook(name)))
        # out of any forward call of model, "first layer" falls back to model order
        self._first_in_order = next((n for n, k in self._kinds.items() if k != "LIF"), None)
        if not self._handles:
            raise ValueError(f"model ({type(model).__name__}) has no snnlab.neurons.LIF and no "
                             "nn.Linear/Conv1d/Conv2d submodule, so there is nothing to monitor.")
        # registered last, so it runs after the hooks of model itself (if model is a LIF)
        self._handles.append(model.register_forward_pre_hook(self._call_start))
        self._handles.append(model.register_forward_hook(self._call_end))
        self._closed = False
        self.reset()

    # ---- hooks: they only add on-device tensors and Python ints -------------
    def _call_start(self, module, args) -> None:
        self._call_batch = None
        self._in_call = True
        self._call_id += 1
        self._syn_ran_in_call = False
        first = args[0] if args else None
        self._call_input_batch = (first.shape[0] if torch.is_tensor(first) and first.dim() > 0
                                  else None)

    def _call_end(self, module, args, output) -> None:
        batch = self._call_batch if self._call_batch is not None else self._call_input_batch
        if batch is not None:
            self._images += batch
        self._in_call = False

    @staticmethod
    def _add(store: dict, name: str, value: torch.Tensor) -> None:
        store[name] = store[name] + value if name in store else value

    def _lif_hook(self, name: str):
        def hook(module, args, output):
            spikes = output[0] if isinstance(output, tuple) else output   # record=True
            spikes = spikes.detach()                                      # [T, B, ...]
            self._add(self._spikes, name, spikes.sum(dtype=_acc_dtype(spikes.device)))
            self._neurons[name] = math.prod(spikes.shape[2:])
            self._steps[name] = self._steps.get(name, 0) + spikes.shape[0]
            # forward calls of the model in which this LIF ran (a direct call of
            # the LIF outside any model call counts as its own call)
            if not self._in_call or self._lif_last_call.get(name) != self._call_id:
                self._lif_calls[name] = self._lif_calls.get(name, 0) + 1
                self._lif_last_call[name] = self._call_id
            self._elements[name] = self._elements.get(name, 0) + spikes.numel()
            if self._call_batch is None:
                self._call_batch = spikes.shape[1]
        return hook

    def _syn_hook(self, name: str):
        def hook(module, args, output):
            x = args[0].detach()                                          # [T*B, ...] or [B, ...]
            if self._in_call:
                first = not self._syn_ran_in_call
                self._syn_ran_in_call = True
            else:
                first = name == self._first_in_order
            with torch.no_grad():
                # split the counts on the device, without a host sync: SOPs of
                # binary input; dense MACs and nonzero-input SOPs of real input
                binary = ((x == 0) | (x == 1)).all()
                sops = count_sops(module, x)
                real = (~binary).to(sops.dtype)
                macs = real * count_macs(module, x)
                self._add(self._sops, name, sops * binary)
                if first:
                    self._add(self._macs_first, name, macs)
                    self._add(self._sops_real_later, name, torch.zeros_like(sops))
                else:
                    self._add(self._macs_first, name, torch.zeros_like(sops))
                    self._add(self._sops_real_later, name, real * sops)
                self._add(self._macs, name, macs)
        return hook

    # ---- public API --------------------------------------------------------
    def reset(self) -> None:
        """Forget all counts (hooks stay in place)."""
        self._spikes: Dict[str, torch.Tensor] = {}
        self._neurons: Dict[str, int] = {}
        self._steps: Dict[str, int] = {}           # time steps summed over calls
        self._lif_calls: Dict[str, int] = {}       # model forward calls the LIF ran in
        self._lif_last_call: Dict[str, int] = {}
        self._elements: Dict[str, int] = {}
        self._sops: Dict[str, torch.Tensor] = {}             # SOPs of binary inputs
        self._macs: Dict[str, torch.Tensor] = {}             # dense MACs of real inputs
        self._macs_first: Dict[str, torch.Tensor] = {}       # ... when first layer of a call
        self._sops_real_later: Dict[str, torch.Tensor] = {}  # nonzero-input SOPs of real
        self._images = 0                                     # inputs, not first layer
        self._call_id = 0
        self._in_call = False
        self._syn_ran_in_call = False
        self._call_batch: Optional[int] = None
        self._call_input_batch: Optional[int] = None

    def close(self) -> None:
        """Remove all hooks; counts stay readable. Safe to call twice."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._closed = True

    def __enter__(self) -> "SpikeMonitor":
        if self._closed:
            raise RuntimeError("this SpikeMonitor is closed (its hooks were removed); "
                               "create a new SpikeMonitor(model).")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def images(self) -> int:
        """Images counted so far (see the class docstring for how)."""
        return self._images

    def _resolve_images(self, images: Optional[int]) -> int:
        if images is None:
            if self._images <= 0:
                raise ValueError("the monitor has seen no images (no forward call of the "
                                 "monitored model since creation or reset()); run the model "
                                 "inside the `with` block, or pass images=<number of images>.")
            return self._images
        if isinstance(images, bool) or not isinstance(images, int) or images <= 0:
            raise ValueError(f"images must be a positive int; got {images!r}.")
        return images

    def summary(self, images: Optional[int] = None,
                mac_policy: Optional[str] = None) -> SpikeSummary:
        """Per-image totals and per-layer rows.

        Args:
            images: overrides the counted images.
            mac_policy: overrides the monitor's ``mac_policy`` for this summary
                (both are counted, so no re-run is needed).

        Reads the on-device counters (one host sync per counter).

        >>> from snnlab.layers import TimeDistributed
        >>> net = nn.Sequential(TimeDistributed(nn.Linear(3, 4)), LIF(),
        ...                     TimeDistributed(nn.Linear(4, 2)))
        >>> with SpikeMonitor(net, mac_policy="first_layer") as mon:
        ...     _ = net(torch.rand(2, 1, 3))
        >>> [row["macs_per_image"] > 0 for row in mon.summary().synapses]
        [True, False]
        """
        images = self._resolve_images(images)
        policy = self.mac_policy if mac_policy is None else _check_policy(mac_policy)
        layers, synapses = [], []
        for name, kind in self._kinds.items():
            if name in self._spikes:
                spikes = self._spikes[name].item()
                steps = self._steps[name] / self._lif_calls[name]
                layers.append(dict(
                    name=name, neurons=self._neurons[name],
                    time_steps=int(steps) if steps.is_integer() else steps,
                    spikes=spikes, spikes_per_image=spikes / images,
                    firing_rate=spikes / max(self._elements[name], 1)))
            elif name in self._sops:
                sops = self._sops[name].item() / images
                if policy == "nonbinary":
                    macs = self._macs[name].item() / images
                else:
                    macs = self._macs_first[name].item() / images
                    sops += self._sops_real_later[name].item() / images
                synapses.append(dict(
                    name=name, kind=kind, sops_per_image=sops, macs_per_image=macs,
                    energy_per_image_uJ=estimate_energy_uj(sops, macs)))
        sops = sum(row["sops_per_image"] for row in synapses)
        macs = sum(row["macs_per_image"] for row in synapses)
        energy = estimate_energy_uj(sops, macs)
        for row in synapses:
            row["energy_share"] = row["energy_per_image_uJ"] / energy if energy > 0 else 0.0
        return SpikeSummary(
            images=images, nos_per_image=sum(row["spikes_per_image"] for row in layers),
            sops_per_image=sops, macs_per_image=macs, energy_per_image_uJ=energy,
            layers=layers, synapses=synapses, mac_policy=policy)

    def table(self, images: Optional[int] = None,
              mac_policy: Optional[str] = None) -> List[dict]:
        """One row per monitored module that ran, in model order, for printing.

        Every row has the same keys: ``name, kind, neurons, firing_rate,
        spikes_per_image, sops_per_image, macs_per_image, energy_per_image_uJ,
        energy_share``; a value that does not apply to the module's kind is
        ``None``. ``images`` and ``mac_policy`` as in :meth:`summary`.
        Try ``pandas.DataFrame(mon.table())``.
        """
        s = self.summary(images, mac_policy)
        keys = ("name", "kind", "neurons", "firing_rate", "spikes_per_image",
                "sops_per_image", "macs_per_image", "energy_per_image_uJ", "energy_share")
        by_name = {r["name"]: dict(r, kind=self._kinds[r["name"]]) for r in s.layers + s.synapses}
        return [{k: by_name[name].get(k) for k in keys} for name in self._kinds if name in by_name]

    def group_by(self, key: Callable[[str], Optional[str]],
                 images: Optional[int] = None) -> Dict[str, float]:
        """NoS per image summed over groups of LIF modules: ``{group: spikes_per_image}``.

        ``key(name)`` maps a LIF module's name to its group, or to ``None`` to
        leave it out; groups appear in model order. NoS per cell, for neurons
        named like ``cells.0.nodes.1.lif``::

            mon.group_by(lambda n: ".".join(n.split(".")[:2]) if n.startswith("cells.")
                         else "other")

        With a ``key`` that never returns ``None`` the values sum to ``nos_per_image``.
        """
        if not callable(key):
            raise TypeError(f"key must be a function name -> group (or None); got {key!r}. "
                            "For prefixes use e.g. key=lambda n: n.split('.')[0].")
        groups: Dict[str, float] = {}
        for row in self.summary(images).layers:
            group = key(row["name"])
            if group is not None:
                groups[group] = groups.get(group, 0.0) + row["spikes_per_image"]
        return groups
