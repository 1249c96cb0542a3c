"""The DARTS architect: gradient steps on the architecture weights ``alpha``.

DARTS (Liu, Simonyan & Yang, ICLR 2019, §2.3) solves the bilevel problem

    min_alpha L_val(w*(alpha), alpha)   s.t.   w*(alpha) = argmin_w L_train(w, alpha)      (eq. 3-4)

by alternating one ``alpha`` step on a validation batch with one ``w`` step on a
training batch. The architect computes the ``alpha`` gradient in one of two ways:

* **first order** (``order=1``, xi = 0): ``grad_alpha L_val(w, alpha)`` at the
  current weights;
* **second order** (``order=2``, eq. 7): look one weight step ahead,
  ``w' = w - xi * (momentum * m + grad_w L_train(w, alpha) + weight_decay * w)``
  (exactly the next SGD step, as quark0 ``architect.py`` ``_compute_unrolled_model``),
  then

      grad_alpha L_val(w', alpha) - xi * H v,   v = grad_w' L_val(w', alpha),

  where ``H v = grad^2_{alpha, w} L_train(w, alpha) v`` is approximated by central
  finite differences (eq. 8): with ``eps = 0.01 / ||v||`` and ``w(+-) = w +- eps v``,
  ``H v ~ (grad_alpha L_train(w+) - grad_alpha L_train(w-)) / (2 eps)``.

Where we differ from quark0: the look-ahead and the perturbed weights are
evaluated with ``torch.func.functional_call`` instead of a rebuilt network copy
(``model.new()``) and in-place weight edits, so the model is never modified and
nothing needs restoring; the first-order gradient is ``autograd.grad`` on the
alphas only (quark0's ``loss.backward()`` also fills every weight gradient).

**On a spiking supernet the finite difference is not a Hessian-vector product.**
The forward pass of a LIF is a step function of the membrane (the surrogate only
replaces its derivative in the backward pass), so ``w +- eps v`` moves some
membranes across the threshold and flips spikes, and a flip in an early node
changes the input of every later one. The difference of the two alpha gradients is
then dominated by these flips, not by the curvature: it does not converge as ``eps``
shrinks (it grows roughly like ``1 / eps`` while flips remain, and its direction
changes with ``eps``), unlike on a smooth model, where it converges to the exact
product. Book chapter 4 measures this against ``eps`` (with :func:`perturbed_weights`
and :meth:`Architect.lookahead_gradients`). First order is therefore the default,
for spiking supernets as in SpikeDHS's search.

The model needs ``arch_parameters()``, ``weight_parameters()`` (disjoint) and
``forward(x) -> logits``, like :class:`snnlab.darts.SearchNetwork`.

Under ``torchrun`` each process holds a shard of the batches; the gradients that
decide a step are averaged over the processes (:func:`snnlab.distributed.average_tensors`),
so the step is that of one process on the global batch: the alpha gradient (both
orders), and for the second order also the virtual step's weight gradient and ``v``
(whose norm sets ``eps``). Outside a process group nothing changes.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .distributed import average_tensors

__all__ = ["Architect", "finite_difference_hvp", "perturbed_weights", "exact_hvp", "ORDERS"]

ORDERS = (1, 2)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _named_weights(model: nn.Module) -> List[Tuple[str, torch.Tensor]]:
    """``(name, parameter)`` for ``model.weight_parameters()``, names from ``named_parameters``."""
    names = {id(p): n for n, p in model.named_parameters()}
    weights = list(model.weight_parameters())
    arch = {id(a) for a in model.arch_parameters()}
    overlap = [names.get(id(p), "?") for p in weights if id(p) in arch]
    if overlap:
        raise ValueError(f"weight_parameters() and arch_parameters() share {overlap}; the two "
                         "sets must be disjoint (each optimizer updates only its own).")
    missing = [p for p in weights if id(p) not in names]
    if missing:
        raise ValueError("weight_parameters() returned tensors that are not parameters of the "
                         "model (named_parameters); return the model's own parameters.")
    return [(names[id(p)], p) for p in weights]


def _grads_or_zeros(grads: Sequence[Optional[torch.Tensor]],
                    like: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """``autograd.grad(..., allow_unused=True)`` results with None replaced by zeros."""
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, like)]


def _loss_at(model: nn.Module, params: Dict[str, torch.Tensor], batch, loss_fn: LossFn):
    """The loss of ``model`` on ``batch`` with the weights in ``params`` swapped in."""
    x, y = batch
    return loss_fn(functional_call(model, params, (x,)), y)


def finite_difference_hvp(model: nn.Module, loss_fn: LossFn, batch,
                          vector: Sequence[torch.Tensor], eps_scale: float = 0.01
                          ) -> List[torch.Tensor]:
    """``grad^2_{alpha, w} L(w, alpha) @ v`` by central differences (DARTS eq. 8).

    Args:
        model: has ``arch_parameters()``, ``weight_parameters()``.
        loss_fn: ``(logits, targets) -> scalar`` (DARTS: cross-entropy).
        batch: ``(x, y)`` where ``L`` is evaluated (DARTS: the training batch).
        vector: ``v``, one tensor per weight parameter (same shapes).
        eps_scale: ``eps = eps_scale / ||v||`` (DARTS footnote 2: 0.01).
    Returns:
        One tensor per arch parameter: ``(grad_alpha L(w + eps v) - grad_alpha
        L(w - eps v)) / (2 eps)``; zeros when ``v = 0``. The model is not modified.

    The denominator is ``2 * eps`` (quark0 ``div_(2 * R)``); ``(p - n) / 2.*eps``, as
    some ports wrote it, parses as ``((p - n) / 2) * eps`` (microsoft/nni#3044).

    This approximates the Hessian-vector product only for a model smooth in ``w``.
    On a spiking supernet it is dominated by the spikes that ``w +- eps v`` flips
    (threshold crossings), not by curvature (module docstring), which is why
    ``order=1`` is the SNN default.
    """
    alphas = list(model.arch_parameters())
    eps, perturbed = perturbed_weights(model, vector, eps_scale)
    if eps == 0:
        return [torch.zeros_like(a) for a in alphas]
    grads = []
    for params in perturbed:                                             # w + eps v, w - eps v
        loss = _loss_at(model, params, batch, loss_fn)
        grads.append(_grads_or_zeros(torch.autograd.grad(loss, alphas, allow_unused=True),
                                     alphas))
    return [(gp - gm) / (2 * eps) for gp, gm in zip(*grads)]


def perturbed_weights(model: nn.Module, vector: Sequence[torch.Tensor], eps_scale: float = 0.01
                      ) -> Tuple[float, List[Dict[str, torch.Tensor]]]:
    """The two weight sets of the central difference in :func:`finite_difference_hvp`.

    Args:
        model: has ``arch_parameters()``, ``weight_parameters()``.
        vector: ``v``, one tensor per weight parameter (same shapes).
        eps_scale: ``eps = eps_scale / ||v||`` (DARTS: 0.01).
    Returns:
        ``(eps, [w + eps v, w - eps v])``, each weight set a ``{parameter name: tensor}``
        dict (detached) for ``torch.func.functional_call(model, params, (x,))``;
        ``(0.0, [w, w])`` when ``v = 0``. The model is not modified.

    Use it to look at what the finite difference compares, e.g. which spikes of a
    spiking supernet differ between the two weight sets.
    """
    named = _named_weights(model)
    vector = list(vector)
    if len(vector) != len(named):
        raise ValueError(f"vector must have one tensor per weight parameter ({len(named)}); "
                         f"got {len(vector)}.")
    if not eps_scale > 0:
        raise ValueError(f"eps_scale must be > 0; got {eps_scale!r}.")
    norm = torch.sqrt(sum((v.detach().double() ** 2).sum() for v in vector))
    eps = 0.0 if norm == 0 else eps_scale / norm.item()
    with torch.no_grad():
        return eps, [{n: p.detach() + sign * eps * v.detach() for (n, p), v in zip(named, vector)}
                     for sign in (1.0, -1.0)]


def exact_hvp(model: nn.Module, loss_fn: LossFn, batch,
              vector: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """``grad_alpha (grad_w L(w, alpha) . v)`` by double backward: the exact product.

    For testing :func:`finite_difference_hvp` on a twice-differentiable model. A
    network of snnlab LIF neurons is not one: their fused backward is not itself
    differentiable.
    """
    weights = list(model.weight_parameters())
    alphas = list(model.arch_parameters())
    x, y = batch
    loss = loss_fn(model(x), y)
    g_w = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    dot = sum((g * v.detach()).sum() for g, v in zip(g_w, vector) if g is not None)
    return _grads_or_zeros(torch.autograd.grad(dot, alphas, allow_unused=True), alphas)


class Architect:
    """Updates ``model.arch_parameters()`` with Adam, from first- or second-order gradients.

    Args:
        model: a supernet (``arch_parameters()``, ``weight_parameters()``, ``forward``).
        lr, betas, weight_decay: the alpha optimizer, Adam(3e-4, (0.5, 0.999), 1e-3)
            as DARTS (paper A.1.1).
        order: 1 (first order, xi = 0) or 2 (second order, eq. 7).
        xi: virtual step size for ``order=2``; None uses the weight optimizer's
            current learning rate, as DARTS does.
        eps_scale: finite-difference step ``eps = eps_scale / ||v||`` (0.01).
        loss_fn: ``(logits, targets) -> loss``; cross-entropy by default.

    ``self.optimizer`` only ever holds the alphas; the weight optimizer (SGD,
    passed to :meth:`step`) only ever holds ``weight_parameters()``.

    Example::

        architect = Architect(model, order=2)
        w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9,
                                weight_decay=3e-4)
        architect.step(train_batch, val_batch, w_opt)      # alpha step (on the val batch)
        ...                                               # then the weight step (train batch)
    """

    def __init__(self, model: nn.Module, lr: float = 3e-4, betas: Tuple[float, float] = (0.5, 0.999),
                 weight_decay: float = 1e-3, order: int = 1, xi: Optional[float] = None,
                 eps_scale: float = 0.01, loss_fn: Optional[LossFn] = None):
        for method in ("arch_parameters", "weight_parameters"):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"model ({type(model).__name__}) has no {method}(); the "
                                "architect needs a supernet such as snnlab.darts.SearchNetwork.")
        if order not in ORDERS:
            raise ValueError(f"order must be 1 (first order) or 2 (second order, DARTS eq. 7); "
                             f"got {order!r}.")
        if xi is not None and not xi >= 0:
            raise ValueError(f"xi must be None (the weight learning rate) or >= 0; got {xi!r}.")
        if not eps_scale > 0:
            raise ValueError(f"eps_scale must be > 0; got {eps_scale!r}.")
        self.model, self.order, self.xi, self.eps_scale = model, order, xi, eps_scale
        self.loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
        self.alphas = list(model.arch_parameters())
        _named_weights(model)                                  # checks the two sets are disjoint
        self.optimizer = torch.optim.Adam(self.alphas, lr=lr, betas=tuple(betas),
                                          weight_decay=weight_decay)

    # ---- gradients -------------------------------------------------------------
    def first_order_grads(self, val_batch) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """``grad_alpha L_val(w, alpha)`` and the (detached) validation loss."""
        x, y = val_batch
        loss = self.loss_fn(self.model(x), y)
        grads = torch.autograd.grad(loss, self.alphas, allow_unused=True)
        return _grads_or_zeros(grads, self.alphas), loss.detach()

    def virtual_step(self, train_batch, weight_optimizer: torch.optim.Optimizer,
                     xi: float) -> Dict[str, torch.Tensor]:
        """The look-ahead weights ``w' = w - xi (momentum * m + grad + weight_decay * w)``.

        ``m`` is the SGD momentum buffer of each weight (zero before its first step),
        read from ``weight_optimizer``; the weights themselves are not changed.
        Returns ``{parameter name: w'}`` (detached).
        """
        if not isinstance(weight_optimizer, torch.optim.SGD):
            raise TypeError(f"the second-order step looks one SGD step ahead, so the weight "
                            f"optimizer must be torch.optim.SGD; got "
                            f"{type(weight_optimizer).__name__}. Use order=1 with other optimizers.")
        named = _named_weights(self.model)
        group_of = {id(p): g for g in weight_optimizer.param_groups for p in g["params"]}
        absent = [n for n, p in named if id(p) not in group_of]
        if absent:
            raise ValueError(f"weight parameters {absent[:3]} are not in the weight optimizer; "
                             "build it from model.weight_parameters().")
        x, y = train_batch
        loss = self.loss_fn(self.model(x), y)
        grads = _grads_or_zeros(torch.autograd.grad(loss, [p for _, p in named],
                                                    allow_unused=True), [p for _, p in named])
        average_tensors(grads)              # torchrun: the step of the global batch
        unrolled = {}
        with torch.no_grad():
            for (name, p), g in zip(named, grads):
                group = group_of[id(p)]
                if group.get("nesterov") or group.get("dampening", 0):
                    raise ValueError("the virtual step reproduces plain SGD with momentum "
                                     "(DARTS); nesterov and dampening are not supported.")
                buf = weight_optimizer.state.get(p, {}).get("momentum_buffer")
                moment = group["momentum"] * buf if buf is not None else torch.zeros_like(p)
                unrolled[name] = p - xi * (moment + g + group["weight_decay"] * p)
        return unrolled

    def second_order_grads(self, train_batch, val_batch, weight_optimizer: torch.optim.Optimizer,
                           xi: float) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """DARTS eq. 7: ``grad_alpha L_val(w', alpha) - xi * H v`` and the val loss at ``w'``."""
        d_alpha, v, loss = self.lookahead_gradients(train_batch, val_batch, weight_optimizer, xi)
        hvp = finite_difference_hvp(self.model, self.loss_fn, train_batch, v, self.eps_scale)
        return [g - xi * h for g, h in zip(d_alpha, hvp)], loss

    def lookahead_gradients(self, train_batch, val_batch, weight_optimizer: torch.optim.Optimizer,
                            xi: float) -> Tuple[List[torch.Tensor], List[torch.Tensor], torch.Tensor]:
        """The two gradients at the look-ahead weights ``w'`` (:meth:`virtual_step`).

        Returns ``(grad_alpha L_val(w', alpha), v, loss)``: one tensor per arch
        parameter, ``v = grad_w' L_val(w', alpha)`` (one tensor per weight parameter,
        the direction of the finite difference) and the detached val loss at ``w'``.
        :meth:`second_order_grads` combines them with
        ``finite_difference_hvp(model, loss_fn, train_batch, v, eps_scale)``; call this
        to study that product at other ``eps_scale`` values.
        """
        unrolled = self.virtual_step(train_batch, weight_optimizer, xi)
        params = {n: w.requires_grad_() for n, w in unrolled.items()}
        loss = _loss_at(self.model, params, val_batch, self.loss_fn)
        n_alpha = len(self.alphas)
        weights = list(params.values())
        grads = _grads_or_zeros(torch.autograd.grad(loss, self.alphas + weights, allow_unused=True),
                                self.alphas + weights)
        v = average_tensors([g.detach() for g in grads[n_alpha:]])   # torchrun: global v, eps
        return grads[:n_alpha], v, loss.detach()

    def arch_grads(self, train_batch, val_batch,
                   weight_optimizer: Optional[torch.optim.Optimizer] = None
                   ) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """The alpha gradient of this architect's order, and the validation loss."""
        if self.order == 1:
            return self.first_order_grads(val_batch)
        if weight_optimizer is None:
            raise ValueError("order=2 needs the weight optimizer (its lr, momentum buffers and "
                             "weight decay define the virtual step); pass weight_optimizer=.")
        xi = self.xi if self.xi is not None else weight_optimizer.param_groups[0]["lr"]
        return self.second_order_grads(train_batch, val_batch, weight_optimizer, xi)

    # ---- the update --------------------------------------------------------------
    def step(self, train_batch, val_batch,
             weight_optimizer: Optional[torch.optim.Optimizer] = None) -> torch.Tensor:
        """One Adam step on the alphas; returns the validation loss (detached tensor).

        Args:
            train_batch, val_batch: ``(x, y)`` pairs on the model's device (the train
                batch is used by the second order only).
            weight_optimizer: the SGD optimizer of the weights (second order only).
        """
        grads, loss = self.arch_grads(train_batch, val_batch, weight_optimizer)
        average_tensors(grads)       # torchrun: the mean over processes (linear in the loss)
        self.optimizer.zero_grad(set_to_none=True)
        for alpha, grad in zip(self.alphas, grads):
            alpha.grad = grad.detach()
        self.optimizer.step()
        return loss
