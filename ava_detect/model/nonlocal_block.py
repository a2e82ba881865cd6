"""Non-local blocks (Wang et al. 2018, "Non-local Neural Networks") as PySlowFast builds them.

A non-local block computes, at every position of a ``[B, C, T, H, W]`` map, a weighted sum of
features at all positions and adds it to its input (a residual block with global attention):

* ``theta = conv_theta(x)``, ``phi = conv_phi(pool(x))``, ``g = conv_g(pool(x))``: 1x1x1 convolutions
  (with biases) from ``dim`` to ``dim_inner`` channels; ``pool`` is an optional max pooling (kernel =
  stride = ``pool_size``) that shrinks the key/value positions;
* ``affinity[i, j] = theta_i . phi_j``, normalised per query ``i``: ``dot_product`` divides by the
  number of key positions, ``softmax`` takes the softmax of ``affinity / sqrt(dim_inner)``;
* ``y_i = sum_j affinity[i, j] g_j``; ``out = x + bn(conv_out(y))`` (``conv_out`` 1x1x1 with bias back to ``dim``).

``group > 1`` cuts the clip into ``group`` runs of consecutive frames that attend only within
themselves (PySlowFast's ``NONLOCAL.GROUP``). :class:`NonLocalLayout` says where blocks go in a
backbone: after which residual blocks of which stage and pathway (PySlowFast's ``NONLOCAL.LOCATION``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

#: Normalisations of the affinity matrix.
INSTANTIATIONS = ("dot_product", "softmax")

#: BatchNorm settings of the reference implementation (as the residual blocks).
_BN_EPS = 1e-5
_BN_MOMENTUM = 0.1


class NonLocalBlock(nn.Module):
    """``x [B, dim, T, H, W]`` -> ``x + bn(conv_out(attention(x)))``, same shape.

    Args:
        dim: channels of the input (and output).
        dim_inner: channels of theta, phi and g (PySlowFast: ``dim // 2``).
        pool_size: max-pool kernel and stride ``(t, h, w)`` on the phi and g branches; all ones = no pooling.
        instantiation: ``dot_product`` (affinity / number of key positions) or ``softmax``
            (softmax over key positions of affinity / sqrt(dim_inner)).
        group: the frames are cut into ``group`` equal runs that attend separately (T divisible by it).

    State-dict names: ``conv_theta``, ``conv_phi``, ``conv_g``, ``conv_out`` (weight, bias) and ``bn``,
    as PySlowFast's ``Nonlocal`` module.
    """

    #: (conv, bn) attribute pairs that :func:`ava_detect.model.optimize.fold_batch_norm` folds.
    conv_bn_pairs = (("conv_out", "bn"),)

    def __init__(self, dim: int, dim_inner: int, *, pool_size: Sequence[int] = (1, 1, 1),
                 instantiation: str = "softmax", group: int = 1):
        super().__init__()
        if instantiation not in INSTANTIATIONS:
            raise ValueError(f"instantiation must be one of {INSTANTIATIONS}, got {instantiation!r}")
        pool_size = tuple(int(p) for p in pool_size)
        if len(pool_size) != 3 or min(pool_size) < 1:
            raise ValueError(f"pool_size must be 3 positive sizes (t, h, w), got {list(pool_size)}")
        if group < 1:
            raise ValueError(f"group must be a positive integer, got {group}")
        self.dim_inner = dim_inner
        self.instantiation = instantiation
        self.group = group
        self.conv_theta = nn.Conv3d(dim, dim_inner, 1)
        self.conv_phi = nn.Conv3d(dim, dim_inner, 1)
        self.conv_g = nn.Conv3d(dim, dim_inner, 1)
        self.conv_out = nn.Conv3d(dim_inner, dim, 1)
        self.bn = nn.BatchNorm3d(dim, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.pool = nn.MaxPool3d(pool_size, stride=pool_size) if max(pool_size) > 1 else None

    def extra_repr(self) -> str:
        return f"instantiation={self.instantiation}, group={self.group}"

    def attend(self, x: Tensor) -> Tensor:
        """The attention output before ``conv_out``: ``[N, dim, T, H, W]`` -> ``[N, dim_inner, T, H, W]``."""
        n, _, t, h, w = x.shape
        theta = self.conv_theta(x).reshape(n, self.dim_inner, -1)  # [N, Ci, THW]
        kv = self.pool(x) if self.pool is not None else x
        phi = self.conv_phi(kv).reshape(n, self.dim_inner, -1)  # [N, Ci, P]
        g = self.conv_g(kv).reshape(n, self.dim_inner, -1)  # [N, Ci, P]
        affinity = torch.matmul(theta.transpose(1, 2), phi)  # [N, THW, P]
        if self.instantiation == "softmax":
            affinity = torch.softmax(affinity * self.dim_inner ** -0.5, dim=2)
        else:
            affinity = affinity / affinity.shape[2]
        y = torch.matmul(g, affinity.transpose(1, 2))  # [N, Ci, THW]
        return y.reshape(n, self.dim_inner, t, h, w)

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        if self.group > 1:
            if t % self.group:
                raise ValueError(f"non-local group {self.group} does not divide the {t} frames of its input")
            # [B, C, T, H, W] -> [B * group, C, T / group, H, W]: runs of consecutive frames become clips
            x = x.transpose(1, 2).reshape(b * self.group, t // self.group, c, h, w).transpose(1, 2)
        out = x + self.bn(self.conv_out(self.attend(x)))
        if self.group > 1:
            out = out.transpose(1, 2).reshape(b, t, c, h, w).transpose(1, 2)
        return out


@dataclass(frozen=True)
class NonLocalLayout:
    """Where non-local blocks go in a ResNet backbone and how they are built.

    Attributes:
        locations: per stage res2..res5, per pathway (slow first): indices of the residual blocks
            (0-based) after which a non-local block is inserted (PySlowFast's ``NONLOCAL.LOCATION``;
            its R101 AVA models: ``[[[], []], [[], []], [[6, 13, 20], []], [[], []]]``).
        groups: per stage, per pathway: temporal groups (``NONLOCAL.GROUP``); empty = 1 everywhere.
        pool_sizes: per stage, per pathway: ``(t, h, w)`` max pooling of phi and g (``NONLOCAL.POOL``);
            empty = no pooling.
        instantiation: ``dot_product`` or ``softmax`` (``NONLOCAL.INSTANTIATION``).

    Each block has ``dim_inner = dim // 2`` (``dim`` = the stage's output channels of that pathway).
    """

    locations: Tuple[Tuple[Tuple[int, ...], ...], ...]
    groups: Tuple[Tuple[int, ...], ...] = ()
    pool_sizes: Tuple[Tuple[Tuple[int, ...], ...], ...] = ()
    instantiation: str = "softmax"

    def check(self, num_pathways: int, blocks_per_stage: Sequence[int]) -> None:
        """Raise ``ValueError`` naming the field when the layout does not fit the backbone."""
        if self.instantiation not in INSTANTIATIONS:
            raise ValueError(f"non-local instantiation must be one of {INSTANTIATIONS}, got {self.instantiation!r}")
        for name, table in (("locations", self.locations), ("groups", self.groups), ("pool_sizes", self.pool_sizes)):
            if table and (len(table) != 4 or any(len(per_stage) != num_pathways for per_stage in table)):
                raise ValueError(f"non-local {name} needs 4 stages (res2..res5) x {num_pathways} pathway(s), "
                                 f"got {_plain(table)}")
        for s, per_stage in enumerate(self.locations):
            for p, after in enumerate(per_stage):
                bad = [i for i in after if not 0 <= i < blocks_per_stage[s]]
                if bad:
                    raise ValueError(f"non-local location {bad} of res{s + 2} pathway {p}: that stage has blocks "
                                     f"0..{blocks_per_stage[s] - 1}")
        for per_stage in self.pool_sizes:
            for size in per_stage:
                if len(size) != 3 or min(size) < 1:
                    raise ValueError(f"non-local pool sizes are 3 positive sizes (t, h, w), got {list(size)}")
        if any(g < 1 for per_stage in self.groups for g in per_stage):
            raise ValueError(f"non-local groups must be positive, got {_plain(self.groups)}")

    def after(self, stage: int, pathway: int) -> Tuple[int, ...]:
        """Block indices of ``stage`` (0 = res2) and ``pathway`` followed by a non-local block."""
        return tuple(self.locations[stage][pathway]) if self.locations else ()

    def build(self, stage: int, pathway: int, dim: int) -> NonLocalBlock:
        """The non-local block of ``stage`` / ``pathway`` for ``dim`` input channels."""
        group = self.groups[stage][pathway] if self.groups else 1
        pool = tuple(self.pool_sizes[stage][pathway]) if self.pool_sizes else (1, 1, 1)
        return NonLocalBlock(dim, dim // 2, pool_size=pool, instantiation=self.instantiation, group=group)

    def describe(self) -> str:
        """E.g. ``after res4 blocks 6, 13, 20 of the slow pathway``."""
        parts = []
        for s, per_stage in enumerate(self.locations):
            for p, after in enumerate(per_stage):
                if after:
                    parts.append(f"res{s + 2} block(s) {', '.join(map(str, after))} of pathway {p}")
        return "after " + "; ".join(parts) if parts else "none"


def _plain(table) -> list:
    return [_plain(t) for t in table] if isinstance(table, (list, tuple)) else table
