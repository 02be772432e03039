"""Latent-space tools: interpolation paths, attribute vectors, 2-D projections, decoded grids,
and the checks that name valid indices and labels; for models without an encoder (GANs), paths
between the prior draws of two seeds and attribute vectors from classified samples."""

from __future__ import annotations

import math

import pytest
import torch

import dgm
from dgm.apps.latent import (
    apply_attribute,
    attribute_rows,
    attribute_vector,
    classify_samples,
    decode,
    decoded_grid,
    default_noise,
    denoising,
    generated_attribute_rows,
    generated_attribute_vector,
    grid_coordinates,
    interpolation,
    latent_projection,
    lerp,
    prior_draw,
    reconstructions,
    require_latent,
    slerp,
    split_codes,
)
from dgm.errors import ConfigError, DataError
from dgm.eval.representation import latent_means
from dgm.models.base import GenerativeModel, ModelConfig
from dgm.sampling import draw_samples


class LinearCode(GenerativeModel):
    """A linear autoencoder with fixed random weights: z = (x - 8) W / 64 (+ 3 * cond for a
    conditional one), decode(z) = 8 + (z - 3 * cond) W^T. ``encode`` returns (mean, log_var)
    like a VAE, so its codes are the means."""

    has_latent = True
    has_encoder = True
    can_condition = True
    density = "bound"

    def __init__(self, config: ModelConfig, latent_dim: int = 2, seed: int = 0):
        super().__init__(config)
        self.latent_dim = latent_dim
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(config.data.dim, latent_dim, generator=gen))

    def _shift(self, cond, n):
        cond = self.check_cond(cond, n)
        return 0.0 if cond is None else 3.0 * cond.float().unsqueeze(1)

    def encode(self, x, cond=None):
        z = (self.flat_x(x) - 8.0) @ self.weight / 64 + self._shift(cond, x.shape[0])  # (B, K)
        return z, torch.zeros_like(z)

    def decode(self, z, cond=None):
        x = 8.0 + (z - self._shift(cond, z.shape[0])) @ self.weight.T  # (B, D)
        return x.reshape(-1, *self.config.data.shape)


@pytest.fixture(scope="module")
def digits():
    return dgm.load_dataset("digits")


def linear_code(ds, k: int = 2, conditional: bool = False) -> LinearCode:
    return LinearCode(ModelConfig(ds.info, conditional=conditional), latent_dim=k).eval()


