"""The architect's pieces exposed for study: the perturbed weights of the finite
difference and the look-ahead gradients of the second order."""
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from snnlab.architect import Architect, finite_difference_hvp, perturbed_weights


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(12, 5, generator=g, dtype=torch.float64), torch.randint(0, 4, (12,), generator=g)


def test_perturbed_weights_are_w_plus_minus_eps_v(smooth_supernet):
    torch.manual_seed(0)
    model = smooth_supernet()
    v = [torch.randn_like(p) for p in model.weight_parameters()]
    eps, (plus, minus) = perturbed_weights(model, v, eps_scale=0.1)
    norm = torch.sqrt(sum((t ** 2).sum() for t in v)).item()
    assert eps == pytest.approx(0.1 / norm)
    names = [n for n, p in model.named_parameters() if n != "alphas"]
    assert list(plus) == names and list(minus) == names
    for (n, p), t in zip([(n, p) for n, p in model.named_parameters() if n != "alphas"], v):
        torch.testing.assert_close(plus[n], p.detach() + eps * t)
        torch.testing.assert_close(minus[n], p.detach() - eps * t)
        assert not plus[n].requires_grad
    # the central difference built from them is finite_difference_hvp
    x, y = batch()
    grads = [torch.autograd.grad(F.cross_entropy(functional_call(model, w, (x,)), y),
                                 model.alphas)[0] for w in (plus, minus)]
    torch.testing.assert_close((grads[0] - grads[1]) / (2 * eps),
                               finite_difference_hvp(model, F.cross_entropy, (x, y), v, 0.1)[0])
    zero_eps, (same, _) = perturbed_weights(model, [torch.zeros_like(t) for t in v])
    assert zero_eps == 0.0 and torch.equal(same["head.weight"], model.head.weight.detach())
    with pytest.raises(ValueError, match="one tensor per weight"):
        perturbed_weights(model, v[:-1])
    with pytest.raises(ValueError, match="eps_scale"):
        perturbed_weights(model, v, eps_scale=0.0)


def test_lookahead_gradients_make_the_second_order_gradient(smooth_supernet):
    torch.manual_seed(1)
    model = smooth_supernet()
    train, val = batch(1), batch(2)
    opt = torch.optim.SGD(model.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    F.cross_entropy(model(train[0]), train[1]).backward(inputs=model.weight_parameters())
    opt.step()
    opt.zero_grad()
    architect = Architect(model, order=2, eps_scale=0.01)
    d_alpha, v, loss = architect.lookahead_gradients(train, val, opt, xi=0.1)
    assert len(d_alpha) == 1 and len(v) == len(list(model.weight_parameters()))
    assert all(not t.requires_grad for t in v)
    # v is the val gradient at the look-ahead weights w'
    unrolled = architect.virtual_step(train, opt, xi=0.1)
    params = {n: w.clone().requires_grad_() for n, w in unrolled.items()}
    ref_loss = F.cross_entropy(functional_call(model, params, (val[0],)), val[1])
    ref_v = torch.autograd.grad(ref_loss, list(params.values()))
    for a, b in zip(v, ref_v):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(loss, ref_loss.detach())
    second, loss2 = architect.arch_grads(train, val, opt)
    hvp = finite_difference_hvp(model, F.cross_entropy, train, v, 0.01)
    torch.testing.assert_close(second[0], d_alpha[0] - 0.1 * hvp[0])
    torch.testing.assert_close(loss2, loss)
