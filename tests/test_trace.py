"""Model.trace: one training step of a 2-4-3 network equals the step computed by hand
(notes §1.2 forward, §1.3 (ŷ − y)/N, §3.3 gradients, §1.4 one SGD update), its table
names every quantity with its formula, and the model is left as it was."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as lm

L = lm.layers

W1 = np.array([[0.2, -0.5, 0.1, 0.4], [-0.3, 0.25, 0.6, -0.1]])
B1 = np.array([0.05, -0.1, 0.0, 0.2])
W2 = np.array([[0.3, -0.2, 0.1], [0.5, 0.4, -0.6], [-0.25, 0.15, 0.35], [0.1, -0.3, 0.2]])
B2 = np.array([0.0, 0.1, -0.1])
X = np.array([[0.5, -1.0], [1.5, 2.0], [-0.7, 0.3]])
Y = np.array([0, 2, 1])
ETA = 0.1


def network(activation: str) -> lm.Model:
    model = lm.Model(
        [L.Dense(2, 4, activation=activation), L.Dense(4, 3, activation="softmax")],
        dtype="float64",
    )
    for layer, (w, b) in zip(model.layers, [(W1, B1), (W2, B2)], strict=True):
        layer.params["weights"][...] = w
        layer.params["biases"][...] = b
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.SGD(ETA))
    return model


def by_hand(activation: str) -> dict[str, np.ndarray]:
    """The step with pencil and paper (in NumPy): forward, loss, δ's, gradients, update."""
    z1 = X @ W1 + B1
    a1 = np.maximum(0, z1) if activation == "relu" else np.tanh(z1)
    z2 = a1 @ W2 + B2
    e = np.exp(z2 - z2.max(axis=1, keepdims=True))
    y_hat = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(3)[Y]
    loss = -np.mean(np.log(y_hat[np.arange(3), Y]))
    dz2 = (y_hat - onehot) / 3  # notes §1.3
    da1 = dz2 @ W2.T  # notes §3.3.1
    dz1 = da1 * (z1 > 0) if activation == "relu" else da1 * (1 - a1**2)  # notes §3.3.3
    dW1, db1, dW2, db2 = X.T @ dz1, dz1.sum(axis=0), a1.T @ dz2, dz2.sum(axis=0)  # §3.3.2
    return {
        "z1": z1, "a1": a1, "z2": z2, "y_hat": y_hat, "loss": np.asarray(loss),
        "dz2": dz2, "da1": da1, "dz1": dz1,
        "dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2,
        "W1'": W1 - ETA * dW1, "b1'": B1 - ETA * db1,
        "W2'": W2 - ETA * dW2, "b2'": B2 - ETA * db2,
    }  # fmt: skip


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_trace_of_a_2_4_3_network_equals_the_step_by_hand(activation: str) -> None:
    model = network(activation)
    hand = by_hand(activation)
    trace = model.trace(X, Y)
    steps = {step["name"]: step for step in trace["steps"]}
    assert list(steps) == ["dense", f"dense/{activation}", "dense_1", "dense_1/softmax"]
    close = np.testing.assert_allclose
    close(steps["dense"]["inputs"], X)
    close(steps["dense"]["outputs"], hand["z1"], rtol=1e-12)
    close(steps[f"dense/{activation}"]["outputs"], hand["a1"], rtol=1e-12)
    close(steps["dense_1"]["inputs"], hand["a1"], rtol=1e-12)
    close(steps["dense_1"]["outputs"], hand["z2"], rtol=1e-12)
    close(steps["dense_1/softmax"]["outputs"], hand["y_hat"], rtol=1e-12)
    close(trace["loss"]["value"], hand["loss"], rtol=1e-12)
    close(steps["dense_1"]["grad_outputs"], hand["dz2"], rtol=1e-12, atol=1e-15)
    close(steps[f"dense/{activation}"]["grad_outputs"], hand["da1"], rtol=1e-12, atol=1e-15)
    close(steps["dense"]["grad_outputs"], hand["dz1"], rtol=1e-12, atol=1e-15)
    assert steps["dense_1/softmax"]["grad_outputs"] is None  # fused into (ŷ − y)/N
    parameters = {p["name"]: p for p in trace["parameters"]}
    for key, grad, new in [
        ("dense/weights", "dW1", "W1'"),
        ("dense/biases", "db1", "b1'"),
        ("dense_1/weights", "dW2", "W2'"),
        ("dense_1/biases", "db2", "b2'"),
    ]:
        close(parameters[key]["gradient"], hand[grad], rtol=1e-12, atol=1e-15)
        close(parameters[key]["updated"], hand[new], rtol=1e-12, atol=1e-15)
        close(parameters[key]["update"], -ETA * hand[grad], rtol=1e-9, atol=1e-15)
    assert trace["applied"] is False


def test_trace_leaves_the_model_bit_for_bit_as_it_was() -> None:
    model = network("relu")
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(0.01))
    model.fit(X, Y, epochs=2, batch_size=2, verbose=0)  # some optimizer state to keep
    before = [theta.copy() for _, theta, _ in model.parameters()]
    slots = model.optimizer.snapshot()  # type: ignore[union-attr]
    model.trace(X, Y)
    for (_, theta, _), saved in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(theta, saved)
    after = model.optimizer.snapshot()  # type: ignore[union-attr]
    assert after["iterations"] == slots["iterations"] == 4
    assert after["learning_rate"] == slots["learning_rate"]
    for key, named in slots["slots"].items():
        for name, array in named.items():
            np.testing.assert_array_equal(after["slots"][key][name], array)
    assert model.plan.observers == []


def test_the_table_shows_every_quantity_with_its_formula() -> None:
    text = network("relu").trace(X, Y).table()
    print(text)  # pytest -s shows it
    lines = text.splitlines()
    assert lines[0].startswith("One training step of Model(2 layers, 27 params) on 3 samples")
    assert "The model was left unchanged." in lines[0]

    def line(*parts: str) -> str:
        matches = [entry for entry in lines if all(part in entry for part in parts)]
        assert len(matches) == 1, (parts, matches)
        return matches[0]

    assert "(3, 4)" in line("forward", "dense ", "z = X·W + b  (notes §1.2, §3.2.1)")
    line("forward", "dense/relu", "a = max(0, z)  (notes §1.2, §3.2.2)")
    line("forward", "dense_1/softmax", "ŷ = eᶻ / Σₖ eᶻᵏ")
    assert f"{float(by_hand('relu')['loss']):.4g}" in line("loss", "(notes §1.2, §3.2.3)")
    line("backward", "dense_1 ", "∂L/∂z", "(ŷ − y) / N", "notes §1.3, §3.3.4")
    line("backward", "dense/relu", "∂L/∂a", "δ·Wᵀ  (notes §3.3.1)")
    line("backward", "dense ", "∂L/∂z", "δ ⊙ [z > 0]  (notes §1.3, §3.3.3)")
    line("gradient", "dense/weights", "∂L/∂W = Xᵀ·δ  (notes §3.3.2)")
    line("gradient", "dense_1/biases", "∂L/∂b = Σₙ δₙ  (notes §3.3.2)")
    line("update", "dense_1/weights", "Δθ = −η·∂L/∂θ  (notes §1.4, §3.4.1)")
    assert "…" in line("update", "dense_1/weights")  # 12 values, 4 shown
    assert str(network("relu").trace(X, Y)) == text


def test_trace_needs_a_compiled_model() -> None:
    with pytest.raises(lm.errors.NotCompiledError, match="compile"):
        lm.Model([L.Dense(2, 3)]).trace(X, Y)
