"""Inference speed-ups that keep the outputs: batch-norm folding, channels-last 3D memory format, and
frame-wise 2D convolutions for the 3D convolutions that do not mix frames."""

from __future__ import annotations

import copy
import logging
from typing import TypeVar

import torch
from torch import nn

#: The model type: :func:`optimize_for_inference` returns a copy of the same class.
M = TypeVar("M", bound=nn.Module)

logger = logging.getLogger(__name__)


def fold_conv_bn(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> nn.Conv3d:
    """A convolution (with bias) equal to ``bn(conv(x))`` with ``bn`` in eval mode (running statistics).

    ``w' = w * gamma / sqrt(var + eps)`` per output channel, ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``.
    Computed in float64 so the folded model matches the original within float32 rounding.
    """
    fused = nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
                      padding_mode=conv.padding_mode).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        fused.weight.copy_(conv.weight.double() * scale.view(-1, 1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean.double()) * scale + bn.bias.double())
    return fused


def fold_batch_norm(model: nn.Module) -> int:
    """Fold every (conv, bn) pair declared by a module's ``conv_bn_pairs`` in place; the BN becomes
    ``nn.Identity``. Only valid for inference. Returns the number of folded pairs."""
    count = 0
    for module in model.modules():
        for conv_name, bn_name in getattr(module, "conv_bn_pairs", ()):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv3d) and isinstance(bn, nn.BatchNorm3d):
                setattr(module, conv_name, fold_conv_bn(conv, bn))
                setattr(module, bn_name, nn.Identity())
                count += 1
    return count


class FrameConv(nn.Module):
    """A 3D convolution whose kernel spans one frame (``kernel_size[0] == 1``, temporal stride 1, no
    temporal padding), run as a 2D convolution over all frames at once.

    ``[B, C, T, H, W] -> [B, O, T, H', W']``. In the channels-last 3D layout the frames of a clip are
    already a batch of channels-last images, so ``(B*T, C, H, W)`` is a view, not a copy, and so is the
    way back. oneDNN's 2D kernels are far better tuned than its 3D ones for thin layers: SlowFast's fast
    pathway (8 to 32 channels) runs its ``1x3x3`` convolutions 10-50x faster this way on an AVX2 CPU,
    and the wide layers of the slow pathway as fast as before. The sums are the same products in
    another order (float32 rounding, ~1e-6).
    """

    def __init__(self, conv: nn.Conv3d):
        super().__init__()
        if not is_frame_conv(conv):
            raise ValueError(f"not a frame-wise convolution: {conv}")
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size[1:], stride=conv.stride[1:],
                              padding=conv.padding[1:], dilation=conv.dilation[1:], groups=conv.groups,
                              bias=conv.bias is not None).to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight[:, :, 0])
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)
        self.conv.weight.data = self.conv.weight.data.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        y = self.conv(frames)
        return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


def is_frame_conv(conv: nn.Module) -> bool:
    """Whether ``conv`` is a :class:`torch.nn.Conv3d` that :class:`FrameConv` can replace."""
    return (isinstance(conv, nn.Conv3d) and conv.kernel_size[0] == 1 and conv.stride[0] == 1
            and conv.padding[0] == 0 and conv.dilation[0] == 1 and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str))


def use_frame_convs(model: nn.Module) -> int:
    """Replace every frame-wise :class:`torch.nn.Conv3d` of ``model`` by a :class:`FrameConv` in place;
    returns how many were replaced."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if is_frame_conv(child):
                setattr(parent, name, FrameConv(child))
                count += 1
    return count


def optimize_for_inference(model: M, *, channels_last: bool = True, frame_convs: bool = True) -> M:
    """A copy of ``model`` for inference only: eval mode, no gradients, batch norm folded into the
    convolutions, and weights/inputs in channels-last 3D layout (faster oneDNN / cuDNN kernels) with the
    frame-wise convolutions run as 2D convolutions (:class:`FrameConv`).

    ``model`` is any module whose ``forward`` reads the flags set on the copy: ``fused`` (batch norm
    folded: refuse training) and ``channels_last`` (convert the inputs), as
    :class:`~ava_detect.model.detector.ActionDetector` does (its :meth:`optimized_for_inference` calls
    this). This module does not import the detector, so the dependency runs one way.

    The original model is left unchanged. Probabilities match it within ~1e-5 in fp32. Combine with
    ``ActionDetector.predict`` (``bf16=True`` for bf16 autocast).
    """
    fast = copy.deepcopy(model).eval()
    folded = fold_batch_norm(fast)
    for p in fast.parameters():
        p.requires_grad_(False)
    fast.fused = True
    replaced = 0
    if channels_last:
        replaced = use_frame_convs(fast) if frame_convs else 0
        for m in fast.modules():
            if isinstance(m, nn.Conv3d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)
        fast.channels_last = True
    logger.debug("optimised detector for inference: %d conv+bn pairs folded, channels_last=%s, %d frame-wise "
                 "convolutions as 2D", folded, channels_last, replaced)
    return fast
