"""Winograd's F(2×2, 3×3) (lamina.layers._winograd) against the notes' formula and against
the im2col path it replaces: float64, ≤ 1e-10 relative, forward and backward, image order
and the fused pooling's blocks; and the scratch memory it reuses (lamina.layers._workspace)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina.layers import _winograd as winograd
from lamina.layers._workspace import MAX_KEPT_BYTES, Workspace
from lamina.layers.pooling import running_maximum

from .test_conv import reference_conv

L = lm.layers


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def reference_gradients(
    images: np.ndarray, kernels: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """∂L/∂K, ∂L/∂b and ∂L/∂I of a 3×3, stride-1 valid convolution from δ (N, H−2, W−2, F),
    by the notes' sums (one term per kernel offset, vectorised over pixels)."""
    _, height, width, _ = images.shape
    out_h, out_w = height - 2, width - 2
    dkernels = np.zeros_like(kernels)
    dimages = np.zeros_like(images)
    for m in range(3):
        for k in range(3):
            window = images[:, m : m + out_h, k : k + out_w]  # I(i + m, j + k, c)
            dkernels[m, k] = np.einsum("nijc,nijf->cf", window, delta)
            dimages[:, m : m + out_h, k : k + out_w] += delta @ kernels[m, k].T
    return dkernels, delta.sum(axis=(0, 1, 2)), dimages


