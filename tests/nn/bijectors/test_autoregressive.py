"""The MADE conditioner, MAF and IAF."""

from __future__ import annotations

import pytest
import torch

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.autoregressive import MADEConditioner, MaskedAffineAutoregressive, make_order
from dgm.nn.bijectors.base import Compose, Inverse
from tests.nn.bijectors import assert_ladj_matches_autograd, assert_round_trip, gaussian, perturbed

DIM = 5


def conditioner_jacobian(net: MADEConditioner, x: torch.Tensor) -> torch.Tensor:
    """d params[d, p] / d x[j] at one point ``x`` (D,): (D, P, D)."""
    return torch.autograd.functional.jacobian(lambda v: net(v[None])[0], x)


@pytest.mark.parametrize(
    ("order", "hidden"),
    [("natural", (32, 32)), ("reversed", (32,)), ("random", (32, 32, 32)), ("random", ()), ("natural", (3,))],
)
def test_made_output_ignores_inputs_at_or_after_its_dimension(order, hidden):
    net = perturbed(MADEConditioner(DIM, 3, hidden=hidden, order=order, seed=4))
    jac = conditioner_jacobian(net, gaussian(DIM))  # (D, P, D)
    position = torch.empty(DIM, dtype=torch.long)
    position[net.order] = torch.arange(DIM)  # position[d] = step at which d is transformed
    allowed = position[None, :] < position[:, None]  # (D out, D in): strictly earlier inputs only
    mask = allowed[:, None, :].expand_as(jac)
    assert torch.equal(jac[~mask], torch.zeros_like(jac[~mask]))
    assert bool((jac.abs() > 0).any())  # and it does depend on earlier inputs
    # the masks connect output d to input j exactly when j is earlier (wide enough layers)
    reach = torch.eye(DIM)
    for layer in net.masked_layers():
        reach = layer.mask.float() @ reach  # paths from the inputs to this layer's units
    reach = reach.view(DIM, 3, DIM)[:, 0] > 0  # (D out, D in), from the first parameter's rows
    assert torch.equal(reach & ~allowed, torch.zeros_like(reach))
    if hidden != (3,):
        assert torch.equal(reach, allowed)


def test_make_order_choices():
    assert make_order(4).tolist() == [0, 1, 2, 3]
    assert make_order(4, "reversed").tolist() == [3, 2, 1, 0]
    assert torch.equal(make_order(6, "random", seed=1), make_order(6, "random", seed=1))
    assert not torch.equal(make_order(6, "random", seed=1), make_order(6, "random", seed=2))
    assert make_order(3, torch.tensor([2, 0, 1])).tolist() == [2, 0, 1]
    with pytest.raises(ConfigError, match="permutation"):
        make_order(3, torch.tensor([0, 0, 1]))
    with pytest.raises(ConfigError, match="unknown order"):
        make_order(3, "sideways")


def make_maf(order="random", seed=0, **kwargs) -> MaskedAffineAutoregressive:
    return perturbed(MaskedAffineAutoregressive(DIM, hidden=(24, 24), order=order, seed=seed, **kwargs), seed=seed)


@pytest.mark.parametrize("order", ["natural", "reversed", "random"])
def test_maf_inverts_and_ladj_matches_autograd(order):
    maf, x = make_maf(order), gaussian(6, DIM)
    assert_round_trip(maf, x)
    assert_ladj_matches_autograd(maf, x)


def test_maf_forward_formula_and_triangular_jacobian():
    """z_d = (x_d - mu_d) exp(-alpha_d): the Jacobian is triangular with exp(-alpha_d) on its diagonal."""
    maf, x = make_maf("random", seed=3), gaussian(DIM, seed=1)
    jac = torch.autograd.functional.jacobian(lambda v: maf(v[None])[0][0], x)
    order = maf.conditioner.order
    permuted = jac[order][:, order]
    assert torch.equal(permuted.triu(1), torch.zeros_like(permuted))
    _, ladj = maf(x[None])
    torch.testing.assert_close(torch.diagonal(jac).log().sum(), ladj[0])


