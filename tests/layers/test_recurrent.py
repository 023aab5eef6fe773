"""SimpleRNN, GRU, LSTM and Bidirectional (issue 15): outputs equal the notes-style recurrence
written step by step here (float64, 1e-12) and PyTorch's layers with the same weights
(outputs and gradients); masks carry the state; Bidirectional reverses each sequence within
its real steps (as PyTorch's packed sequences do); bad inputs raise clear errors; models
save and load bit-identically, keep float32, and train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina.errors import BackwardError, ConfigError, InputError, ShapeError

L = lm.layers
CELLS = [L.SimpleRNN, L.GRU, L.LSTM]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def randomized(layer: Any, seed: int = 0, scale: float = 0.5) -> Any:
    """The layer in float64 with every parameter random (biases included)."""
    rng = np.random.default_rng(seed)
    layer.astype(np.float64)
    for key, value in layer.params.items():
        layer.params[key] = rng.standard_normal(value.shape) * scale
    return layer


def ragged_mask() -> np.ndarray:
    """4 sequences of 7 steps: full, post-padded to 5 and to 2, and one with interior gaps."""
    mask = np.arange(7) < np.array([7, 5, 2, 6])[:, None]
    mask[3, [1, 3]] = False
    return mask


def cell_step(layer: Any, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[Any, Any]:
    """One step of the recurrence, for one sample, written as the docstrings write it."""
    p, units = layer.params, layer.units
    W, U, b = p["input_weights"], p["recurrent_weights"], p["biases"]

    def block(matrix: np.ndarray, k: int) -> np.ndarray:
        return matrix[..., k * units : (k + 1) * units]

    if isinstance(layer, L.SimpleRNN):
        return np.tanh(x @ W + b + h @ U), c
    if isinstance(layer, L.GRU):
        cb = p["recurrent_biases"]
        r = sigmoid(x @ block(W, 0) + block(b, 0) + h @ block(U, 0) + block(cb, 0))
        z = sigmoid(x @ block(W, 1) + block(b, 1) + h @ block(U, 1) + block(cb, 1))
        n = np.tanh(x @ block(W, 2) + block(b, 2) + r * (h @ block(U, 2) + block(cb, 2)))
        return (1 - z) * n + z * h, c
    i, f, g, o = (x @ block(W, k) + block(b, k) + h @ block(U, k) for k in range(4))
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def reference(
    layer: Any,
    x: np.ndarray,
    mask: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(every step's output (N, T, units), the last state (N, units)), looping over samples
    and steps; a masked step keeps h (and c) and outputs the kept state."""
    n_samples, steps, _ = x.shape
    outputs = np.zeros((n_samples, steps, layer.units))
    last = np.zeros((n_samples, layer.units))
    for n in range(n_samples):
        h = np.zeros(layer.units) if h0 is None else h0[n].copy()
        c = np.zeros(layer.units) if c0 is None else c0[n].copy()
        for t in range(steps):
            if mask is None or mask[n, t]:
                h, c = cell_step(layer, x[n, t], h, c)
            outputs[n, t] = h
        last[n] = h
    return outputs, last


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("masked", [False, True])
def test_outputs_equal_the_step_by_step_recurrence(cls: type, masked: bool) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 7, 3))
    mask = ragged_mask() if masked else None
    sequences = randomized(cls(3, 5, return_sequences=True))
    last = cls.from_config({**sequences.get_config(), "return_sequences": False})
    last.astype(np.float64)
    for key, value in sequences.params.items():
        last.params[key] = value
    expected_outputs, expected_last = reference(sequences, x, mask)
    np.testing.assert_allclose(
        sequences.forward(x, mask=mask), expected_outputs, rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(last.forward(x, mask=mask), expected_last, rtol=0, atol=1e-12)
    if masked:  # the carried state: a post-padded sequence's padding repeats its last state
        out = sequences.forward(x, mask=mask)
        np.testing.assert_array_equal(out[2, 2:], np.broadcast_to(out[2, 1], (5, 5)))


@pytest.mark.parametrize("cls", CELLS)
def test_a_given_initial_state_and_its_gradient(cls: type) -> None:
    rng = np.random.default_rng(2)
    x, mask = rng.standard_normal((4, 7, 3)), ragged_mask()
    layer = randomized(cls(3, 4, return_sequences=True))
    h0, c0 = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    given = (h0, c0) if cls is L.LSTM else h0
    expected, _ = reference(layer, x, mask, h0, c0 if cls is L.LSTM else None)
    out = layer.forward(x, training=True, mask=mask, initial_state=given)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    weights = rng.standard_normal(out.shape)
    layer.backward(weights)
    analytic = layer.initial_state_grad if cls is L.LSTM else (layer.initial_state_grad,)
    states = [h0, c0] if cls is L.LSTM else [h0]
    for state, grad in zip(states, analytic, strict=True):
        numerical = np.zeros_like(state)
        for index in np.ndindex(state.shape):
            values = []
            for step in (1e-6, -1e-6):
                state[index] += step
                s = tuple(states) if cls is L.LSTM else states[0]
                values.append(np.sum(layer.forward(x, mask=mask, initial_state=s) * weights))
                state[index] -= step
            numerical[index] = (values[0] - values[1]) / 2e-6
        np.testing.assert_allclose(grad, numerical, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", CELLS)
def test_a_trainable_initial_state_is_a_parameter(cls: type) -> None:
    layer = randomized(cls(3, 4, trainable_initial_state=True))
    keys = {"initial_state", "initial_cell"} if cls is L.LSTM else {"initial_state"}
    assert keys <= set(layer.params)
    assert layer.params["initial_state"].shape == (4,)
    x = np.random.default_rng(3).standard_normal((2, 5, 3))
    h0 = np.tile(layer.params["initial_state"], (2, 1))
    c0 = np.tile(layer.params["initial_cell"], (2, 1)) if cls is L.LSTM else None
    np.testing.assert_allclose(layer.forward(x), reference(layer, x, None, h0, c0)[1], atol=1e-12)


def torch_module(layer: Any, bidirectional: bool = False) -> Any:
    import torch  # installed by make test (the [bench] extra): a comparison, never skipped

    kind = {L.SimpleRNN: torch.nn.RNN, L.GRU: torch.nn.GRU, L.LSTM: torch.nn.LSTM}[type(layer)]
    module = kind(layer.n_inputs, layer.units, batch_first=True, bidirectional=bidirectional)
    return module.double()


def copy_to_torch(module: Any, layer: Any, suffix: str = "") -> None:
    """lamina's (F, k·units) blocks side by side are torch's (k·units, F) stacked: the same
    gate order (GRU r, z, n; LSTM i, f, g, o), transposed."""
    import torch

    p = layer.params
    recurrent_biases = p.get("recurrent_biases", np.zeros_like(p["biases"]))
    with torch.no_grad():
        getattr(module, f"weight_ih_l0{suffix}").copy_(torch.tensor(p["input_weights"].T))
        getattr(module, f"weight_hh_l0{suffix}").copy_(torch.tensor(p["recurrent_weights"].T))
        getattr(module, f"bias_ih_l0{suffix}").copy_(torch.tensor(p["biases"]))
        getattr(module, f"bias_hh_l0{suffix}").copy_(torch.tensor(recurrent_biases))


@pytest.mark.parametrize("cls", CELLS)
def test_gate_conventions_and_gradients_equal_pytorch(cls: type) -> None:
    import torch

    layer = randomized(cls(3, 5, return_sequences=True), seed=4)
    module = torch_module(layer)
    copy_to_torch(module, layer)
    x = np.random.default_rng(5).standard_normal((4, 6, 3))
    weights = np.random.default_rng(6).standard_normal((4, 6, 5))
    xt = torch.tensor(x, requires_grad=True)
    yt = module(xt)[0]
    (yt * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(layer.forward(x, training=True), yt.detach().numpy(), atol=1e-12)
    dx = layer.backward(weights)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(
        layer.grads["input_weights"], module.weight_ih_l0.grad.numpy().T, atol=1e-12
    )
    np.testing.assert_allclose(
        layer.grads["recurrent_weights"], module.weight_hh_l0.grad.numpy().T, atol=1e-12
    )
    np.testing.assert_allclose(layer.grads["biases"], module.bias_ih_l0.grad.numpy(), atol=1e-12)
    if cls is L.GRU:
        np.testing.assert_allclose(
            layer.grads["recurrent_biases"], module.bias_hh_l0.grad.numpy(), atol=1e-12
        )


def packed(x: np.ndarray, lengths: np.ndarray) -> Any:
    import torch

    return torch.nn.utils.rnn.pack_padded_sequence(
        torch.tensor(x), torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )


@pytest.mark.parametrize("cls", [L.GRU, L.LSTM])
def test_a_post_padding_mask_equals_pytorchs_packed_sequences(cls: type) -> None:
    layer = randomized(cls(3, 4), seed=7)
    module = torch_module(layer)
    copy_to_torch(module, layer)
    x, lengths = np.random.default_rng(8).standard_normal((4, 6, 3)), np.array([6, 3, 1, 5])
    mask = np.arange(6) < lengths[:, None]
    state = module(packed(x, lengths))[1]
    h_n = (state[0] if cls is L.LSTM else state)[0].detach().numpy()
    np.testing.assert_allclose(layer.forward(x, mask=mask), h_n, atol=1e-12)


@pytest.mark.parametrize("cls", [L.GRU, L.LSTM])
def test_bidirectional_with_a_mask_equals_pytorchs_packed_bidirectional(cls: type) -> None:
    wrapper = randomized(L.Bidirectional(cls(3, 4)), seed=9)
    module = torch_module(wrapper.forward_layer, bidirectional=True)
    wrapper.forward(np.zeros((1, 1, 3)))  # points the copies at the wrapper's parameters
    copy_to_torch(module, wrapper.forward_layer)
    copy_to_torch(module, wrapper.backward_layer, "_reverse")
    x, lengths = np.random.default_rng(10).standard_normal((4, 6, 3)), np.array([6, 3, 1, 5])
    mask = np.arange(6) < lengths[:, None]
    state = module(packed(x, lengths))[1]
    h_n = (state[0] if cls is L.LSTM else state).detach().numpy()  # (2, N, units)
    expected = np.concatenate([h_n[0], h_n[1]], axis=1)
    np.testing.assert_allclose(wrapper.forward(x, mask=mask), expected, atol=1e-12)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_reverses_each_sequence_within_its_real_steps(merge_mode: str) -> None:
    wrapper = randomized(L.Bidirectional(L.GRU(3, 4, return_sequences=True), merge_mode))
    x, mask = np.random.default_rng(11).standard_normal((4, 7, 3)), ragged_mask()
    out = wrapper.forward(x, mask=mask)
    ahead_layer, behind_layer = wrapper.forward_layer, wrapper.backward_layer
    merge = {
        "concat": lambda a, b: np.concatenate([a, b], -1),
        "sum": np.add,
        "mul": np.multiply,
        "ave": lambda a, b: (a + b) / 2,
    }[merge_mode]
    for n in range(len(x)):
        real = np.flatnonzero(mask[n])  # the real steps, read forward then backward
        ahead = reference(ahead_layer, x[n : n + 1, real])[0][0]
        behind = reference(behind_layer, x[n : n + 1, real[::-1]])[0][0][::-1]
        np.testing.assert_allclose(out[n, real], merge(ahead, behind), rtol=0, atol=1e-12)
    # after a post-padded sequence's last real step: forward carries its last state, and
    # the reversed run has not started yet (h0 = 0)
    tail = out[2, 2:]
    if merge_mode == "concat":
        np.testing.assert_array_equal(tail[:, :4], np.broadcast_to(out[2, 1, :4], (5, 4)))
        np.testing.assert_array_equal(tail[:, 4:], 0)


def test_bidirectional_parameters_save_under_prefixed_names(tmp_path: Path) -> None:
    wrapper = L.Bidirectional(L.LSTM(3, 4, trainable_initial_state=True), merge_mode="ave")
    assert set(wrapper.params) == {
        f"{d}/{k}"
        for d in ("forward", "backward")
        for k in ("input_weights", "recurrent_weights", "biases", "initial_state", "initial_cell")
    }
    assert wrapper.output_shape((7, 3)) == (4,)
    assert L.Bidirectional(L.GRU(3, 4, return_sequences=True)).output_shape((7, 3)) == (7, 8)
    config = wrapper.get_config()
    assert config["layer"]["class"] == "lstm" and config["merge_mode"] == "ave"
    rebuilt = L.deserialize(L.serialize(wrapper))
    assert rebuilt.get_config() == config


def sequence_targets(x: np.ndarray) -> np.ndarray:
    return (x[:, :, 0].sum(axis=1, keepdims=True) / 3).astype(x.dtype)


MODELS = {
    "simple_rnn": lambda: [L.SimpleRNN(2, 6), L.Dense(6, 1)],
    "gru sequences": lambda: [L.GRU(2, 6, return_sequences=True), L.GRU(6, 5), L.Dense(5, 1)],
    "lstm learned h0": lambda: [L.LSTM(2, 6, trainable_initial_state=True), L.Dense(6, 1)],
    "bidirectional": lambda: [L.Bidirectional(L.GRU(2, 5), merge_mode="sum"), L.Dense(5, 1)],
}


@pytest.mark.parametrize("name", list(MODELS))
def test_models_save_and_load_bit_identically(name: str, tmp_path: Path) -> None:
    x = np.random.default_rng(12).standard_normal((24, 6, 2)).astype(np.float32)
    y = sequence_targets(x)
    model = lm.Model(MODELS[name](), seed=0)
    model.compile(loss="mse", optimizer="adam", metrics=[])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    model.fit(x, y, epochs=3, batch_size=8, initial_epoch=2, verbose=0)
    loaded.fit(x, y, epochs=3, batch_size=8, initial_epoch=2, verbose=0)
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))


@pytest.mark.parametrize("name", list(MODELS))
def test_a_tiny_model_learns_a_sequence_sum(name: str) -> None:
    x = np.random.default_rng(13).standard_normal((128, 6, 2)).astype(np.float32)
    y = sequence_targets(x)
    model = lm.Model(MODELS[name](), seed=1)
    model.compile(loss="mse", optimizer=lm.optimizers.Adam(learning_rate=0.01), metrics=[])
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.3 * losses[0], losses


@pytest.mark.parametrize("cls", CELLS)
def test_float32_in_float32_out_without_upcasting(cls: type) -> None:
    layer = cls(3, 4, return_sequences=True)
    x = np.random.default_rng(14).standard_normal((2, 5, 3)).astype(np.float32)
    out = layer.forward(x, training=True, mask=ragged_mask()[:2, :5])
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    wrapper = L.Bidirectional(cls(3, 4))
    assert wrapper.forward(x).dtype == np.float32


def test_initialisation_orthogonal_blocks_and_forget_bias() -> None:
    lstm = L.LSTM(5, 6)
    u = lstm.params["recurrent_weights"]
    for k in range(4):
        block = u[:, 6 * k : 6 * (k + 1)].astype(np.float64)
        np.testing.assert_allclose(block.T @ block, np.eye(6), atol=1e-6)
    np.testing.assert_array_equal(lstm.params["biases"], np.repeat([0.0, 1.0, 0.0, 0.0], 6))
    gru = L.GRU(5, 6)
    assert not gru.params["biases"].any() and not gru.params["recurrent_biases"].any()
    q = lm.initializers.orthogonal((3, 7), 3, 7, np.random.default_rng(0), np.dtype(np.float64))
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-12)