def products_in_blocks_of(tiles: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every pass's products in blocks of ``tiles`` tiles (None: the machine's rule)."""
    if tiles is not None:
        monkeypatch.setattr(winograd, "product_tiles", lambda *_: tiles)


@pytest.mark.parametrize("block_tiles", [None, 4])  # the machine's blocks; ragged blocks
@pytest.mark.parametrize("chunk_tiles", [winograd.CHUNK_TILES, 1])  # one pass, one per image
@pytest.mark.parametrize(
    ("size", "channels", "filters"), [((6, 6), 16, 3), ((7, 8), 17, 2), ((3, 3), 16, 1)]
)
def test_tiles_compute_the_notes_convolution_and_its_gradients(
    size: tuple[int, int],
    channels: int,
    filters: int,
    chunk_tiles: int,
    block_tiles: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # even and odd output sizes (the last tiles half outside), down to one output pixel
    monkeypatch.setattr(winograd, "CHUNK_TILES", chunk_tiles)
    products_in_blocks_of(block_tiles, monkeypatch)
    rng = np.random.default_rng(21)
    images = rng.standard_normal((3, *size, channels))
    kernels = rng.standard_normal((3, 3, channels, filters))
    biases = rng.standard_normal(filters)
    out = (size[0] - 2, size[1] - 2)
    grid = winograd.tile_grid(out, None)
    blocks, cache = winograd.forward(images, kernels, biases, grid, Workspace(), training=True)
    assert cache is not None
    S = winograd.blocks_to_image(blocks, 3, grid, out).reshape(3, *out, filters)
    assert relative_error(S, reference_conv(images, kernels, biases, (1, 1))) <= 1e-12

    delta = rng.standard_normal((3, *out, filters))
    dkernels, dbiases, dimages = winograd.backward(
        cache, winograd.image_to_blocks(delta, grid), Workspace(), input_grad=True
    )
    expected = reference_gradients(images, kernels, delta)
    assert dimages is not None and dimages.shape == images.shape
    for actual, wanted in zip((dkernels, dbiases, dimages), expected, strict=True):
        assert relative_error(actual, wanted) <= 1e-12


@pytest.mark.parametrize("block_tiles", [None, 3])
@pytest.mark.parametrize("inference_tiles", [winograd.INFERENCE_CHUNK_TILES, 20, 1])
def test_an_inference_forward_in_its_own_passes_gives_the_training_blocks(
    inference_tiles: int, block_tiles: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(winograd, "INFERENCE_CHUNK_TILES", inference_tiles)
    products_in_blocks_of(block_tiles, monkeypatch)
    rng = np.random.default_rng(22)
    images = rng.standard_normal((5, 10, 9, 16))
    kernels, biases = rng.standard_normal((3, 3, 16, 4)), rng.standard_normal(4)
    grid = winograd.tile_grid((8, 7), None)
    trained, _ = winograd.forward(images, kernels, biases, grid, Workspace(), training=True)
    inferred, cache = winograd.forward(images, kernels, biases, grid, Workspace(), training=False)
    assert cache is None
    assert relative_error(inferred, trained) <= 1e-12  # the same products, in other passes


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    ("pooled_tiles", "block_tiles"),
    [(winograd.POOLED_CHUNK_TILES, None), (7, None), (1, None), (40, 3), (40, 40)],
)
def test_max_pooled_is_the_running_maximum_of_the_four_blocks(
    training: bool, pooled_tiles: int, block_tiles: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # integer pixels and kernels: every output is exact (F(2×2, 3×3)'s ½ are dyadic), and
    # windows tie; the maxima, their records and the kept tiles are those of forward's
    # blocks through running_maximum, whatever the passes (ragged, one tile each) and the
    # blocks of products within them (ragged: 40 tiles in 3s)
    monkeypatch.setattr(winograd, "POOLED_CHUNK_TILES", pooled_tiles)
    monkeypatch.setattr(winograd, "CHUNK_TILES", pooled_tiles)
    products_in_blocks_of(block_tiles, monkeypatch)
    rng = np.random.default_rng(23)
    images = rng.integers(-1, 2, (5, 11, 10, 16)).astype(np.float64)
    kernels = rng.integers(-1, 2, (3, 3, 16, 4)).astype(np.float64)
    biases = rng.integers(-2, 3, 4).astype(np.float64)
    grid = winograd.tile_grid((9, 8), (2, 2))
    blocks, cache = winograd.forward(images, kernels, biases, grid, Workspace(), training=training)
    expected, expected_took = running_maximum(list(blocks), training)
    maximum, took_over, pooled_cache = winograd.max_pooled(
        images, kernels, biases, grid, Workspace(), training=training
    )
    np.testing.assert_array_equal(maximum, expected)
    if not training:
        assert took_over is None and pooled_cache is None
        return
    assert took_over is not None and expected_took is not None
    assert pooled_cache is not None and cache is not None
    for took, wanted in zip(took_over, expected_took, strict=True):
        np.testing.assert_array_equal(took, wanted)
    assert any(took.any() for took in took_over) and not all(took.all() for took in took_over)
    np.testing.assert_array_equal(pooled_cache.tiles, cache.tiles)
    assert pooled_cache.grid == cache.grid and pooled_cache.padded_shape == cache.padded_shape


def test_inference_passes_follow_the_l2_cache(tmp_path: Path) -> None:
    assert winograd.inference_chunk_tiles(1 << 20) == 400  # AMD Zen 5, 1 MB a core
    assert winograd.inference_chunk_tiles(2 << 20) == 800  # Intel Xeon, 2 MB
    assert winograd.inference_chunk_tiles(256 << 10) == 200  # at least 200
    assert winograd.inference_chunk_tiles(32 << 20) == 800  # at most 800
    assert winograd.inference_chunk_tiles(None) == 800  # unknown: the Xeon's measured size
    for text, size in (("1024K\n", 1 << 20), ("2M", 2 << 20), ("524288", 1 << 19)):
        (tmp_path / "size").write_text(text)
        assert winograd.core_l2_bytes(str(tmp_path / "size")) == size
    for text in ("", "K", "-1K", "0K", "lots"):
        (tmp_path / "size").write_text(text)
        assert winograd.core_l2_bytes(str(tmp_path / "size")) is None
    assert winograd.core_l2_bytes(str(tmp_path / "missing")) is None
    assert winograd.INFERENCE_CHUNK_TILES == winograd.inference_chunk_tiles(
        winograd.core_l2_bytes()
    )


def test_pooled_passes_follow_the_cache_they_were_measured_on() -> None:
    assert winograd.pooled_chunk_tiles(512 << 10) == 800  # AMD Zen 3: no pass fits L2
    assert winograd.pooled_chunk_tiles(256 << 10) == 800
    assert winograd.pooled_chunk_tiles(2 << 20) == 400  # Intel Xeon: half its unpooled 800
    assert winograd.pooled_chunk_tiles(1 << 20) == 200  # half of 400, at least 200
    assert winograd.pooled_chunk_tiles(None) == 400  # unknown: as the Xeon
    assert winograd.POOLED_CHUNK_TILES == winograd.pooled_chunk_tiles(winograd.core_l2_bytes())


def test_product_blocks_fit_half_the_l2_cache_with_their_outputs() -> None:
    # (16 products + 4 outputs) × filters × itemsize bytes a tile, in half of L2
    assert winograd.product_tiles(2 << 20, 64, 4) == 204  # Intel Xeon, W2's 64 filters
    assert winograd.product_tiles(2 << 20, 64, 8) == 102  # float64: half as many
    assert winograd.product_tiles(None, 64, 4) == 102  # unknown: 1 MB assumed
    assert winograd.product_tiles(512 << 10, 64, 4) == winograd.MIN_PRODUCT_TILES  # Zen 3
    assert winograd.product_tiles(2 << 20, 4, 4) == 3276  # few filters: whole passes


def test_the_blocks_are_the_pool_order_of_a_2x2_pooling() -> None:
    # block a·2 + b, row (n, i, j) holds output pixel (2i + a, 2j + b); only ⌊out/2⌋ tiles
    rng = np.random.default_rng(22)
    images = rng.standard_normal((3, 9, 10, 16))  # 7×8 outputs: the pooling drops row 6
    kernels, biases = rng.standard_normal((3, 3, 16, 4)), rng.standard_normal(4)
    grid = winograd.tile_grid((7, 8), winograd.POOL)
    assert grid == (3, 4)
    blocks, _ = winograd.forward(images, kernels, biases, grid, Workspace(), training=False)
    S = reference_conv(images, kernels, biases, (1, 1))
    for a in range(2):
        for b in range(2):
            expected = S[:, a : 2 * grid[0] : 2, b : 2 * grid[1] : 2].reshape(-1, 4)
            assert relative_error(blocks[2 * a + b], expected) <= 1e-12


def im2col_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 10**9)


def conv_model(padding: str, seed: int) -> lm.Model:
    """Conv2D 3×3 on 16 channels (F(2×2, 3×3) applies) → MaxPool 2 (fused) → Conv2D 3×3
    (image order, the last one) → Flatten → Dense softmax, float64."""
    model = lm.Model(
        [
            L.Conv2D(16, 16, 3, padding=padding, activation="relu"),
            L.MaxPool2D(2),
            L.Conv2D(16, 5, 3, padding=padding, activation="tanh"),
            L.Flatten(),
            L.Dense(None, 3, activation="softmax"),
        ],
        input_shape=(11, 10, 16),
        seed=seed,
        dtype="float64",
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    return model


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_a_model_trains_and_predicts_as_with_im2col(
    padding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(winograd, "CHUNK_TILES", 20)  # passes of one image (16 tiles each)
    rng = np.random.default_rng(23)
    X, y = rng.standard_normal((6, 11, 10, 16)), rng.integers(0, 3, 6)
    results = []
    for plain in (False, True):
        if plain:
            im2col_only(monkeypatch)
        model = conv_model(padding, seed=4)
        probabilities = model.predict(X)
        model.fit(X, y, epochs=2, batch_size=3, shuffle=False, verbose=0)
        weights = [p.copy() for layer in model.layers for p in layer.params.values()]
        results.append((probabilities, weights))
    (fast, fast_weights), (plain_probabilities, plain_weights) = results
    assert relative_error(fast, plain_probabilities) <= 1e-10
    for a, b in zip(fast_weights, plain_weights, strict=True):
        assert relative_error(a, b) <= 1e-10


def test_float32_tiles_stay_within_float32_rounding_of_the_exact_result() -> None:
    rng = np.random.default_rng(24)
    images = rng.random((4, 13, 13, 32))
    kernels, biases = rng.standard_normal((3, 3, 32, 64)) * 0.1, rng.standard_normal(64)
    layer = L.Conv2D(32, 64, 3)
    layer.params["weights"][...] = kernels
    layer.params["biases"][...] = biases
    S = layer.forward(images.astype(np.float32))
    assert S.dtype == np.float32
    assert relative_error(S, reference_conv(images, kernels, biases, (1, 1))) <= 1e-5


def test_returned_arrays_are_new_and_scratch_memory_is_reused() -> None:
    rng = np.random.default_rng(25)
    layer = L.Conv2D(16, 4, 3)
    first_input, second_input = rng.standard_normal((2, 2, 8, 8, 16)).astype(np.float32)
    first = layer.forward(first_input, training=True)
    kept = first.copy()
    tiles = layer._cache.tiles.tiles  # type: ignore[union-attr]
    dx = layer.backward(np.ones_like(first))
    second = layer.forward(second_input, training=True)
    np.testing.assert_array_equal(first, kept)  # the next forward wrote elsewhere
    assert layer._cache.tiles.tiles is tiles  # type: ignore[union-attr]  # same scratch
    assert dx is not layer.backward(np.ones_like(second))


def test_workspace_hands_out_one_array_per_name_and_keeps_no_huge_ones() -> None:
    workspace = Workspace()
    a = workspace.empty("a", (3, 4), np.dtype(np.float32))
    assert workspace.empty("a", (3, 4), np.dtype(np.float32)) is a
    assert workspace.empty("a", (4, 3), np.dtype(np.float32)) is not a
    assert workspace.empty("b", (3, 4), np.dtype(np.float64)).dtype == np.float64
    np.testing.assert_array_equal(workspace.zeros("a", (2, 2), np.dtype(np.int32)), 0)
    huge = (MAX_KEPT_BYTES // 4 + 1,)
    assert workspace.empty("h", huge, np.dtype(np.float32)) is not workspace.empty(
        "h", huge, np.dtype(np.float32)
    )


def test_workspace_prefixes_reuse_one_array_for_blocks_of_varying_length() -> None:
    workspace, f4 = Workspace(), np.dtype(np.float32)
    full = workspace.prefix("p", (4, 10, 3), f4, axis=1)
    assert full.shape == (4, 10, 3) and full.base is not None
    short = workspace.prefix("p", (4, 7, 3), f4, axis=1)  # a pass's last, shorter block
    assert short.shape == (4, 7, 3) and np.shares_memory(short, full)
    assert short.reshape(4, -1).shape == (4, 21)  # a view: the blocks' rows stay contiguous
    short[...] = 1
    assert (full[:, :7] == 1).all()
    assert not np.shares_memory(workspace.prefix("p", (4, 11, 3), f4, axis=1), full)  # longer
    for other in ((5, 7, 3), (4, 7)):  # another size on another axis, another rank
        assert workspace.prefix("p", other, f4, axis=1).shape == other
    assert workspace.prefix("p", (4, 7), np.dtype(np.float64), axis=1).dtype == np.float64


def test_small_inputs_and_kernels_outside_the_method_keep_im2col() -> None:
    assert winograd.applicable((3, 3), (1, 1), 16, None)
    assert winograd.applicable((3, 3), (1, 1), 64, (2, 2))
    assert not winograd.applicable((3, 3), (1, 1), 15, None)  # too few channels
    assert not winograd.applicable((3, 3), (2, 2), 32, None)
    assert not winograd.applicable((5, 5), (1, 1), 32, None)
    assert not winograd.applicable((3, 3), (1, 1), 32, (3, 3))


def test_predict_keeps_no_scratch_memory_after_its_last_batch() -> None:
    from .test_conv import arrays_held

    rng = np.random.default_rng(26)
    X, y = rng.standard_normal((6, 11, 10, 16)), rng.integers(0, 3, 6)
    model = conv_model("valid", seed=5)
    model.fit(X, y, epochs=1, batch_size=3, verbose=0)
    model.predict(X, batch_size=2)
    batch_sized = [a for a in arrays_held(model) if a.shape and a.shape[0] in (16, 2 * 5 * 4)]
    assert not [a for a in batch_sized if a.ndim == 3]  # tiles, products, blocks: gone


def test_two_threads_predicting_at_once_get_their_own_results() -> None:
    # a server answering two requests with one model: the scratch arrays are per thread
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(27)
    model = conv_model("same", seed=6)
    batches = [rng.standard_normal((40, 11, 10, 16)) for _ in range(4)]
    expected = [model.predict(batch, batch_size=8) for batch in batches]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            results = list(pool.map(lambda b: model.predict(b, batch_size=8), batches))
            for got, wanted in zip(results, expected, strict=True):
                np.testing.assert_array_equal(got, wanted)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.float64])
def test_inputs_of_another_dtype_give_what_im2col_gives(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a float32 layer called directly on integer pixels or float64 images
    images = np.random.default_rng(28).integers(0, 255, (2, 8, 8, 16)).astype(dtype)
    layer = L.Conv2D(16, 3, 3)
    fast = layer.forward(images)
    im2col_only(monkeypatch)
    plain = layer.forward(images)
    assert fast.dtype == plain.dtype
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-3)
