"""Subnormal numbers in an optimizer's slots, set to zero every few steps.

A moment estimate decays geometrically where its gradient is zero: Adam's
``m ← β₁ m + (1 − β₁) ∇θ`` multiplies m by β₁ = 0.9 at every step in which ∇θ = 0 (the
weights of a pixel that is black in almost every image), so after ~750 such steps m falls
below the dtype's smallest normal number (``np.finfo(float32).tiny`` ≈ 1.2e−38) and spends
the next ~150 steps as a *subnormal* before it reaches 0. x86 CPUs compute every
operation on a subnormal operand through a microcode assist, tens of times slower, and NumPy
leaves the processor's flush-to-zero mode off. Measured on W1 (784 → 128 → 128 → 10, Adam,
batch 32, Fashion-MNIST in [0, 1]) on an Intel Xeon: after the first epoch 6 % of the
momentum values were subnormal and one Adam step over the 118,282 parameters took 863 µs
instead of 235 µs — the whole training step 1.10 → 1.52 ms (benchmarks/README.md).

:func:`flush` replaces every subnormal value of an array by 0 (in place; NaN and ±inf
stay). The optimizers call it on their slots every :data:`EVERY` steps. It changes no
parameter: a subnormal momentum m contributes ``αₜ m / (√v + ε̂)`` with
``|m| < 1.2e−38`` and ``ε̂ ≥ 3e−9`` (Adam's defaults at t = 1), less than 1e−32 — far below
the spacing of float32 numbers around any weight larger than ~1e−25; a subnormal cache v
adds at most √(1.2e−38) ≈ 1.1e−19 to a denominator of at least ε̂, a relative change of
4e−11, below float32's resolution (6e−8). (A test trains with and without the flush and
compares the parameters bit for bit.)
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

#: how many optimizer steps apart the slots are flushed: a value that becomes subnormal
#: stays one for ≤ 16 steps instead of ~150 (at β = 0.9), for one ~60 µs pass per slot
#: array (W1) every 16 steps
EVERY = 16


def flush(array: Array, scratch: Array) -> None:
    """Set the subnormal values of a float ``array`` to 0, in place; ``scratch`` is a work
    array of the same shape and dtype. ``x · 1(|x| ≥ tiny)``: NaN and ±inf are kept."""
    if array.dtype.kind != "f":
        return
    magnitude = np.abs(array, out=scratch)
    np.multiply(array, magnitude >= np.finfo(array.dtype).tiny, out=array)