class MaskingForSure(L.Masking):
    """Masking that declares its mask (whatever ``Masking.makes_mask`` says meanwhile)."""

    @property
    def makes_mask(self) -> bool:
        return True


def test_a_mask_from_the_model_reaches_the_layer() -> None:
    x = np.random.default_rng(15).standard_normal((4, 7, 3))
    mask = np.arange(7) < np.array([7, 5, 2, 6])[:, None]
    x[~mask] = 0.0
    gru = L.GRU(3, 4)
    model = lm.Model([MaskingForSure(0.0, name="padding"), gru], dtype="float64", seed=0)
    np.testing.assert_allclose(model.predict(x), gru.forward(x, mask=mask), atol=1e-12)
    assert gru.compute_mask(x, mask) is None
    assert L.GRU(3, 4, return_sequences=True).compute_mask(x, mask) is mask


# -- bad input ------------------------------------------------------------------------------
def test_2d_data_names_the_layer_and_the_time_axis_fix() -> None:
    layer = L.GRU(8, 4, name="encoder")
    with pytest.raises(ShapeError) as caught:
        layer.forward(np.zeros((5, 8)))
    message = str(caught.value)
    assert "'encoder' (GRU)" in message and "(batch, 8)" in message
    assert "X[:, None, :]" in message and "X[:, :, None]" in message
    model = lm.Model([L.LSTM(8, 4), L.Dense(4, 1)])
    with pytest.raises(ShapeError, match=r"time axis.*X\[:, None, :\]"):
        model.predict(np.zeros((5, 8), np.float32))


