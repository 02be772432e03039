"""Causal convolutions of the PixelCNNs: the windows they read, and their evaluation at one position."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgm.nn.pixelcnn import (
    CausalConv2d,
    Conv1x1,
    GatedLayer,
    PositionCache,
    ResidualBlock,
    gate,
    horizontal_conv,
    masked_conv,
    pointwise_matrix,
    shift_down,
    vertical_conv,
)


def randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``module`` in float64 with every parameter redrawn (no zero structure)."""
    module = module.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def reads(conv: CausalConv2d, i: int, j: int, shape=(2, 6, 7)) -> set[tuple[int, int]]:
    """The input positions the output at (i, j) depends on, by autograd."""
    x = torch.randn(1, *shape, dtype=torch.float64, requires_grad=True)
    randomized(conv)(x)[0, :, i, j].sum().backward()
    return {(int(r), int(c)) for r, c in (x.grad[0].abs().sum(0) > 0).nonzero()}


def window(rows: range, cols: range, shape=(6, 7)) -> set[tuple[int, int]]:
    return {(r, c) for r in rows for c in cols if 0 <= r < shape[0] and 0 <= c < shape[1]}


# ----- the windows --------------------------------------------------------------------------------


def test_masks_of_type_a_and_b():
    assert masked_conv(1, 1, 3, "A").mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert masked_conv(1, 1, 3, "B").mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert masked_conv(1, 1, 5, "A").mask.tolist() == [[1] * 5, [1] * 5, [1, 1, 0, 0, 0]]
    assert masked_conv(1, 1, 1, "B").full and masked_conv(1, 1, 1, "B").kernel_size == (1, 1)
    for bad in [(4, "A"), (1, "A"), (3, "C"), (0, "B")]:
        with pytest.raises(ValueError):
            masked_conv(1, 1, *bad)
    with pytest.raises(ValueError):
        horizontal_conv(1, 1, 1, "A")
    with pytest.raises(ValueError):
        vertical_conv(1, 1, 2)


@pytest.mark.parametrize("kernel, kind", [(3, "A"), (3, "B"), (5, "A"), (5, "B")])
def test_masked_conv_equals_the_papers_full_masked_kernel(kernel, kind):
    conv = randomized(masked_conv(2, 3, kernel, kind))
    r = kernel // 2
    full = torch.zeros(3, 2, kernel, kernel, dtype=torch.float64)
    full[:, :, : r + 1] = conv.masked_weight()  # the rows below the centre are zero in the paper's mask
    x = torch.randn(4, 2, 6, 7, dtype=torch.float64)
    assert torch.allclose(conv(x), F.conv2d(x, full, conv.bias, padding=r))


def test_each_convolution_reads_the_documented_window():
    i, j = 3, 3
    assert reads(masked_conv(2, 2, 3, "A"), i, j) == window(range(2, 3), range(2, 5)) | {(3, 2)}
    assert reads(masked_conv(2, 2, 3, "B"), i, j) == window(range(2, 3), range(2, 5)) | {(3, 2), (3, 3)}
    assert reads(vertical_conv(2, 2, 5), i, j) == window(range(1, 4), range(1, 6))  # the current row too
    assert reads(horizontal_conv(2, 2, 5, "B"), i, j) == window(range(3, 4), range(1, 4))
    assert reads(horizontal_conv(2, 2, 5, "A"), i, j) == window(range(3, 4), range(1, 3))
    assert reads(horizontal_conv(2, 2, 5, "A"), 0, 0) == set()  # nothing before the first pixel


def test_shift_down_gate_and_conv1x1():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    assert shift_down(x)[0, 0].tolist() == [[0] * 4, [0, 1, 2, 3], [4, 5, 6, 7]]
    a, b = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    assert torch.allclose(gate(torch.cat([a, b], 1)), torch.tanh(a) * torch.sigmoid(b))
    conv = randomized(Conv1x1(3, 4))
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight, conv.bias))
    assert torch.allclose(x.permute(0, 2, 3, 1) @ pointwise_matrix(conv) + conv.bias, conv(x).permute(0, 2, 3, 1))


def test_causal_conv_refuses_bad_shapes():
    with pytest.raises(ValueError):
        CausalConv2d(1, 1, (2, 3), anchor=-1)
    with pytest.raises(ValueError):
        CausalConv2d(1, 1, (2, 3), anchor=1, mask=torch.ones(3, 3))


# ----- one position at a time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: masked_conv(3, 4, 5, "A"),
        lambda: masked_conv(3, 4, 3, "B"),
        lambda: horizontal_conv(3, 4, 5, "A"),
        lambda: horizontal_conv(3, 4, 3, "B"),
    ],
)
def test_position_cache_gives_the_convolution_at_every_position_in_raster_order(make):
    conv = randomized(make())
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    expected = conv(x)  # (2, 4, 5, 6)
    cache = PositionCache(conv, 2, 5, 6, x)
    inside = cache.buffer[:, cache.top :, cache.left : cache.left + 6]
    inside.copy_(1e3 * torch.randn_like(inside))  # garbage where nothing was written: never read
    reads_centre = conv.anchor < conv.kernel_size[1] and bool(conv.mask[-1, conv.anchor])
    for i in range(5):
        for j in range(6):
            if reads_centre:  # type B: the input at (i, j) is known before the output
                cache.write(i, j, x[:, :, i, j])
            assert torch.allclose(cache.at(i, j, conv.bias), expected[:, :, i, j])
            cache.write(i, j, x[:, :, i, j])
            assert torch.equal(cache.read(i, j), x[:, :, i, j])


def test_position_cache_computes_whole_rows():  # the vertical stack: row by row
    conv = randomized(vertical_conv(3, 4, 5))
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    cache = PositionCache(conv, 2, 5, 6, x)
    for i in range(5):
        cache.write_row(i, x[:, :, i].transpose(1, 2))
        assert torch.allclose(cache.row(i, conv.bias), conv(x)[:, :, i].transpose(1, 2))


# ----- blocks -------------------------------------------------------------------------------------


def test_gated_layer_and_residual_block_are_causal_and_keep_shapes():
    layer = randomized(GatedLayer(2, 4, 3, first=True))
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    cond = torch.randn(1, 8, dtype=torch.float64)
    v, h = layer(x, x, cond, cond)
    assert v.shape == h.shape == (1, 4, 5, 6)
    h[0, :, 2, 3].sum().backward()
    seen = {(int(r), int(c)) for r, c in (x.grad[0].abs().sum(0) > 0).nonzero()}
    assert seen == window(range(0, 2), range(2, 5)) | {(2, 2)}  # the vertical stack's rows above, the pixel left
    block = randomized(ResidualBlock(6, 3))
    y = torch.randn(2, 6, 4, 5, dtype=torch.float64)
    assert block(y, torch.randn(2, 3, dtype=torch.float64)).shape == y.shape
