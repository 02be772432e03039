"""Generator and discriminator networks of the GAN family: MLPs for vectors, DCGAN for images.

Generators map a latent z (B, latent_dim), and class labels ``cond`` (B,) when conditional, to
data: (B, dim) vectors with a linear output, or (B, C, H, W) images in [-1, 1] (tanh).
Discriminators map data, and labels when conditional, to raw scores (B,) (logits: the losses
put the sigmoid, or nothing for Wasserstein and hinge losses, on top).

Conditioning. A generator concatenates a learned label embedding to z (Mirza & Osindero 2014).
A discriminator is a projection discriminator (Miyato & Koyama 2018): with phi(x) its last
features and psi a linear layer,

    D(x, y) = psi(phi(x)) + <embed(y), phi(x)>,

so changing the label changes the score by exactly <embed(y') - embed(y), phi(x)>.

DCGAN (Radford et al. 2015) for any image size. The maps are halved (ceil) while their smaller
side is at least 8, at most 4 times, and at least twice when the sides stay >= 2 (see
:func:`dcgan_sizes`): 64 -> 4 (the paper's 4x4 base), 28 -> 14 -> 7, 8 -> 4 -> 2,
30 -> 15 -> 8 -> 4, 20x36 -> 10x18 -> 5x9. With k halvings the generator projects z to the base
map with ``features * 2**(k-1)`` channels (at most ``8 * features``), then k ConvTranspose2d
(kernel 4, stride 2, padding 1) double the size and halve the channels, BatchNorm + ReLU after
each but the last, which gives C channels and tanh; the result, ``base * 2**k`` on each side,
is centre-cropped to (H, W) (30 <- 32). For 3x64x64 and features=64 it is the paper's and the
PyTorch example's generator: z (100) -> 512x4x4 -> 256x8x8 -> 128x16x16 -> 64x32x32 -> 3x64x64.
The discriminator mirrors it: k Conv2d (kernel 4, stride 2, padding 1) with ``features``,
``2 * features``, ... channels (at most ``8 * features``), LeakyReLU(0.2), no normalisation on
the first and ``norm`` on the others, then a linear layer on the flattened smallest map (the
paper's last 4x4 convolution, for any size). Small images get small networks: for 1x28x28 with
features=32, G and D together have about 0.39M parameters.

>>> g = DCGANGenerator(100, (1, 28, 28), features=32)
>>> g(torch.randn(5, 100)).shape
torch.Size([5, 1, 28, 28])
>>> d = DCGANDiscriminator((1, 28, 28), features=32, num_classes=10)
>>> d(torch.randn(5, 1, 28, 28), torch.arange(5)).shape
torch.Size([5])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from dgm.errors import ConfigError, DataError
from dgm.nn.mlp import MLP

NORMS = ("batch", "layer", "none")


def dcgan_sizes(height: int, width: int, max_halvings: int = 4) -> list[tuple[int, int]]:
    """Spatial sizes of the DCGAN levels, largest (H, W) first: ceil halves while the smaller
    side is at least 8, or while fewer than two halvings were made and it is at least 4 (tiny
    images still get two layers: 8 -> 4 -> 2), at most ``max_halvings`` times. The last is the
    generator's base map (64 -> 4, 28 -> 7); images above 64x64 keep four halvings (128 -> 8)."""
    if min(height, width) < 4:
        raise ConfigError(f"DCGAN networks need images of at least 4x4, got {height}x{width}; use the MLP gan")
    sizes = [(height, width)]
    while len(sizes) <= max_halvings:
        side, halvings = min(sizes[-1]), len(sizes) - 1
        if side < 8 and not (halvings < 2 and side >= 4):
            break
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def default_features(shape: Sequence[int]) -> int:
    """The DCGAN width for images of ``shape`` (C, H, W): the paper's 64 from 64x64 up, 32 below
    (1x28x28: G + D ~0.39M parameters; 1x8x8: ~0.09M), small enough for 2 CPU cores."""
    return 64 if min(shape[1:]) >= 64 else 32


