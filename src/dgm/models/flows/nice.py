"""NICE (Dinh, Krueger & Bengio 2015, "NICE: Non-linear Independent Components Estimation").

Additive coupling layers on alternating halves of the (flattened) data, then a diagonal
scaling layer (section 3.3):

    h = b ⊙ x + (1 - b) ⊙ (x + m(b ⊙ x)),    log |det| = 0            (eq. 5, volume-preserving)
    z = (h - loc) ⊙ exp(-log_scale),          log |det| = -Σ_d log_scale_d

so only the last layer changes volume: log p(x) = log N(z; 0, I) - Σ_d log_scale_d. The
scaling layer is :class:`~dgm.nn.bijectors.ElementwiseAffine`; the paper's ``S_dd`` is
``exp(-log_scale_d)``, and dimensions with a large ``log_scale`` are the ones the model
finds least important. Images are flattened to vectors, as in the paper.

Defaults: 4 couplings whose MLPs have two hidden layers of 256 units (the paper uses 5 of
1 000 for MNIST), about 1.9 million parameters on 28x28 digits and 270 000 on 2-D data.

>>> import dgm
>>> model = dgm.build("nice", data=dgm.DataInfo((4,), "continuous"), hidden=(16,))
>>> model.sample(2).shape
torch.Size([2, 4])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from dgm.models.flows.base import FlowConfig, FlowModel, check_coupling_input, check_positive
from dgm.nn.bijectors import AdditiveCoupling, Bijector, Compose, ElementwiseAffine, MLPConditioner, vector_mask
from dgm.registry import register


@dataclass(frozen=True)
class NICEConfig(FlowConfig):
    """Configuration of :class:`NICE`."""

    layers: int = 4  # additive couplings (the paper's 4)
    hidden: tuple[int, ...] = (256, 256)  # hidden layers of each coupling's MLP


@register("nice")
class NICE(FlowModel):
    """NICE (Dinh et al. 2015): additive couplings and a diagonal scaling layer."""

    Config = NICEConfig

    @classmethod
    def check_config(cls, config: NICEConfig) -> None:
        super().check_config(config)
        check_positive(cls.name, config, "layers", "hidden")
        check_coupling_input(cls.name, config)

    def build_flow(self) -> Bijector:
        dim, config = self.event_shape[0], self.config
        net = partial(MLPConditioner, dim, hidden=config.hidden, num_classes=self.num_classes)
        couplings = [AdditiveCoupling(vector_mask(dim, i % 2), net) for i in range(config.layers)]
        return Compose([*couplings, ElementwiseAffine(dim)])
