"""Test oracle: snnlab's fused LIF autograd function as it was before the speed work of issue 9.

Kept verbatim (commit b411742 of snnlab/neurons.py, renamed ReferenceLIFSequence) so
that tests/test_lif_kernel.py can demand that the current kernel gives bit-identical
spikes, membranes and gradients (torch.equal) in float32 and float64: the book's stored
outputs depend on every bit. Do not "improve" this file.
"""
import torch


def _sum_to(grad_seq: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reduce a ``[T, B, ...]`` gradient to the shape of a broadcast parameter."""
    return grad_seq.sum(0).sum_to_size(like.shape) if like.dim() else grad_seq.sum()


class ReferenceLIFSequence(torch.autograd.Function):
    """Fused multi-step LIF: forward loop without autograd, hand-written backward.

    Backward recursion (``g[t] = dL/dh[t]``, ``sg[t]`` the surrogate derivative):
        g[t] = dL/dh_out[t] + dL/ds[t] * sg[t] + dv/dh[t] * dL/dv[t],
        dL/dv[t] = lambda * g[t+1]   (or the gradient of the returned final state)
    with ``dv/dh = 1 - s`` (hard, detached) or ``1`` (subtract, detached), minus
    ``h * sg`` or ``theta * sg`` when the reset is not detached. The first two
    terms are computed for all steps at once; the time loop only adds the third.
    On a CPU a fresh large tensor costs more than the arithmetic on it (page
    faults), so both passes write into preallocated tensors (``out=``, in place):
    the forward allocates the two outputs, the backward the returned gradient.
    """

    @staticmethod
    def forward(ctx, x_seq, v0, decay, threshold, surrogate, reset, detach_reset, record):
        ctx.set_materialize_grads(False)             # no zero tensors for unused outputs
        h_seq, spikes = torch.empty_like(x_seq), torch.empty_like(x_seq)
        v = v0.clone()
        reset_by = None if reset == "hard" else threshold
        for t in range(x_seq.shape[0]):
            h = torch.addcmul(x_seq[t], decay, v, out=h_seq[t])      # charge: x + lambda v
            s = torch.gt(h, threshold, out=spikes[t])                 # fire: h > theta
            # reset: v = h - h s (hard) or h - theta s (subtract)
            torch.addcmul(h, h if reset_by is None else reset_by, s, value=-1, out=v)
        ctx.save_for_backward(h_seq, spikes, decay, threshold, v0)
        ctx.surrogate, ctx.reset, ctx.detach_reset = surrogate, reset, detach_reset
        ctx.h_seq_is_private = not record        # nobody else sees h_seq: backward may reuse it
        ctx.backward_done = False
        return spikes, h_seq, v

    @staticmethod
    def backward(ctx, grad_spikes, grad_h, grad_v_final):
        if ctx.backward_done:
            raise RuntimeError("snnlab's fused LIF backward ran twice on one graph (retain_graph=True); "
                               "run the forward again instead, or use lif.step for such experiments.")
        h_seq, spikes, decay, threshold, v0 = ctx.saved_tensors
        hard = ctx.reset == "hard"
        # g becomes sg, then dL/dh (the input's gradient). In the common case (detached
        # reset, fixed tau and threshold, no trace returned) it overwrites h_seq in place,
        # so backward allocates no [T, B, ...] tensor at all.
        reuse = ctx.h_seq_is_private and ctx.detach_reset and not any(ctx.needs_input_grad[2:4])
        g = ctx.surrogate.derivative_(h_seq.sub_(threshold) if reuse else h_seq - threshold)
        ctx.backward_done = reuse
        sg = g.clone() if (ctx.needs_input_grad[3] or not ctx.detach_reset) else None
        g.mul_(grad_spikes) if grad_spikes is not None else g.zero_()
        if grad_h is not None:
            g.add_(grad_h)

        # dv[t]/dh[t]: 1 - s (hard) or 1 (subtract) with a detached reset, plus the
        # surrogate terms otherwise (rare: allocated only then)
        if ctx.detach_reset:
            dv_dh = None
        elif hard:
            dv_dh = torch.rsub(spikes, 1).addcmul_(h_seq, sg, value=-1)
        else:
            dv_dh = 1 - threshold * sg

        def dv_dh_times(t: int, grad_v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
            """``dv[t]/dh[t] * grad_v`` into ``out`` (a one-step buffer)."""
            if dv_dh is not None:
                return torch.mul(dv_dh[t], grad_v, out=out)
            out.copy_(grad_v)
            return out.addcmul_(out, spikes[t], value=-1) if hard else out

        buf = torch.empty_like(g[0])
        if grad_v_final is not None:
            g[-1].add_(dv_dh_times(-1, grad_v_final, buf))
        for t in range(h_seq.shape[0] - 2, -1, -1):                 # + lambda dv/dh g[t+1]
            if dv_dh is None and hard:       # lambda (1 - s[t]) in buf: two ops a step, not three
                g[t].addcmul_(torch.addcmul(decay, spikes[t], decay, value=-1, out=buf), g[t + 1])
            elif dv_dh is None:              # subtract, detached: dv/dh = 1
                g[t].addcmul_(g[t + 1], decay)
            else:
                g[t].addcmul_(dv_dh_times(t, g[t + 1], buf), decay)

        grad_v0 = (decay * g[0]) if ctx.needs_input_grad[1] else None
        grad_decay = grad_threshold = None
        if ctx.needs_input_grad[2]:
            v_seq = h_seq * (1 - spikes) if hard else h_seq - threshold * spikes
            v_prev = torch.cat([v0.unsqueeze(0).expand_as(v_seq[:1]), v_seq[:-1]])
            grad_decay = _sum_to(g * v_prev, decay)
        if ctx.needs_input_grad[3]:
            g_v = torch.zeros_like(g)                                 # dL/dv[t]
            g_v[:-1] = decay * g[1:]
            if grad_v_final is not None:
                g_v[-1] = grad_v_final
            if hard:
                dv_dtheta = torch.zeros_like(h_seq) if ctx.detach_reset else h_seq * sg
            else:
                dv_dtheta = -spikes if ctx.detach_reset else threshold * sg - spikes
            direct = 0 if grad_spikes is None else -grad_spikes * sg
            grad_threshold = _sum_to(direct + g_v * dv_dtheta, threshold)
        return g, grad_v0, grad_decay, grad_threshold, None, None, None, None
