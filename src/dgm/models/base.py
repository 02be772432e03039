"""The model contract every dgm model follows.

A model is a :class:`GenerativeModel` built from a frozen config dataclass (a subclass of
:class:`ModelConfig`) and registered by name with :func:`dgm.registry.register`. It declares
its capabilities as class attributes, which evaluation code reads instead of probing with
``hasattr``:

- ``density``: ``"exact"`` (``log_prob(x, cond)``), ``"bound"`` (``elbo(x, cond)``, a lower
  bound on log p(x)) or ``"none"``.
- ``importance_weighted``: a bound model that also gives the importance-weighted bound
  ``log_prob(x, cond, k=...)`` with k samples (Burda et al. 2016), e.g. a VAE.
- ``has_latent``: the model has a latent space: ``decode(z)`` and ``prior_sample(n, generator)``.
- ``has_encoder``: it also has ``encode(x)`` (an autoencoder has one, a GAN's generator does not).
- ``can_condition``: the model accepts class labels ``cond`` when its config sets
  ``conditional=True``.
- ``supports``: the data supports (binary / discrete / continuous) the model can take.
- ``has_temperature``: ``sample(n, cond, generator, temperature=T)`` scales the model's noise
  by T (T < 1: fewer, more typical samples; a flow's base draws, say).
- ``sample_options``: the keyword options of ``sample`` beyond ``temperature`` (a diffusion
  model's ``sampler``, ``steps``, ``eta`` and ``guidance``), which ``dgm sample`` and ``dgm eval``
  pass on; none by default.
- ``parts``: the ordered parameter groups trained with their own optimizers, one step each
  per batch (a GAN declares ``("discriminator", "generator")``); most models have one part.

Every model gives ``loss(batch) -> {"loss": ..., ...}`` and ``sample(n, cond, generator)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import Tensor, nn

from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError

Density = Literal["exact", "bound", "none"]
# words in the names of config fields that set a model's size, for GenerativeModel.shrink_hints
SIZE_WORDS = ("hidden", "width", "channels", "features", "units", "dim", "layers", "depth", "blocks")


def check_temperature(temperature: float) -> float:
    """``temperature`` as a float if it is a finite number >= 0 (for ``sample`` of models with
    ``has_temperature``); a ConfigError otherwise."""
    if not 0 <= temperature < float("inf"):
        raise ConfigError(f"temperature must be a number >= 0 (1 samples the model), got {temperature}")
    return float(temperature)


class Batch(NamedTuple):
    """A training batch: data ``x`` of shape (B, *data.shape) and labels ``cond`` (B,) or None."""

    x: Tensor
    cond: Tensor | None = None


def as_batch(batch) -> Batch:
    """Accept a :class:`Batch`, an ``(x, cond)`` pair or a bare tensor ``x``."""
    if isinstance(batch, Batch):
        return batch
    if isinstance(batch, Tensor):
        return Batch(batch, None)
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return Batch(batch[0], batch[1])
    raise TypeError(f"a batch is a tensor x or a pair (x, cond), got {type(batch).__name__}")


@dataclass(frozen=True)
class ModelConfig:
    """Fields every model config has. Subclasses add their own, all with defaults.

    - ``data``: the :class:`DataInfo` the model is built for (filled in by ``dgm.build``).
    - ``conditional``: condition on class labels (only for models with ``can_condition``).
    """

    data: DataInfo
    conditional: bool = False


class GenerativeModel(nn.Module):
    """Base class of every dgm model; see the module docstring for the contract."""

    name: ClassVar[str] = ""  # set by @register
    family: ClassVar[str] = ""
    density: ClassVar[Density] = "none"
    importance_weighted: ClassVar[bool] = False
    has_latent: ClassVar[bool] = False
    has_encoder: ClassVar[bool] = False
    can_condition: ClassVar[bool] = False
    has_temperature: ClassVar[bool] = False
    supports: ClassVar[frozenset[str]] = frozenset({"binary", "discrete", "continuous"})
    sample_options: ClassVar[tuple[str, ...]] = ()
    parts: ClassVar[tuple[str, ...]] = ("model",)
    # training settings (TrainConfig fields) this model needs unless the user gives them, e.g.
    # NADE's higher learning rate; ``dgm train`` applies them and says so
    train_defaults: ClassVar[dict[str, Any]] = {}
    Config: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.check_config(config)
        self.config = config

    # ----- declarations -------------------------------------------------------------------
    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        """Name, family and declared capabilities, as shown by ``dgm list``."""
        return {
            "name": cls.name,
            "family": cls.family,
            "density": cls.density,
            "latent": cls.has_latent,
            "conditional": cls.can_condition,
            "data": sorted(cls.supports),
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
        }

    @classmethod
    def check_config(cls, config: ModelConfig) -> None:
        """Refuse data or options the model cannot take, naming the fix."""
        if not isinstance(config, cls.Config):
            raise ConfigError(f"{cls.__name__} expects a {cls.Config.__name__}, got {type(config).__name__}")
        info = config.data
        if info.support not in cls.supports:
            raise DataError(
                f"model '{cls.name}' takes {' or '.join(sorted(cls.supports))} data, got "
                f"{info.describe()}; {cls.data_fix(info)}"
            )
        if config.conditional:
            if not cls.can_condition:
                raise ConfigError(f"model '{cls.name}' has no conditional version; drop conditional=true")
            if info.num_classes < 1:
                raise DataError(
                    f"model '{cls.name}' with conditional=true needs labelled data; this data has no labels"
                )

    @classmethod
    def data_fix(cls, info: DataInfo) -> str:
        """The transform that makes data of ``info`` acceptable to this model, or else the
        registered models that take it as it is."""
        if "binary" in cls.supports and info.support == "discrete":
            return "binarize it with --transform binarize"
        if "continuous" in cls.supports and info.support in ("discrete", "binary"):
            return "make it continuous with --transform dequantize"
        from dgm.registry import list_models  # late: the registry imports every model

        names = [row["name"] for row in list_models() if info.support in row["data"]]
        if not names:
            return f"no model takes {info.support} data yet"
        return f"models that take {info.support} data: {', '.join(names)}"

    @classmethod
    def upgrade_config(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A config dict saved by an older dgm (a run's config.json) as this version reads it:
        fields added since, whose default would change what an old run means, are filled in.
        As saved by default."""
        return values

    @classmethod
    def shrink_hints(cls, config: ModelConfig) -> tuple[str, ...]:
        """Ways to make the model of ``config`` smaller, each a clause naming the option, for the
        error that refuses an oversized model (:func:`dgm.models.size.check_model_size`).

        By default: lower the config fields whose names say they are sizes (``hidden``,
        ``channels``, ``latent_dim``, ...); a model without any can only get smaller data.
        """
        sizes = [f.name for f in dataclasses.fields(config) if any(word in f.name for word in SIZE_WORDS)]
        if sizes:
            return (f"shrink it with {' or '.join(f'--set {name}=...' for name in sizes)}",)
        return ("give it data of fewer dimensions (smaller images: folder:PATH?size=N)",)

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    # ----- the contract -------------------------------------------------------------------
    def loss(self, batch, part: str | None = None) -> dict[str, Tensor]:
        """Training objective on ``batch``: a dict with key ``"loss"`` (mean over the batch) and
        other terms worth logging. Multi-part models (GANs) compute the loss of ``part``.

        By default, for models with an exact density: maximum likelihood, loss = -mean log p(x).
        """
        if self.density != "exact":
            raise NotImplementedError(f"model '{self.name}' must define its loss")
        x, cond = as_batch(batch)
        nll = -self.log_prob(x, cond).mean()
        return {"loss": nll, "nll": nll.detach()}

    def sample(self, n: int, cond: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples in data space, shape (n, *data.shape); same generator, same samples."""
        raise NotImplementedError

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) per example, shape (B,), for models with ``density == "exact"`` (in nats)."""
        raise NotImplementedError(f"model '{self.name}' has density '{self.density}', no exact log_prob")

    def bound_note(self) -> str:
        """How a bound model's ``elbo`` is computed, when that is worth stating beside the number
        (a diffusion model's timesteps, say); "" by default."""
        return ""

    def notes(self, transforms: Sequence[str] = ()) -> list[str]:
        """What a user should know before training this model on its data, which went through
        the ``transforms`` named (as given to ``--transform``); ``dgm train`` prints each as a
        ``note:`` line: a known slow path, say, or a missing transform. None by default."""
        return []

    def part_parameters(self, part: str) -> Iterator[nn.Parameter]:
        """Parameters trained by the optimizer of ``part``; one part owns them all by default."""
        if part not in self.parts:
            raise KeyError(part)
        return self.parameters()

    def part_lr(self, part: str, lr: float) -> float:
        """The learning rate of ``part``'s optimizer, given the run's ``lr``: ``lr`` by default (a
        GAN may give its discriminator another, the two time-scale update rule)."""
        return lr

    def part_share(self, part: str) -> float:
        """The fraction of training batches on which ``part`` takes a step: 1 by default (a
        WGAN-GP generator steps once every n critic steps: 1/n)."""
        return 1.0

    def trains_part(self, part: str) -> bool:
        """Whether ``part`` takes a step on this batch (asked after the earlier parts' steps);
        always by default. Must agree with :meth:`part_share` over a run."""
        return True

    # ----- helpers for subclasses ---------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the parameters (float32 unless the model was converted)."""
        for p in self.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.get_default_dtype()

    def flat_x(self, x: Tensor) -> Tensor:
        """``x`` of shape (B, *data.shape) as a (B, D) tensor of the model's dtype and device.

        Raises a DataError naming the expected shape when ``x`` has another shape.
        """
        shape = tuple(self.config.data.shape)
        if not isinstance(x, Tensor) or x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"model '{self.name}' expects x of shape (B, {', '.join(map(str, shape))}), got {got}")
        return x.reshape(x.shape[0], -1).to(device=self.device, dtype=self.dtype)  # (B, D)

    def check_cond(self, cond: Tensor | None, n: int) -> Tensor | None:
        """Validate labels for a conditional model (and refuse them for an unconditional one)."""
        if not self.conditional:
            if cond is not None:
                raise ConfigError(f"model '{self.name}' was trained without conditional=true; drop cond")
            return None
        if cond is None:
            raise ConfigError(f"conditional model '{self.name}' needs cond (class labels) of length {n}")
        cond = torch.as_tensor(cond, device=self.device).long().reshape(-1)
        if cond.numel() == 1 and n > 1:
            cond = cond.expand(n)
        if cond.numel() != n or cond.min() < 0 or cond.max() >= self.config.data.num_classes:
            raise ConfigError(
                f"cond must hold {n} labels in 0..{self.config.data.num_classes - 1}, got {cond.tolist()[:10]}"
            )
        return cond
