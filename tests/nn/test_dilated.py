"""Dilated causal convolutions: causality, the receptive field, gated blocks, cached steps."""

from __future__ import annotations

import pytest
import torch

from dgm.nn.dilated import (
    CausalConv1d,
    DilatedStack,
    GatedResidualBlock,
    Queue,
    dilation_cycle,
    gated_activation,
    receptive_field,
)


def randomised(module: torch.nn.Module, scale: float = 0.5) -> torch.nn.Module:
    """``module`` in float64 with every parameter redrawn (no zero or identity structure)."""
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn_like(p))
    return module


def dependence(fn, x: torch.Tensor) -> torch.Tensor:
    """(T_out, T_in) booleans: output position t of ``fn`` (1, C', T) depends on input position j
    of x (1, C, T), from autograd's Jacobian."""
    jac = torch.autograd.functional.jacobian(fn, x)  # (1, C', T, 1, C, T)
    return jac[0].abs().sum((0, 2, 3)) > 0


def test_receptive_field_and_dilation_cycle():
    assert dilation_cycle(4) == (1, 2, 4, 8)
    assert dilation_cycle(3, stacks=2) == (1, 2, 4, 1, 2, 4)
    assert receptive_field((1, 2, 4, 8)) == 16
    assert receptive_field(dilation_cycle(8, 2)) == 511  # WaveNet's defaults in dgm
    assert receptive_field((1, 3), kernel_size=3) == 9


def test_gated_activation_is_tanh_times_sigmoid():
    a = torch.randn(3, 8, 5)
    f, g = a[:, :4], a[:, 4:]
    assert torch.allclose(gated_activation(a, 1), torch.tanh(f) * torch.sigmoid(g))


def test_queue_returns_past_inputs_and_zeros_before_the_start():
    q = Queue(3, 2, 4, torch.zeros(1))
    xs = [torch.full((2, 4), float(i + 1)) for i in range(5)]
    for lag in (1, 2, 3):
        assert torch.equal(q.past(lag), torch.zeros(2, 4))
    for i, x in enumerate(xs):
        q.push(x)
        for lag in (1, 2, 3):
            want = xs[i + 1 - lag] if i + 1 - lag >= 0 else torch.zeros(2, 4)
            assert torch.equal(q.past(lag), want)


@pytest.mark.parametrize("kernel_size,dilation", [(2, 1), (2, 3), (3, 2)])
def test_causal_conv_sees_exactly_its_taps(kernel_size, dilation):
    conv = randomised(CausalConv1d(3, 4, kernel_size, dilation))
    length = 12
    x = torch.randn(1, 3, length, dtype=torch.float64)
    depends = dependence(conv, x)
    t, j = torch.meshgrid(torch.arange(length), torch.arange(length), indexing="ij")
    lag = t - j
    taps = (lag >= 0) & (lag % dilation == 0) & (lag <= (kernel_size - 1) * dilation)
    assert torch.equal(depends, taps)
    assert conv(x).shape == (1, 4, length)


@pytest.mark.parametrize("kernel_size,dilation", [(2, 1), (2, 4), (3, 2)])
def test_causal_conv_steps_match_the_whole_pass(kernel_size, dilation):
    conv = randomised(CausalConv1d(3, 5, kernel_size, dilation))
    x = torch.randn(2, 3, 15, dtype=torch.float64)
    queue = Queue(conv.history, 2, 3, x)
    steps = torch.stack([conv.step(x[:, :, t], queue) for t in range(15)], -1)
    assert torch.allclose(steps, conv(x), atol=1e-12)


@pytest.mark.parametrize(
    "dilations,kernel_size", [((1, 2, 4), 2), ((1, 3), 3), ((1, 2, 4, 8, 1, 2, 4, 8), 2), ((2, 1), 2)]
)
def test_stack_receptive_field_is_the_measured_one(dilations, kernel_size):
    """Output t depends on no input after t, and on every input from t - R + 1 to t."""
    stack = randomised(DilatedStack(3, 4, dilations, kernel_size))
    field = receptive_field(dilations, kernel_size)
    assert stack.receptive_field == field
    length = field + 6
    depends = dependence(stack, torch.randn(1, 3, length, dtype=torch.float64))
    t, j = torch.meshgrid(torch.arange(length), torch.arange(length), indexing="ij")
    assert torch.equal(depends, (j <= t) & (j > t - field))


def test_block_conditions_on_the_label_inside_the_gate():
    block = randomised(GatedResidualBlock(3, 4, dilation=2, num_classes=3))
    x = torch.randn(2, 3, 7, dtype=torch.float64)
    out_a, skip_a = block(x, torch.tensor([0, 0]))
    out_b, skip_b = block(x, torch.tensor([0, 2]))
    assert torch.allclose(skip_a[0], skip_b[0]) and not torch.allclose(skip_a[1], skip_b[1])
    a = block.conv(x) + block.cond(torch.tensor([0, 2])).unsqueeze(-1)
    z = torch.tanh(a[:, :3]) * torch.sigmoid(a[:, 3:])
    assert torch.allclose(skip_b, block.skip(z)) and torch.allclose(out_b, x + block.res(z))


@pytest.mark.parametrize("num_classes", [0, 3])
@pytest.mark.parametrize("dilations,kernel_size", [((1, 2, 4), 2), ((1, 3, 2), 3)])
def test_stack_steps_match_the_whole_pass(dilations, kernel_size, num_classes):
    stack = randomised(DilatedStack(4, 5, dilations, kernel_size, num_classes=num_classes))
    cond = torch.tensor([2, 0, 1]) if num_classes else None
    x = torch.randn(3, 4, 20, dtype=torch.float64)
    cache = stack.cache(3, cond, like=x)
    steps = torch.stack([stack.step(x[:, :, t], cache) for t in range(20)], -1)  # (B, S, T)
    assert torch.allclose(steps, stack(x, cond), atol=1e-12)
    assert cache.queues[-1].t == 20


def test_stack_refuses_bad_dilations():
    with pytest.raises(ValueError):
        DilatedStack(2, 2, ())
    with pytest.raises(ValueError):
        DilatedStack(2, 2, (1, 0))
