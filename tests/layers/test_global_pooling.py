"""Global average and max pooling, with and without a padding mask, and Masking."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers as L
from lamina.errors import InputError, ShapeError

RNG = np.random.default_rng(0)


def lengths_mask(lengths: list[int], steps: int) -> np.ndarray:
    return np.arange(steps) < np.array(lengths)[:, None]


def test_global_pooling_without_a_mask() -> None:
    x = RNG.standard_normal((3, 5, 4))
    np.testing.assert_allclose(L.GlobalAveragePooling1D().forward(x), x.mean(axis=1), atol=1e-15)
    np.testing.assert_array_equal(L.GlobalMaxPooling1D().forward(x), x.max(axis=1))
    images = RNG.standard_normal((2, 3, 4, 5))
    average, maximum = L.GlobalAveragePooling2D(), L.GlobalMaxPooling2D()
    np.testing.assert_allclose(average.forward(images), images.mean(axis=(1, 2)), atol=1e-15)
    np.testing.assert_array_equal(maximum.forward(images), images.max(axis=(1, 2)))
    assert average.output_shape((3, 4, 5)) == (5,)
    assert L.GlobalMaxPooling1D().output_shape((None, 4)) == (4,)


def test_masked_pooling_equals_pooling_each_sequence_without_its_padding() -> None:
    lengths = [5, 2, 3, 1]
    x = RNG.standard_normal((4, 5, 3))
    x[1, 2:] = 100.0  # padded steps: larger than any real value, and ignored
    mask = lengths_mask(lengths, 5)
    average, maximum = L.GlobalAveragePooling1D(), L.GlobalMaxPooling1D()
    out_average = average.forward(x, training=True, mask=mask)
    out_maximum = maximum.forward(x, training=True, mask=mask)
    for n, length in enumerate(lengths):
        np.testing.assert_allclose(out_average[n], x[n, :length].mean(axis=0), atol=1e-14)
        np.testing.assert_array_equal(out_maximum[n], x[n, :length].max(axis=0))
    delta = RNG.standard_normal((4, 3))
    for layer in (average, maximum):
        dx = layer.backward(delta)
        assert dx.shape == x.shape
        assert not dx[~mask].any()  # padded steps get no gradient
    np.testing.assert_allclose(average.backward(delta)[1, :2], np.tile(delta[1] / 2, (2, 1)))


def test_a_sequence_without_real_steps_gives_zero() -> None:
    x = RNG.standard_normal((2, 3, 2))
    mask = lengths_mask([3, 0], 3)
    for layer in (L.GlobalAveragePooling1D(), L.GlobalMaxPooling1D()):
        out = layer.forward(x, training=True, mask=mask)
        np.testing.assert_array_equal(out[1], 0)
        assert not layer.backward(np.ones_like(out))[1].any()


def test_float32_stays_float32_with_a_mask() -> None:
    x = RNG.standard_normal((2, 4, 3)).astype(np.float32)
    mask = lengths_mask([4, 2], 4)
    for layer in (L.GlobalAveragePooling1D(), L.GlobalMaxPooling1D()):
        out = layer.forward(x, training=True, mask=mask)
        assert out.dtype == np.float32
        assert layer.backward(np.ones_like(out)).dtype == np.float32


def test_the_time_axis_is_gone_so_is_the_mask() -> None:
    mask = lengths_mask([2, 1], 3)
    assert L.GlobalAveragePooling1D().compute_mask(np.zeros((2, 3, 1)), mask) is None
    assert L.GlobalMaxPooling1D().compute_mask(np.zeros((2, 3, 1)), mask) is None
    with pytest.raises(ShapeError, match="does not accept a padding mask"):
        L.GlobalAveragePooling2D().compute_mask(np.zeros((2, 3, 1, 1)), mask)


def test_bad_masks_and_inputs_are_clear_errors() -> None:
    x = np.zeros((2, 4, 3))
    layer = L.GlobalAveragePooling1D(name="pool")
    with pytest.raises(ShapeError, match=r"'pool'.*mask of shape \(2, 5\).*\(2, 4\)"):
        layer.forward(x, mask=np.ones((2, 5), dtype=bool))
    with pytest.raises(InputError, match="boolean"):
        layer.forward(x, mask=np.full((2, 4), 0.5))
    np.testing.assert_array_equal(layer.forward(x, mask=np.ones((2, 4), dtype=int)), 0)
    with pytest.raises(ShapeError, match="Conv1D"):
        layer.forward(np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="NHWC"):
        L.GlobalMaxPooling2D().forward(x)


def test_masking_zeroes_and_masks_the_padded_steps() -> None:
    x = RNG.standard_normal((2, 4, 3))
    x[0, 3:] = -1.0
    x[1, 1:] = -1.0
    x[1, 0, 0] = -1.0  # one feature at the mask value: the step is still real
    layer = L.Masking(mask_value=-1.0)
    mask = layer.compute_mask(x, None)
    np.testing.assert_array_equal(mask, lengths_mask([3, 1], 4))
    out = layer.forward(x, training=True)
    np.testing.assert_array_equal(out[mask], x[mask])
    assert not out[~mask].any()
    dx = layer.backward(np.ones_like(out))
    np.testing.assert_array_equal(dx, np.broadcast_to(mask[..., None], x.shape))
    pooled = L.GlobalAveragePooling1D().forward(out, mask=mask)
    np.testing.assert_allclose(pooled[1], x[1, 0], atol=1e-15)
    with pytest.raises(ShapeError, match=r"X\[\.\.\., None\]"):
        layer.forward(np.zeros((2, 4)))