def tiny_gan(ds, name: str = "dcgan", scale: float = 10.0):
    """An untrained DCGAN (4 feature maps, z in R^100) whose generator weights are scaled by
    ``scale``: the initial weights N(0, 0.02) make every image the same grey, the scaled ones
    give samples that the digit classifier spreads over several classes (on digits, seed 0: about
    5% 4s and 70% 9s, no 1s)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = dgm.build(name, data=ds, features=4)
    with torch.no_grad():
        for p in model.generator.parameters():
            if p.dim() > 1:
                p.mul_(scale)
    return model.eval()


# ----- interpolation ---------------------------------------------------------------------------


def test_lerp_hits_both_endpoints_exactly_and_the_midpoint():
    z_a, z_b = torch.tensor([0.3, -1.7, 2.2]), torch.tensor([1.1, 0.4, -0.9])
    path = lerp(z_a, z_b, torch.linspace(0, 1, 5))
    assert path.shape == (5, 3)
    assert torch.equal(path[0], z_a) and torch.equal(path[-1], z_b)
    assert torch.allclose(path[2], (z_a + z_b) / 2)


def test_slerp_stays_on_the_sphere_of_the_endpoints_norm_and_hits_both_endpoints():
    gen = torch.Generator().manual_seed(1)
    z_a = torch.randn(16, generator=gen)
    z_b = torch.randn(16, generator=gen)
    z_b = z_b * z_a.norm() / z_b.norm()  # the same norm
    alphas = torch.linspace(0, 1, 11)
    path = slerp(z_a, z_b, alphas)
    assert torch.equal(path[0], z_a) and torch.equal(path[-1], z_b)
    assert torch.allclose(path.norm(dim=-1), z_a.norm().expand(11), rtol=1e-6)
    # the straight line cuts inside the sphere
    assert lerp(z_a, z_b, [0.5]).norm() < 0.95 * z_a.norm()
    # the angle to z_a grows evenly: angle(z(t), z_a) = t Ω
    cos = torch.nn.functional.cosine_similarity(path.double(), z_a.double().expand(11, -1), dim=-1)
    omega = math.acos(float(torch.nn.functional.cosine_similarity(z_a, z_b, dim=0)))
    assert torch.allclose(torch.acos(cos.clamp(-1, 1)), alphas.double() * omega, atol=1e-5)


def test_slerp_interpolates_the_norm_linearly_and_works_on_batches():
    z_a = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    z_b = torch.tensor([[0.0, 4.0], [3.0, 0.0]])
    path = slerp(z_a, z_b, [0.0, 0.5, 1.0])
    assert path.shape == (2, 3, 2)
    assert torch.allclose(path[0, 1], torch.tensor([3.0, 3.0]) / math.sqrt(2))  # norm 3 at 45 degrees
    assert torch.allclose(path[1].norm(dim=-1), torch.tensor([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("factor", [2.0, -1.0, 0.0])
def test_slerp_of_parallel_antiparallel_or_zero_endpoints_is_lerp(factor):
    z_a = torch.tensor([1.0, -2.0, 0.5])
    z_b = factor * z_a
    alphas = torch.linspace(0, 1, 7)
    path = slerp(z_a, z_b, alphas)
    assert torch.isfinite(path).all()
    assert torch.allclose(path, lerp(z_a, z_b, alphas), atol=1e-6)


def test_non_finite_or_empty_alphas_are_refused():
    with pytest.raises(ConfigError, match="finite"):
        lerp(torch.zeros(2), torch.ones(2), [0.0, float("nan")])
    with pytest.raises(ConfigError, match="non-empty"):
        slerp(torch.zeros(2), torch.ones(2), [])


# ----- attribute vectors -----------------------------------------------------------------------


def test_attribute_vector_is_the_difference_of_group_means():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 14.0], [-50.0, 7.0]])
    labels = torch.tensor([1, 1, 5, 5, 3])
    assert torch.equal(attribute_vector(z, labels, 1, 5), torch.tensor([10.0, 12.0]))
    assert torch.equal(attribute_vector(z, labels, 5, 1), torch.tensor([-10.0, -12.0]))


def test_attribute_vector_of_an_empty_group_names_the_labels_present():
    z, labels = torch.randn(4, 3), torch.tensor([0, 2, 2, 7])
    with pytest.raises(DataError, match="no example has label 4; labels present: 0, 2, 7"):
        attribute_vector(z, labels, 0, 4)
    with pytest.raises(DataError, match="need labelled data"):
        attribute_vector(z, None, 0, 2)


def test_apply_attribute_with_alpha_zero_returns_the_latent_exactly():
    gen = torch.Generator().manual_seed(0)
    z, v = torch.randn(3, 5, generator=gen), 1e6 * torch.randn(5, generator=gen)
    moved = apply_attribute(z, v, [-1.0, 0.0, 0.5])
    assert moved.shape == (3, 3, 5)
    assert torch.equal(moved[:, 1], z)
    assert torch.allclose(moved[:, 2], z + 0.5 * v) and torch.allclose(moved[:, 0], z - v)


# ----- projections and grids -------------------------------------------------------------------


def test_projection_of_a_2d_latent_is_the_identity():
    z = torch.randn(50, 2)
    proj = latent_projection(z)
    assert torch.equal(proj.points, z) and proj.explained == 1.0 and proj.components is None
    assert proj.describe(2) == "2-d latent"


def test_pca_recovers_the_top_direction_of_an_anisotropic_cloud():
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen))  # a random rotation
    scales = torch.tensor([5.0, 2.0, 0.1, 0.1, 0.1, 0.1])
    z = (torch.randn(4000, 6, generator=gen) * scales) @ q.T + 10.0
    proj = latent_projection(z)
    assert proj.points.shape == (4000, 2)
    assert abs(float(proj.components[0] @ q[:, 0])) > 0.999
    assert abs(float(proj.components[1] @ q[:, 1])) > 0.999
    expected = (25 + 4) / (25 + 4 + 4 * 0.01)
    assert proj.explained == pytest.approx(expected, abs=0.003)
    assert "PCA of 6-d latent, 100% of variance" == proj.describe(6)
    # the sign convention: each direction's largest entry is positive, whatever the data's sign
    for row in proj.components:
        assert row[row.abs().argmax()] > 0
    flipped = latent_projection(-z)
    assert torch.allclose(flipped.components, proj.components, atol=1e-4)
    assert torch.allclose(flipped.points, -proj.points, atol=1e-3)


def test_projection_fitted_on_other_codes_uses_their_mean_and_directions():
    fit = torch.randn(300, 4) * torch.tensor([3.0, 1.0, 0.5, 0.2])
    proj = latent_projection(fit[:10], fit_on=fit)
    full = latent_projection(fit)
    assert torch.allclose(proj.points, full.points[:10], atol=1e-5)


def test_grid_coordinates_are_normal_quantiles_or_the_codes_quantiles():
    coords = grid_coordinates(3, span=0.95)
    assert coords.shape == (3, 2)
    assert torch.allclose(coords[:, 0], torch.tensor([-1.959964, 0.0, 1.959964]), atol=1e-5)
    codes = torch.stack([torch.arange(101.0), 10 * torch.arange(101.0)], 1)
    assert torch.allclose(grid_coordinates(3, 0.8, codes), torch.tensor([[10.0, 100.0], [50.0, 500.0], [90.0, 900.0]]))
    with pytest.raises(ConfigError, match="at least 2"):
        grid_coordinates(1)


def test_decoded_grid_reads_like_a_plot_and_needs_a_2d_latent(digits):
    model = linear_code(digits, k=2)
    grid = decoded_grid(model, n=4)
    assert grid.x.shape == (16, 1, 8, 8) and grid.prior
    z = torch.linalg.lstsq(model.weight.detach(), (grid.x.flatten(1) - 8.0).T).solution.T  # (16, 2)
    assert torch.allclose(z[0], torch.stack([grid.coords[0, 0], grid.coords[-1, 1]]), atol=1e-4)  # top left
    assert torch.allclose(z[3], torch.stack([grid.coords[-1, 0], grid.coords[-1, 1]]), atol=1e-4)  # top right
    assert torch.allclose(z[12], torch.stack([grid.coords[0, 0], grid.coords[0, 1]]), atol=1e-4)  # bottom left
    with pytest.raises(ConfigError, match="latent_dim=16; train one with --set latent_dim=2"):
        decoded_grid(linear_code(digits, k=16), n=4)


# ----- models and data -------------------------------------------------------------------------


def test_latent_means_passes_labels_batch_by_batch(digits):
    model = linear_code(digits, k=3, conditional=True)
    x, y = digits.transformed("test")[0][:7], digits.split("test").y[:7]
    plain = linear_code(digits, k=3)
    z = latent_means(model, x, batch_size=3, cond=y)
    assert torch.allclose(z, latent_means(plain, x) + 3.0 * y.float().unsqueeze(1), atol=1e-5)
    with pytest.raises(DataError, match="7 examples but 2 labels"):
        latent_means(model, x, cond=y[:2])


def test_a_model_without_latent_names_the_models_that_have_one(digits):
    model = dgm.build("independent", data=digits)
    with pytest.raises(ConfigError, match="'independent' has no latent space .* latent tools need .*vae"):
        require_latent(model)
    with pytest.raises(ConfigError, match="no latent space"):
        split_codes(model, digits)


def test_interpolation_ends_decode_the_ends_codes_and_checks_indices(digits):
    model = linear_code(digits, k=4)
    path = interpolation(model, digits, 3, 40, steps=6)
    assert path.linear.shape == path.spherical.shape == (6, 1, 8, 8)
    codes = split_codes(model, digits, index=[3, 40])
    ends = decode(model, codes.z)
    assert torch.allclose(path.linear[0], ends[0]) and torch.allclose(path.spherical[-1], ends[1])
    assert torch.equal(path.x_from, digits.split("test").x[3])
    assert not torch.allclose(path.linear[2], path.spherical[2])  # the paths differ in between
    with pytest.raises(
        ConfigError, match=r"example 447 is not in the test split of 'digits' \(447 examples\); use 0..446"
    ):
        interpolation(model, digits, 0, 447)
    with pytest.raises(ConfigError, match="use 0..446"):
        interpolation(model, digits, -1, 3)
    with pytest.raises(ConfigError, match="at least 2 steps"):
        interpolation(model, digits, 0, 1, steps=1)


def test_attribute_rows_move_class_a_examples_and_check_labels(digits):
    model = linear_code(digits, k=4)
    rows = attribute_rows(model, digits, 3, 8, alphas=[0.0, 1.0], examples=3)
    assert rows.rows.shape == (3, 2, 1, 8, 8)
    assert (digits.split("test").y[rows.index] == 3).all()
    assert torch.allclose(rows.rows[:, 0], decode(model, split_codes(model, digits, index=rows.index).z), atol=1e-5)
    with pytest.raises(DataError, match="has label 12; labels present: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"):
        attribute_rows(model, digits, 3, 12)


def test_attribute_rows_need_labels(tmp_path):
    import numpy as np

    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).integers(0, 4, (40, 1, 4, 4)))
    ds = dgm.load_dataset(f"npz:{tmp_path / 'd.npz'}")
    with pytest.raises(DataError, match="attribute vectors need labelled data; 'npz:.*' has no labels"):
        attribute_rows(linear_code(ds), ds, 0, 1)


def test_reconstructions_and_denoising_use_the_seed_and_the_models_noise(digits):
    model = linear_code(digits, k=4)
    x, x_hat = reconstructions(model, digits, n=5, seed=2)
    assert x.shape == x_hat.shape == (5, 1, 8, 8)
    assert torch.equal(x, reconstructions(model, digits, n=5, seed=2)[0])
    assert not torch.equal(x, reconstructions(model, digits, n=5, seed=3)[0])
    triples = denoising(model, digits, n=5, seed=2)
    assert (triples.kind, triples.level) == ("masking", 0.25)
    assert torch.equal(triples.x, x)
    dropped = (triples.corrupted == 0) & (x != 0)
    assert dropped.any() and torch.equal(triples.corrupted[~dropped], x[~dropped])  # masking only zeroes
    assert default_noise(dgm.build("dae", data=digits, noise="gaussian", noise_level=0.1), digits) == ("gaussian", 0.1)
    assert default_noise(dgm.build("dae", data=digits), digits) == ("masking", 0.25)  # "auto" resolved
    continuous = dgm.load_dataset("digits", transforms=["dequantize"])
    kind, level = default_noise(linear_code(continuous), continuous)
    assert kind == "gaussian" and level == pytest.approx(
        0.25 * float(continuous.transformed("train")[0].std()), rel=1e-3
    )
    with pytest.raises(ConfigError, match="flip noise is for binary data"):
        denoising(model, digits, n=2, kind="flip")


def test_conditional_models_get_the_labels_of_their_examples(digits):
    model, plain = linear_code(digits, k=3, conditional=True), linear_code(digits, k=3)
    y = digits.split("test").y
    i, j = 0, next(k for k in range(1, 100) if y[k] != y[0])
    path = interpolation(model, digits, i, j, steps=5)
    ends = decode(plain, split_codes(plain, digits, index=[i, j]).z)
    assert torch.allclose(path.linear[0], ends[0], atol=1e-4)  # label of i before t = 1/2,
    assert torch.allclose(path.linear[-1], ends[1], atol=1e-4)  # label of j from there on
    with pytest.raises(ConfigError, match="needs a label for its decoded grid"):
        decoded_grid(linear_code(digits, k=2, conditional=True), n=3)
    conditional, unconditional = linear_code(digits, k=2, conditional=True), linear_code(digits, k=2)
    assert torch.allclose(decoded_grid(conditional, n=3, cond=0).x, decoded_grid(unconditional, n=3).x, atol=1e-4)
    assert not torch.allclose(decoded_grid(conditional, n=3, cond=2).x, decoded_grid(unconditional, n=3).x, atol=1e-2)


# ----- models without an encoder (GANs) ---------------------------------------------------------


@pytest.fixture(scope="module")
def gan(digits):
    return tiny_gan(digits)


def test_a_gan_interpolates_between_the_prior_draws_of_two_seeds(digits, gan):
    path = interpolation(gan, digits, 3, 17, steps=6)
    assert path.seeds and path.linear.shape == path.spherical.shape == (6, 1, 8, 8)
    z_3 = gan.prior_sample(1, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(path.z_from, z_3) and torch.equal(path.z_to, prior_draw(gan, 17))
    # the ends are G(z) of the seeds: the samples dgm sample -n 1 --seed 3 / --seed 17 draws
    assert torch.equal(path.x_from, draw_samples(gan, 1, seed=3)[0])
    assert torch.equal(path.x_to, gan.decode(prior_draw(gan, 17)[None])[0])
    assert not torch.equal(path.x_from, path.x_to)
    for decoded in (path.linear, path.spherical):
        assert torch.equal(decoded[0], path.x_from) and torch.equal(decoded[-1], path.x_to)
    assert not torch.equal(path.linear[2:4], path.spherical[2:4])  # the paths differ in between
    # the same call gives the same picture; the split and its seed play no part
    assert torch.equal(interpolation(gan, digits, 3, 17, steps=6, split="train", seed=5).spherical, path.spherical)


def test_the_spherical_path_between_prior_draws_keeps_norms_between_the_ends(gan):
    z_a, z_b = prior_draw(gan, 0), prior_draw(gan, 1)
    alphas = torch.linspace(0, 1, 11)
    norms = slerp(z_a, z_b, alphas).norm(dim=-1)
    low, high = sorted([float(z_a.norm()), float(z_b.norm())])
    assert ((norms >= low - 1e-4) & (norms <= high + 1e-4)).all()
    assert torch.allclose(norms, (1 - alphas) * z_a.norm() + alphas * z_b.norm(), atol=1e-4)
    assert lerp(z_a, z_b, [0.5]).norm() < 0.8 * low  # the straight line cuts inside (K = 100)


def test_seeds_and_labels_of_a_gan_interpolation_are_checked(digits, gan):
    with pytest.raises(ConfigError, match="the first seed must be an integer in 0..4294967295"):
        interpolation(gan, digits, -1, 3)
    with pytest.raises(ConfigError, match="at least 2 steps"):
        interpolation(gan, digits, 0, 1, steps=1)
    with pytest.raises(ConfigError, match="'dcgan' was trained without conditional=true: drop --label"):
        interpolation(gan, digits, 0, 1, label=3)
    cgan = tiny_gan(digits, "cgan")
    with pytest.raises(ConfigError, match="'cgan' has no encoder.*--label L with L in 0..9"):
        interpolation(cgan, digits, 0, 1)
    with pytest.raises(ConfigError, match="label 10 is not a class of this cgan's data: use 0..9"):
        interpolation(cgan, digits, 0, 1, label=10)
    seven, two = (
        interpolation(cgan, digits, 0, 1, steps=3, label=7),
        interpolation(cgan, digits, 0, 1, steps=3, label=2),
    )
    z = torch.stack([prior_draw(cgan, 0), prior_draw(cgan, 1)])
    assert torch.equal(seven.x_from, cgan.decode(z, cond=torch.tensor([7, 7]))[0])
    assert torch.equal(seven.linear[-1], cgan.decode(z, cond=torch.tensor([7, 7]))[1])
    assert seven.label == 7 and not torch.equal(seven.linear, two.linear)


def test_a_conditional_autoencoder_decodes_the_whole_path_with_a_given_label(digits):
    model = linear_code(digits, k=3, conditional=True)
    path = interpolation(model, digits, 0, 5, steps=4, label=2)
    labels = torch.full((4,), 2)
    assert torch.allclose(path.linear, decode(model, lerp(path.z_from, path.z_to, path.alphas), labels))
    with pytest.raises(ConfigError, match="drop --label"):
        interpolation(linear_code(digits, k=3), digits, 0, 5, label=2)


def test_generated_attribute_vector_is_the_mean_difference_of_the_predicted_classes():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(60, 5, generator=gen)
    predicted = torch.arange(60) % 4  # 15 of each class 0..3
    v = generated_attribute_vector(z, predicted, 1, 3)
    assert torch.allclose(v, z[predicted == 3].mean(0) - z[predicted == 1].mean(0), atol=1e-6)
    assert torch.equal(v, attribute_vector(z, predicted, 1, 3))
    with pytest.raises(DataError, match="assigns 15 of 60 generated samples to class 1 and 0 to class 7.*train the"):
        generated_attribute_vector(z, predicted, 1, 7)
    with pytest.raises(DataError, match="at least 20 of each: draw more with --samples 1000"):
        generated_attribute_vector(z, predicted, 1, 3, least=20)


def test_gan_attribute_rows_move_samples_classified_a_along_the_classified_mean_difference(digits, gan):
    rows = attribute_rows(gan, digits, 4, 9, alphas=[0.0, 1.5], examples=3, samples=1000, seed=2)
    z = gan.prior_sample(1000, generator=torch.Generator().manual_seed(2))
    predicted = classify_samples(digits, decode(gan, z))
    assert rows.counts == (int((predicted == 4).sum()), int((predicted == 9).sum()))
    assert rows.counts[0] >= 10 and rows.counts[1] >= 10
    assert rows.rows.shape == (3, 2, 1, 8, 8) and (predicted[rows.index] == 4).all()
    v = z[predicted == 9].mean(0) - z[predicted == 4].mean(0)
    assert rows.norm == pytest.approx(float(v.norm()), rel=1e-5)
    assert torch.equal(rows.rows[:, 0], rows.x)  # alpha = 0 gives the samples back
    assert torch.equal(rows.x, decode(gan, z[rows.index]))
    assert torch.allclose(rows.rows[:, 1], decode(gan, z[rows.index] + 1.5 * v), atol=1.0)  # levels, rounded
    assert (rows.rows[:, 1] != rows.x).any()


def test_gan_attribute_errors_name_the_fix(digits, gan, tmp_path):
    import numpy as np

    with pytest.raises(DataError, match=r"to class 1; an attribute vector needs at least 10 of each: train the model"):
        attribute_rows(gan, digits, 4, 1, samples=1000)
    with pytest.raises(ConfigError, match="class 12 is not one the digit classifier predicts: use 0..9"):
        attribute_rows(gan, digits, 4, 12)
    with pytest.raises(ConfigError, match="'cgan' takes its class from the label, not from z"):
        generated_attribute_rows(tiny_gan(digits, "cgan"), digits, 4, 9)
    with pytest.raises(ConfigError, match="number of samples must be at least 1"):
        attribute_rows(gan, digits, 4, 9, samples=0)
    with pytest.raises(ConfigError, match="a number of samples is for models without an encoder"):
        attribute_rows(linear_code(digits, k=3), digits, 4, 9, samples=100)
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).integers(0, 4, (40, 1, 4, 4)))
    small = dgm.load_dataset(f"npz:{tmp_path / 'd.npz'}")
    with pytest.raises(DataError, match=r"digit classifier, which takes grey digits of shape 1x28x28 or 1x8x8"):
        attribute_rows(tiny_gan(small), small, 0, 1)


def test_codes_of_data_need_an_encoder_and_the_error_names_what_works(digits, gan):
    works = "for this model use dgm interpolate, dgm attribute or dgm sample"
    with pytest.raises(ConfigError, match=f"encoding data needs an encoder.*'dcgan' has none.*{works}"):
        split_codes(gan, digits)
    with pytest.raises(ConfigError, match=f"a reconstruction needs an encoder.*{works}"):
        reconstructions(gan, digits)
    with pytest.raises(ConfigError, match=f"denoising needs an encoder.*{works}"):
        denoising(gan, digits)