@torch.no_grad()
def dcgan_init(m: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2015) of one module, in place; use it as
    ``net.apply(dcgan_init)`` (as the PyTorch example does) to reach every layer of ``net``.

    Weights of convolutions and linear layers ~ N(0, 0.02), scales of batch/group/layer norms
    ~ N(1, 0.02), their biases 0; other modules are left alone, label embeddings included (the
    generator's keeps N(0, 1), the scale of the z it is concatenated with). A spectrally
    normalised weight gets the initialisation on its raw weight and its power iteration
    restarted. Meant for the DCGAN networks, whose batch norms undo the small scale: a deep MLP
    without norms would see its activations shrink layer after layer, so the MLPs keep PyTorch's.
    """
    if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
        _raw_weight(m).normal_(0.0, 0.02)
    elif isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)) and m.weight is not None:
        _raw_weight(m).normal_(1.0, 0.02)
    else:
        return
    if m.bias is not None:
        nn.init.zeros_(m.bias)
    if parametrize.is_parametrized(m, "weight"):
        _restart_power_iteration(m)


class ProjectionHead(nn.Module):
    """Features phi (B, F), labels (B,) or None -> scores (B,): ``psi(phi) + <embed(y), phi>``
    (Miyato & Koyama 2018), the second term only when ``num_classes > 0``.

    The embedding starts at N(0, 1/F), so that <embed(y), phi> has the scale of phi's entries,
    that of psi(phi) under the DCGAN initialisation.
    """

    def __init__(self, in_features: int, num_classes: int = 0, spectral_norm: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.psi = _sn(nn.Linear(in_features, 1), spectral_norm)
        self.embed: nn.Module | None = None
        if num_classes > 0:
            embed = nn.Embedding(num_classes, in_features)
            nn.init.normal_(embed.weight, 0.0, in_features**-0.5)
            self.embed = _sn(embed, spectral_norm)

    def forward(self, phi: Tensor, cond: Tensor | None = None) -> Tensor:
        score = self.psi(phi).squeeze(1)  # (B,)
        e = _embed(self.embed, self.num_classes, cond, phi.shape[0], "discriminator")
        if e is not None:
            score = score + (e * phi).sum(1)  # (B, F) . (B, F) -> (B,)
        return score


class MLPGenerator(nn.Module):
    """z (B, latent_dim), labels (B,) or None -> x (B, dim): an MLP with ``layers`` hidden
    ReLU layers of ``hidden`` units and a linear output; when ``num_classes > 0`` a learned
    label embedding (B, embed_dim) is concatenated to z."""

    def __init__(
        self, latent_dim: int, dim: int, hidden: int = 128, layers: int = 3, num_classes: int = 0, embed_dim: int = 32
    ):
        super().__init__()
        _check_sizes(latent_dim=latent_dim, dim=dim, hidden=hidden, layers=layers, embed_dim=embed_dim)
        _check_options(num_classes)
        self.latent_dim, self.dim, self.num_classes = latent_dim, dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        in_features = latent_dim + (embed_dim if num_classes > 0 else 0)
        self.net = MLP(in_features, [hidden] * layers, dim, activation=nn.ReLU)

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.net(_latent_input(z, self.latent_dim, self.embed, self.num_classes, cond))  # (B, dim)


class MLPDiscriminator(nn.Module):
    """x (B, dim), labels (B,) or None -> scores (B,): ``layers`` hidden layers of ``hidden``
    units, each Linear, ``norm`` (BatchNorm1d "batch", LayerNorm "layer", or "none"; never on
    the first layer, as in DCGAN), LeakyReLU(0.2) and, when ``dropout`` > 0, Dropout; then the
    :class:`ProjectionHead` on those last features phi(x). ``spectral_norm`` normalises every
    linear layer and the label embedding (Miyato et al. 2018)."""

    def __init__(
        self,
        dim: int,
        hidden: int = 128,
        layers: int = 3,
        num_classes: int = 0,
        dropout: float = 0.0,
        spectral_norm: bool = False,
        norm: str = "none",
    ):
        super().__init__()
        _check_sizes(dim=dim, hidden=hidden, layers=layers)
        _check_options(num_classes, dropout, norm)
        self.dim, self.num_classes = dim, num_classes
        blocks = []
        for i in range(layers):
            normed = i > 0 and norm != "none"
            block = [_sn(nn.Linear(dim if i == 0 else hidden, hidden, bias=not normed), spectral_norm)]
            if normed:
                block.append(nn.BatchNorm1d(hidden) if norm == "batch" else nn.LayerNorm(hidden))
            blocks.append(nn.Sequential(*block, *_activation(dropout, nn.Dropout)))
        self.body = nn.Sequential(*blocks)
        self.head = ProjectionHead(hidden, num_classes, spectral_norm)

    def features(self, x: Tensor) -> Tensor:
        """phi(x): (B, dim) -> (B, hidden)."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise DataError(f"the discriminator takes vectors (B, {self.dim}), got x of shape {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.head(self.features(x), cond)  # (B,)


class DCGANGenerator(nn.Module):
    """z (B, latent_dim), labels (B,) or None -> images (B, C, H, W) in [-1, 1]: DCGAN's
    generator for images of ``shape`` (C, H, W) (see the module docstring); when
    ``num_classes > 0`` a learned label embedding (B, embed_dim) is concatenated to z."""

    def __init__(
        self, latent_dim: int, shape: Sequence[int], features: int = 64, num_classes: int = 0, embed_dim: int = 32
    ):
        super().__init__()
        c, h, w = _image_shape(shape)
        _check_sizes(latent_dim=latent_dim, features=features, embed_dim=embed_dim)
        _check_options(num_classes)
        self.latent_dim, self.shape, self.num_classes = latent_dim, (c, h, w), num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        sizes = dcgan_sizes(h, w)
        k = len(sizes) - 1
        chans = [features * min(2**i, 8) for i in reversed(range(k))]  # base first: 8f, 4f, 2f, f at 64x64
        in_features = latent_dim + (embed_dim if num_classes > 0 else 0)
        # A ConvTranspose2d of a 1x1 input with the base's kernel: a linear layer to the base map,
        # written as the PyTorch example writes it. No biases before batch norms (they cancel).
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_features, chans[0], sizes[-1], bias=False)]
        for a, b in zip(chans, chans[1:], strict=False):
            layers += [nn.BatchNorm2d(a), nn.ReLU(inplace=True), nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False)]
        layers += [nn.BatchNorm2d(chans[-1]), nn.ReLU(inplace=True), nn.ConvTranspose2d(chans[-1], c, 4, 2, 1)]
        self.net = nn.Sequential(*layers, nn.Tanh())

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        h = _latent_input(z, self.latent_dim, self.embed, self.num_classes, cond)  # (B, Z + E)
        x = self.net(h[:, :, None, None])  # (B, C, base_h 2^k, base_w 2^k)
        _, height, width = self.shape
        top, left = (x.shape[2] - height) // 2, (x.shape[3] - width) // 2
        return x[:, :, top : top + height, left : left + width]  # (B, C, H, W)


