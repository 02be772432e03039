"""What every autoregressive model gives: sampling with a temperature, cached or naive,
the log-probability accumulated while sampling, and completion of partly known examples.

An autoregressive model factorises p(x) = prod_d p(x_d | x_<d) in an ordering of the
elements (pixels in raster order, characters, audio samples). A subclass implements one
method, :meth:`AutoregressiveModel.generate`, which draws the elements one at a time and keeps
the given ones; :meth:`sample`, :meth:`sample_and_log_prob` and :meth:`complete` are built on it.

- ``temperature`` T divides the logits of every conditional (and multiplies a logistic's
  scale): T < 1 gives more typical samples, T = 0 the most likely value at each step, T = 1
  the model itself.
- ``cached=True`` (the default) reuses the work of earlier steps (key/value caches, cached
  activations, updated pre-activations); ``cached=False`` recomputes the whole network at every
  step. With the same generator both draw the same examples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm.errors import DataError
from dgm.models.base import GenerativeModel, check_temperature


class AutoregressiveModel(GenerativeModel):
    """Base class of the autoregressive family (see the module docstring)."""

    family = "autoregressive"
    density = "exact"
    has_temperature = True

    def generate(
        self,
        n: int,
        cond: Tensor | None,
        generator: torch.Generator | None,
        temperature: float,
        cached: bool,
        given: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` examples one element at a time in the model's ordering.

        ``cond`` is checked labels (or None); ``given`` (n, D) flat values and ``keep`` (n, D)
        booleans: where ``keep`` is True the element is set to ``given`` instead of being drawn
        (later elements are then drawn conditioned on it). Returns the flat examples (n, D) and
        the log-probability log p(x) (n,) at T = 1 of what was returned, accumulated while
        sampling.
        """
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        cached: bool = True,
    ) -> Tensor:
        """``n`` examples (n, *data.shape) drawn one element at a time (see the module docstring)."""
        return self.sample_and_log_prob(n, cond, generator, temperature, cached)[0]

    @torch.no_grad()
    def sample_and_log_prob(
        self,
        n: int,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        cached: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """:meth:`sample` and the log-probability of each sample (n,) under the model (T = 1),
        accumulated while sampling: equal to ``log_prob`` of the samples."""
        cond = self.check_cond(cond, n)
        x, log_p = self.generate(n, cond, generator, check_temperature(temperature), cached)
        return x.view(n, *self.config.data.shape), log_p

    @torch.no_grad()
    def complete(
        self,
        x: Tensor,
        keep: Tensor,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        cached: bool = True,
    ) -> Tensor:
        """Examples (B, *data.shape) equal to ``x`` where ``keep`` is True, the rest drawn.

        ``keep`` is a boolean tensor of shape ``data.shape`` (the same for every example) or
        (B, *data.shape). When the kept elements come first in the model's ordering (the top
        rows of an image in raster order, the start of a text) the completions are draws from
        p(rest | kept); otherwise each element is drawn given the elements before it.
        """
        flat = self.flat_x(x)
        n = flat.shape[0]
        keep = torch.as_tensor(keep, dtype=torch.bool, device=flat.device)
        shape = tuple(self.config.data.shape)
        if tuple(keep.shape) == shape:
            keep = keep.expand(n, *shape)
        if tuple(keep.shape) != (n, *shape):
            raise DataError(f"keep must have shape {shape} or {(n, *shape)}, got {tuple(keep.shape)}")
        cond = self.check_cond(cond, n)
        out, _ = self.generate(
            n, cond, generator, check_temperature(temperature), cached, given=flat, keep=keep.reshape(n, -1)
        )
        return out.view(n, *shape)


def keep_given(drawn: Tensor, d: int | Tensor, given: Tensor | None, keep: Tensor | None) -> Tensor:
    """The value of element ``d`` for each example: ``given[:, d]`` where ``keep[:, d]``, else ``drawn``.

    ``drawn`` is (n,) or (n, C) for the C channels of a pixel (``d`` then indexes C elements).
    """
    if given is None or keep is None:
        return drawn
    return torch.where(keep[:, d], given[:, d].to(drawn.dtype), drawn)