def test_a_wrong_feature_count_names_the_sizes() -> None:
    with pytest.raises(ShapeError, match=r"\(batch, \?, 8\).*\(batch, 6, 5\).*n_inputs=5"):
        L.SimpleRNN(8, 4).forward(np.zeros((2, 6, 5)))
    with pytest.raises(ShapeError, match="n_inputs=5"):
        lm.Model([L.GRU(8, 4)]).predict(np.zeros((2, 6, 5), np.float32))


@pytest.mark.parametrize("cls", [L.GRU, L.LSTM])
def test_a_bad_mask_is_refused_with_the_fix(cls: type) -> None:
    layer, x = cls(3, 4), np.zeros((2, 6, 3))
    with pytest.raises(ShapeError, match=r"mask of shape \(2, 5\).*expected \(2, 6\).*np\.arange"):
        layer.forward(x, mask=np.ones((2, 5), bool))
    with pytest.raises(InputError, match="bool array"):
        layer.forward(x, mask=np.full((2, 6), 0.5))
    with pytest.raises(InputError, match="bool array"):
        layer.forward(x, mask=np.full((2, 6), "yes"))
    np.testing.assert_array_equal(  # 0/1 numbers are a mask
        layer.forward(x, mask=np.ones((2, 6), np.int64)), layer.forward(x)
    )
    with pytest.raises(ShapeError, match=r"mask of shape"):
        L.Bidirectional(layer).forward(x, mask=np.ones((2, 7), bool))