class DCGANDiscriminator(nn.Module):
    """Images (B, C, H, W), labels (B,) or None -> scores (B,): DCGAN's discriminator for
    images of ``shape`` (see the module docstring), with the :class:`ProjectionHead` on the
    flattened smallest map phi(x).

    ``norm``: "batch" (the paper's), "layer" (GroupNorm(1, C): normalises each example on its
    own, which the per-example gradient penalty of WGAN-GP needs; Gulrajani et al. 2017) or
    "none". ``dropout`` > 0 puts Dropout2d after each activation: it drops whole feature maps,
    since neighbouring pixels of a map are so correlated that dropping single ones barely
    regularises (Tompson et al. 2015). ``spectral_norm`` normalises every convolution, the
    linear layer and the label embedding (Miyato et al. 2018).
    """

    def __init__(
        self,
        shape: Sequence[int],
        features: int = 64,
        num_classes: int = 0,
        dropout: float = 0.0,
        spectral_norm: bool = False,
        norm: str = "batch",
    ):
        super().__init__()
        c, h, w = _image_shape(shape)
        _check_sizes(features=features)
        _check_options(num_classes, dropout, norm)
        self.shape, self.num_classes = (c, h, w), num_classes
        k = len(dcgan_sizes(h, w)) - 1
        chans = [features * min(2**i, 8) for i in range(k)]
        blocks = []
        for i, (a, b) in enumerate(zip([c, *chans], chans, strict=False)):
            normed = i > 0 and norm != "none"
            block = [_sn(nn.Conv2d(a, b, 4, 2, 1, bias=not normed), spectral_norm)]
            if normed:
                block.append(nn.BatchNorm2d(b) if norm == "batch" else nn.GroupNorm(1, b))
            blocks.append(nn.Sequential(*block, *_activation(dropout, nn.Dropout2d)))
            h, w = h // 2, w // 2  # kernel 4, stride 2, padding 1: floor(size / 2)
        self.body = nn.Sequential(*blocks)  # one block per layer: the same weight names at any dropout
        self.head = ProjectionHead(chans[-1] * h * w, num_classes, spectral_norm)

    def features(self, x: Tensor) -> Tensor:
        """phi(x): (B, C, H, W) -> (B, C_k h w), the flattened smallest map."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.shape:
            raise DataError(
                f"the discriminator takes images (B, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}"
            )
        return self.body(x).flatten(1)  # (B, C_k, h, w) -> (B, C_k h w)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.head(self.features(x), cond)  # (B,)


# ----- helpers ----------------------------------------------------------------------------------


def _activation(dropout: float, dropout_class: type[nn.Module]) -> list[nn.Module]:
    """LeakyReLU(0.2), then dropout when it is > 0 (last in its block, so the weights' names do
    not depend on it)."""
    return [nn.LeakyReLU(0.2, inplace=True), *([dropout_class(dropout)] if dropout > 0 else [])]


def _sn(layer: nn.Module, on: bool) -> nn.Module:
    """``layer`` with its weight spectrally normalised when ``on`` (one power iteration per
    training-mode forward pass)."""
    return _spectral_norm(layer) if on else layer


def _raw_weight(m: nn.Module) -> Tensor:
    """The weight a module learns: the original of a parametrised (spectrally normalised) one."""
    return m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight


@torch.no_grad()
def _restart_power_iteration(m: nn.Module, iterations: int = 15) -> None:
    """Converge a spectral norm's power iteration on a new weight: each read of the weight in
    training mode runs one iteration (15 as at registration)."""
    plist = m.parametrizations.weight
    training = plist.training
    plist.train()
    for _ in range(iterations):
        _ = m.weight
    plist.train(training)


def _embed(embed: nn.Module | None, num_classes: int, cond: Tensor | None, batch: int, who: str) -> Tensor | None:
    """Label embeddings (B, E) of ``cond`` (B,), None for an unconditional network."""
    if embed is None:
        if cond is not None:
            raise DataError(f"this {who} was built without labels (num_classes=0); pass cond=None")
        return None
    if cond is None:
        raise DataError(f"this {who} is class-conditional ({num_classes} classes): pass cond, labels (B,)")
    if cond.dtype.is_floating_point or cond.dtype.is_complex or tuple(cond.shape) != (batch,):
        raise DataError(f"cond must be integer class labels of shape ({batch},), got {cond.dtype} {tuple(cond.shape)}")
    if batch and (int(cond.min()) < 0 or int(cond.max()) >= num_classes):
        raise DataError(f"labels must be in 0..{num_classes - 1}, got {int(cond.min())}..{int(cond.max())}")
    return embed(cond.long())


def _latent_input(z: Tensor, latent_dim: int, embed: nn.Module | None, num_classes: int, cond: Tensor | None) -> Tensor:
    """z (B, Z), with the label embedding concatenated when conditional: (B, Z + E)."""
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise DataError(f"the generator takes z of shape (B, {latent_dim}), got {tuple(z.shape)}")
    e = _embed(embed, num_classes, cond, z.shape[0], "generator")
    return z if e is None else torch.cat([z, e.to(z.dtype)], dim=1)


def _image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"DCGAN networks take images of shape (C, H, W), got {tuple(shape)}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")


def _check_options(num_classes: int, dropout: float = 0.0, norm: str = "none") -> None:
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0 (0: unconditional), got {num_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")


__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "NORMS",
    "ProjectionHead",
    "dcgan_init",
    "dcgan_sizes",
    "default_features",
]
