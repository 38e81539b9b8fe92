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

_FLOAT = struct.Struct("<f")
_BITS = struct.Struct("<I")
_FLOAT32_MAX: float = _FLOAT.unpack(_BITS.pack(0x7F7FFFFF))[0]
_BEYOND = 2.0**128  # where float32 rounding goes to infinity, counted as one more float32


def _bits(value: float) -> int:
    bits: int = _BITS.unpack(_FLOAT.pack(value))[0]
    return bits


def _from_bits(bits: int) -> float:
    value: float = _FLOAT.unpack(_BITS.pack(bits))[0]
    return value


def _next_float32(value: float) -> float:
    """The float32 after `value` (a finite float32), or 2**128 after the largest."""
    if value == _FLOAT32_MAX:
        return _BEYOND
    if value == 0.0:
        return _from_bits(1)
    bits = _bits(value)
    return _from_bits(bits + 1 if value > 0 else bits - 1)


def _largest_float32_not_above(t: float) -> float:
    """m: the largest float32 <= t, or -2**128 below the float32 range."""
    if t >= _FLOAT32_MAX:
        return _FLOAT32_MAX
    if t < -_FLOAT32_MAX:
        return -_BEYOND
    nearest: float = _FLOAT.unpack(_FLOAT.pack(t))[0]
    if nearest <= t:
        return nearest
    # Rounded up: the float32 just below it is the one we want.
    if nearest == 0.0:
        return -_from_bits(1)
    bits = _bits(nearest)
    return _from_bits(bits - 1 if nearest > 0 else bits + 1)


def _is_even(value: float) -> bool:
    if abs(value) == _BEYOND:
        return True
    return _bits(value) % 2 == 0


def float32_boundary(threshold: float) -> float:
    """t' such that, for every float64 x that is not NaN, `x <= t'` iff `float32(x) <= t`."""
    low = _largest_float32_not_above(threshold)
    high = _next_float32(low) if low != -_BEYOND else -_FLOAT32_MAX
    midpoint = (low + high) / 2
    return midpoint if _is_even(low) else math.nextafter(midpoint, -math.inf)


def float32_floor(threshold: float) -> float:
    """The largest float32 <= threshold (-inf below the float32 range): for float32 inputs,
    `x <= threshold` iff `x <= float32_floor(threshold)`."""
    low = _largest_float32_not_above(threshold)
    return -math.inf if low == -_BEYOND else low