def test_other_misuse_is_refused() -> None:
    with pytest.raises(ShapeError, match=r"initial state of shape \(2, 3\).*\(2, 4\)"):
        L.GRU(3, 4).forward(np.zeros((2, 5, 3)), initial_state=np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"\(h0, c0\)"):
        L.LSTM(3, 4).forward(np.zeros((2, 5, 3)), initial_state=np.zeros((2, 4)))
    with pytest.raises(BackwardError):
        L.GRU(3, 4).backward(np.zeros((2, 4)))
    layer = L.GRU(3, 4)
    layer.forward(np.zeros((2, 5, 3)))
    with pytest.raises(BackwardError):
        layer.backward(np.zeros((2, 4)))
    with pytest.raises(ConfigError, match=r"Bidirectional\.layer"):
        L.Bidirectional(L.Dense(3, 4))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"SimpleRNN\.activation"):
        L.SimpleRNN(3, 4, activation="softmax")


def test_summary_shows_sequence_shapes() -> None:
    model = lm.Model(
        [L.GRU(3, 8, return_sequences=True), L.Bidirectional(L.LSTM(8, 4)), L.Dense(8, 2)]
    )
    text = model.summary(input_shape=(10, 3))
    assert "(batch, 10, 8)" in text and "(batch, 8)" in text and "(batch, 2)" in text
    assert model.output_shape((10, 3)) == (2,)
