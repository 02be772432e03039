"""A plain multilayer perceptron, the vector network of every family.

>>> net = MLP(4, (32, 32), 3)
>>> net(torch.randn(5, 4)).shape
torch.Size([5, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    """Linear layers of sizes ``in_features -> *hidden -> out_features`` with ``activation``
    (a module class, SiLU by default) between them and none after the last.

    Shapes: (B, in_features) -> (B, out_features).
    """

    def __init__(
        self, in_features: int, hidden: Sequence[int], out_features: int, activation: type[nn.Module] = nn.SiLU
    ):
        sizes = [in_features, *hidden, out_features]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), activation()]
        super().__init__(*layers[:-1])
        self.in_features, self.out_features = in_features, out_features
