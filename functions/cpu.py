"""Which int8 kernels onnxruntime can use on this CPU, and whether that matches the training CPU.

onnxruntime's u8 x s8 matrix kernels differ by instruction set, and so do their results:

* ``avx2`` (x86 without VNNI): ``VPMADDUBSW`` adds two u8 x s8 products into an int16 that
  saturates, so large activations times large weights are clipped (onnxruntime's quantization
  docs suggest ``reduce_range`` for this case);
* ``avx512_vnni`` / ``avx_vnni`` (``VPDPBUSD``) and ``asimddot`` (arm64 ``SDOT``/``UDOT``, every
  Graviton since 2) accumulate in int32: no saturation.

So the int8 guard's agreement, measured on the training machine, holds where the kernel family
is the same; on another family the labels can differ. The export side records the training
CPU's family in the manifest (``Manifest.int8_kernels``); the function compares it with its own
at cold start and logs a warning when they differ. Pure: reads /proc/cpuinfo, nothing else.
"""

from __future__ import annotations

import platform
from pathlib import Path

# Most capable first: the first family whose flag the CPU has is the one onnxruntime uses.
INT8_KERNEL_FAMILIES = ("avx512_vnni", "avx_vnni", "asimddot", "avx2")
UNKNOWN_FAMILY = "unknown"
# Families whose u8 x s8 products can saturate an int16 intermediate.
SATURATING_FAMILIES = frozenset({"avx2"})
_CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: x86 ``flags`` or arm64 ``Features`` of /proc/cpuinfo."""
    if cpuinfo is None:
        try:
            cpuinfo = _CPUINFO.read_text()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def int8_kernel_family(flags: frozenset[str] | None = None) -> str:
    """``avx512_vnni`` | ``avx_vnni`` | ``asimddot`` | ``avx2`` | ``unknown`` for this CPU (or ``flags``)."""
    flags = cpu_flags() if flags is None else flags
    for family in INT8_KERNEL_FAMILIES:
        if family in flags:
            return family
    return UNKNOWN_FAMILY


def int8_family_warning(trained_on: str, here: str, *, machine: str | None = None) -> str | None:
    """The cold-start warning when this CPU's int8 kernels differ from the guard's; else None.

    ``trained_on`` empty: a manifest from before the family was recorded; nothing to compare.
    """
    if not trained_on or trained_on == here:
        return None
    machine = machine or platform.machine()
    saturation = ""
    if here in SATURATING_FAMILIES and trained_on not in SATURATING_FAMILIES:
        saturation = " Here the u8 x s8 products can saturate (VPMADDUBSW), there they could not."
    elif trained_on in SATURATING_FAMILIES and here not in SATURATING_FAMILIES:
        saturation = " The guard ran on kernels that can saturate; these cannot."
    return (
        f"int8 model: its guard ran on a CPU with {trained_on} int8 kernels, this one ({machine}) uses "
        f"{here}; int8 results can differ between the two.{saturation} Compare labels on a sample "
        "(camsort bench reports the guard with and without reduce_range), or ship the fp32 model."
    )
