"""Float32 comparisons as float64 ones: the threshold t' with `x <= t'` exactly when
`float32(x) <= t`.

scikit-learn's trees, forests and GradientBoosting round their input to float32 and compare
it with a float64 threshold. Rounding is monotonic, so the inputs that go left are all those
up to some boundary: the midpoint between m, the largest float32 not above t, and the next
float32 after it. At the midpoint itself rounding goes to the float32 with an even last bit,
so the midpoint goes left when m is even and right when it is odd. The midpoint of two
adjacent float32 values is exact in float64, so no rounding of our own is involved.

Past the float32 range inputs round to infinity, which behaves as a float32 of 2**128 with an
even last bit; the same rule then holds there too.
"""

from __future__ import annotations

import math
import struct

__all__ = ["float32_boundary", "float32_floor"]

_PACK_FLOAT = struct.Struct("<f").pack
_UNPACK_FLOAT = struct.Struct("<f").unpack
_PACK_BITS = struct.Struct("<I").pack
_UNPACK_BITS = struct.Struct("<I").unpack
_FLOAT32_MAX_BITS = 0x7F7FFFFF
_FLOAT32_MAX: float = _UNPACK_FLOAT(_PACK_BITS(_FLOAT32_MAX_BITS))[0]
_SIGN = 0x80000000
_BEYOND = 2.0**128  # where float32 rounding goes to infinity, counted as one more float32


def _float(bits: int) -> float:
    value: float = _UNPACK_FLOAT(_PACK_BITS(bits))[0]
    return value


def _floor_bits(t: float) -> int:
    """The bits of the largest float32 <= t, for -FLOAT32_MAX <= t < FLOAT32_MAX."""
    packed = _PACK_FLOAT(t)  # rounds to the nearest float32, ties to even
    bits: int = _UNPACK_BITS(packed)[0]
    if _UNPACK_FLOAT(packed)[0] <= t:
        return bits
    # Rounded up: one float32 down. Below +0 (or -0) is the smallest negative one.
    if bits & ~_SIGN == 0:
        return _SIGN | 1
    return bits - 1 if bits < _SIGN else bits + 1


def _next_bits(bits: int) -> int:
    """The bits of the float32 after a finite, non-largest one."""
    if bits == _SIGN:  # -0.0: next is the smallest positive
        return 1
    return bits + 1 if bits < _SIGN else bits - 1


def float32_boundary(threshold: float) -> float:
    """t' such that, for every float64 x that is not NaN, `x <= t'` iff `float32(x) <= t`."""
    if threshold >= _FLOAT32_MAX:
        # m is the largest float32 (odd), and the next one is "2**128": infinity.
        return math.nextafter((_FLOAT32_MAX + _BEYOND) / 2, -math.inf)
    if threshold < -_FLOAT32_MAX:
        # m is -infinity, counted as -2**128 (even); the next float32 is the lowest finite.
        return (-_BEYOND - _FLOAT32_MAX) / 2
    low = _floor_bits(threshold)
    midpoint = (_float(low) + _float(_next_bits(low))) / 2
    return midpoint if low % 2 == 0 else math.nextafter(midpoint, -math.inf)


def float32_floor(threshold: float) -> float:
    """The largest float32 <= threshold (-inf below the float32 range): for float32 inputs,
    `x <= threshold` iff `x <= float32_floor(threshold)`."""
    if threshold >= _FLOAT32_MAX:
        return _FLOAT32_MAX
    if threshold < -_FLOAT32_MAX:
        return -math.inf
    return _float(_floor_bits(threshold))