def count_conditioner_calls(bijector: MaskedAffineAutoregressive) -> list[int]:
    calls = [0]
    bijector.conditioner.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_iaf_is_the_inverse_of_maf_and_samples_in_one_pass():
    maf = make_maf()
    iaf = Inverse(maf)
    calls = count_conditioner_calls(maf)
    z = gaussian(6, DIM, seed=2)
    x, ladj = iaf.inverse(z)  # sampling: base -> data, with the log-det of the sample
    assert calls[0] == 1
    torch.testing.assert_close((x, ladj), maf(z))
    calls[0] = 0
    z_back, ladj_back = iaf(x)  # the density direction of an arbitrary point: D passes
    assert calls[0] == DIM
    torch.testing.assert_close(z_back, z)
    torch.testing.assert_close(ladj_back, -ladj)
    assert_round_trip(iaf, z)
    assert_ladj_matches_autograd(iaf, z)


def test_stacked_mafs_with_alternating_orders():
    flow = Compose([make_maf("natural", seed=0), make_maf("reversed", seed=1), make_maf("random", seed=2)])
    x = gaussian(4, DIM)
    assert_round_trip(flow, x)
    assert_ladj_matches_autograd(flow, x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_maf_soft_clamp_keeps_extreme_outputs_finite(dtype):
    maf = make_maf(max_log_scale=2.0).to(dtype)
    with torch.no_grad():
        maf.conditioner.out.bias.fill_(1e4)  # raw log-scales and shifts far beyond any sane value
    x = gaussian(4, DIM, dtype=dtype) * 100
    z, ladj = maf(x)
    assert bool(torch.isfinite(z).all() and torch.isfinite(ladj).all())
    assert bool((ladj.abs() <= 2.0 * DIM + 1e-4).all())
    x_back, ladj_back = maf.inverse(z)
    assert bool(torch.isfinite(x_back).all())
    torch.testing.assert_close(ladj_back, -ladj)


def test_conditional_maf_depends_on_the_label_and_inverts():
    maf = make_maf(num_classes=3)
    x, cond = gaussian(6, DIM), torch.tensor([0, 1, 2, 0, 1, 2])
    z, _ = maf(x, cond)
    assert not torch.allclose(z, maf(x, (cond + 1) % 3)[0], atol=1e-3)
    assert_round_trip(maf, x, cond)
    assert_ladj_matches_autograd(maf, x, cond)
    with pytest.raises(DataError, match="cond"):
        maf(x)


def test_context_conditioned_iaf_for_vae_posteriors():
    iaf = Inverse(make_maf(context_features=7))
    z, context = gaussian(4, DIM), gaussian(4, 7, seed=5)
    x, _ = iaf.inverse(z, context)  # a posterior sample given the encoder's features
    assert not torch.allclose(x, iaf.inverse(z, context + 1)[0], atol=1e-3)
    assert_round_trip(iaf, z, context)
    assert_ladj_matches_autograd(iaf, z, context)


def test_masks_are_rebuilt_from_the_config_when_loading():
    maf = make_maf("random", seed=7)
    fresh = MaskedAffineAutoregressive(DIM, hidden=(24, 24), order="random", seed=7).double()
    fresh.load_state_dict(maf.state_dict())
    x = gaussian(3, DIM)
    torch.testing.assert_close(fresh(x)[0], maf(x)[0])
    assert not any("mask" in key or "order" in key for key in maf.state_dict())


def test_bad_configs_and_shapes_are_named():
    with pytest.raises(ConfigError, match="not both"):
        MADEConditioner(3, 2, num_classes=2, context_features=4)
    with pytest.raises(ConfigError, match="positive"):
        MADEConditioner(0, 2)
    with pytest.raises(ConfigError, match="max_log_scale"):
        MaskedAffineAutoregressive(3, max_log_scale=0.0)
    with pytest.raises(DataError, match=r"\(B, 5\)"):
        make_maf()(gaussian(2, 4))
