"""Which number format inference runs in: ``fp32`` or ``bf16`` (bfloat16 autocast), or ``auto``.

``auto`` picks bf16 only where it is fast: on a CPU with bfloat16 matrix units (Intel AMX tiles or
AVX-512 BF16). Elsewhere, CPUs emulate bf16 matrix products far slower than fp32 (an AVX2 CPU runs a
bf16 matrix multiply hundreds of times slower), so ``auto`` stays fp32 there. On a GPU ``auto`` is
fp32 too (bf16 there is a choice, ``bf16``, as ``test.bf16`` has always been).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import torch

#: The values of a precision setting (``detector.precision``, ``annotate.precision``).
PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX tiles or AVX-512 BF16)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None and bool(fn()):
            return True
    return False


def use_bf16(precision: str, device: Union[str, "torch.device"]) -> bool:
    """Whether a model on ``device`` runs under bf16 autocast for the setting ``precision``.

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS` (the config checks it first).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    import torch

    return torch.device(device).type == "cpu" and cpu_has_bf16_units()
