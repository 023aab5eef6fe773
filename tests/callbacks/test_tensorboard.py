"""callbacks.TensorBoard, read back by the real TensorBoard server over its HTTP API
(issue 16): the scalars equal the History's, the histograms count every weight, gradient
and activation, the kernel image is the grid of the first Conv2D's kernels."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import lamina as lm
from lamina import callbacks as C
from lamina import config as configs
from lamina.callbacks.tensorboard import kernel_grid
from lamina.errors import ConfigError

L = lm.layers
ROOT = Path(__file__).resolve().parents[2]
SERVER_START_SECONDS = 60  # the server answers after ~2-10 s on a busy machine
BATCH, STEPS = 16, 3  # 36 training rows: batches of 16, 16 and 4


def network() -> lm.Model:
    model = lm.Model(
        [
            L.Conv2D(1, 4, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(16, 3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.SGD(learning_rate=0.1, decay=0.05),
        metrics=["accuracy"],
    )
    return model


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((48, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 48)


def fit(model: lm.Model, log_dir: Path, epochs: int, initial_epoch: int = 0, **kw: Any) -> Any:
    X, y = data()
    return model.fit(
        X,
        y,
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=BATCH,
        validation_split=0.25,
        callbacks=[C.TensorBoard(log_dir, **kw)],
        verbose=0,
    )


# -- the server ---------------------------------------------------------------------------
@dataclass
class Server:
    url: str

    def get(self, path: str, **query: str) -> bytes:
        address = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        with urllib.request.urlopen(address, timeout=10) as response:
            return bytes(response.read())

    def json(self, path: str, **query: str) -> Any:
        return json.loads(self.get(path, **query))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[lm.Model, Any, Path]:
    """Two epochs, then a resumed third one writing into the same folder."""
    log_dir = tmp_path_factory.mktemp("tensorboard") / "logs"
    model = network()
    fit(model, log_dir, 2, update_freq="batch")
    history = fit(model, log_dir, 3, initial_epoch=2, update_freq="batch")
    return model, history, log_dir


@pytest.fixture(scope="module")
def server(
    run: tuple[lm.Model, Any, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log_dir = run[2]
    errors = tmp_path_factory.mktemp("server") / "stderr.txt"
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(log_dir)]
    command += ["--port", str(port), "--host", "127.0.0.1", "--reload_interval", "1"]
    with errors.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        tensorboard = Server(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:  # until it answers and has read both runs' event files
            try:
                tags = tensorboard.json("/data/plugin/scalars/tags")
                if "epoch_loss" in tags.get("validation", {}) and "batch_loss" in tags.get(
                    "train", {}
                ):
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert process.poll() is None, f"tensorboard exited: {errors.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no answer: {errors.read_text()[-2000:]}"
            time.sleep(0.25)
        yield tensorboard
    finally:
        process.kill()
        process.wait(timeout=30)


def scalars(server: Server, run: str, tag: str) -> tuple[list[int], list[float]]:
    events = server.json("/data/plugin/scalars/scalars", run=run, tag=tag)
    return [step for _, step, _ in events], [value for _, _, value in events]


def histograms(server: Server, tag: str) -> dict[int, np.ndarray]:
    """step → the buckets (left, right, count) of each histogram of ``tag`` in ``train``."""
    events = server.json("/data/plugin/histograms/histograms", run="train", tag=tag)
    return {step: np.array(buckets) for _, step, buckets in events}


# -- read back over HTTP ------------------------------------------------------------------
def test_the_server_lists_both_runs_and_every_scalar(server: Server) -> None:
    assert sorted(server.json("/data/runs")) == ["train", "validation"]
    tags = server.json("/data/plugin/scalars/tags")
    assert set(tags["train"]) == {
        "epoch_loss",
        "epoch_accuracy",
        "epoch_learning_rate",
        "batch_loss",
        "batch_accuracy",
    }
    assert set(tags["validation"]) == {"epoch_loss", "epoch_accuracy"}


def test_scalars_equal_the_history(server: Server, run: Any) -> None:
    model, history, _ = run
    assert history.epoch == [0, 1, 2]
    for tag, key, where in (
        ("epoch_loss", "loss", "train"),
        ("epoch_accuracy", "accuracy", "train"),
        ("epoch_loss", "val_loss", "validation"),
        ("epoch_accuracy", "val_accuracy", "validation"),
    ):
        steps, values = scalars(server, where, tag)
        assert steps == [0, 1, 2], (where, tag)
        np.testing.assert_allclose(values, history.history[key], rtol=1e-6, err_msg=tag)
    for tag, key in (("batch_loss", "loss"), ("batch_accuracy", "accuracy")):
        steps, values = scalars(server, "train", tag)  # the resumed fit went on from step 6
        assert steps == list(range(3 * STEPS))
        np.testing.assert_allclose(values, history.steps[key], rtol=1e-6, err_msg=tag)
    steps, rates = scalars(server, "train", "epoch_learning_rate")
    optimizer = model.optimizer
    expected = [optimizer.learning_rate / (1 + optimizer.decay * STEPS * (e + 1)) for e in steps]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)  # 1/t decay, t = steps taken
    assert rates[-1] == pytest.approx(optimizer.current_learning_rate, rel=1e-6)


def covers(buckets: np.ndarray, values: np.ndarray) -> None:
    """The histogram counts every value, and its non-empty buckets span their range."""
    assert buckets[:, 2].sum() == values.size
    filled = buckets[buckets[:, 2] > 0]
    slack = 1e-6 * max(1.0, float(np.abs(values).max()))
    assert filled[:, 0].min() <= values.min() + slack
    assert filled[:, 1].max() >= values.max() - slack


def test_histograms_of_weights_gradients_and_activations(server: Server, run: Any) -> None:
    model, _, _ = run
    tags = server.json("/data/plugin/histograms/tags")["train"]
    conv, _, _, dense = model.layers
    expected = {
        f"{kind}/{layer.name}/{key}"
        for layer in (conv, dense)
        for key in ("weights", "biases")
        for kind in ("weights", "gradients")
    }
    # the plan's steps; TensorBoard's tags keep no "+": conv2d+max_pool2d is conv2d_max_pool2d
    steps = [name.replace("+", "_") for name in model.plan.step_names]
    assert steps == ["conv2d_max_pool2d", "conv2d/relu", "flatten", "dense", "dense/softmax"]
    expected |= {f"activations/{name}" for name in steps}
    assert set(tags) == expected
    for layer in (conv, dense):  # the last histograms: the weights and gradients left now
        for key in ("weights", "biases"):
            weights = histograms(server, f"weights/{layer.name}/{key}")
            assert sorted(weights) == [0, 1, 2]
            covers(weights[2], layer.params[key])
            gradients = histograms(server, f"gradients/{layer.name}/{key}")
            covers(gradients[2], layer.grads[key])  # of the epoch's last batch
    # activations of each epoch's first batch (16 rows): pooled 2×2×4 maps, 3 probabilities
    for name, size in (("conv2d_max_pool2d", 16 * 16), ("flatten", 16 * 16), ("dense", 16 * 3)):
        activations = histograms(server, f"activations/{name}")
        assert sorted(activations) == [0, 1, 2]
        assert all(buckets[:, 2].sum() == size for buckets in activations.values()), name
    relu = histograms(server, "activations/conv2d/relu")[2]
    assert relu[relu[:, 2] > 0][:, 0].min() >= -1e-12  # after ReLU: nothing below 0
    softmax = histograms(server, "activations/dense/softmax")[2]
    assert softmax[softmax[:, 2] > 0][:, 1].max() <= 1 + 1e-6
    assert model.plan.observers == []  # removed after the batch it watched


def test_the_kernel_image_is_the_first_convolutions_kernels(server: Server, run: Any) -> None:
    model, _, _ = run
    assert set(server.json("/data/plugin/images/tags")["train"]) == {"kernels/conv2d"}
    images = server.json("/data/plugin/images/images", run="train", tag="kernels/conv2d")
    assert [image["step"] for image in images] == [0, 1, 2]
    png = server.get("/data/plugin/images/individualImage?" + images[-1]["query"])
    shown = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    expected = kernel_grid(model.layers[0].params["weights"])  # the weights after epoch 3
    assert shown.shape == expected.shape == (2 * 30 + 2, 2 * 30 + 2)  # 2×2 tiles of 3·10 px
    np.testing.assert_array_equal(shown, expected)
    assert shown.min() == 0 and shown.max() == 255  # each filter scaled to its own range


def test_the_model_summary_is_text(server: Server) -> None:
    texts = server.json("/data/plugin/text/text", run="train", tag="model/summary/text_summary")
    assert texts and all("conv2d (Conv2D)" in text["text"] for text in texts)
    assert "Total params: 91" in texts[0]["text"]  # 4·(9 + 1) + 3·(16 + 1)


# -- without a server ---------------------------------------------------------------------
def events(log_dir: Path, run: str = "train") -> EventAccumulator:
    accumulator = EventAccumulator(
        str(log_dir / run), size_guidance={"scalars": 0, "histograms": 0}
    )  # 0: all
    accumulator.Reload()
    return accumulator


def test_kernel_grid_scales_each_filter_and_lays_out_channels() -> None:
    kernels = np.zeros((2, 2, 3, 5))
    kernels[0, 0, :, :] = 1.0  # each filter: 1 at its top-left, 0 elsewhere
    kernels[..., 4] = 7.0  # a constant filter: mid-grey
    grid = kernel_grid(kernels)
    scale = 32 // 2
    tile_h, tile_w = 2 * scale, 3 * 2 * scale + 2 * 2
    assert grid.shape == (2 * tile_h + 2, 3 * tile_w + 2 * 2)  # 3 columns, 2 rows
    assert grid[0, 0] == 255 and grid[scale, scale] == 0  # filter 0, channel 0
    assert grid[0, 2 * scale + 2] == 255  # its channel 1, after a gap
    assert grid[0, 2 * scale] == 0  # the gap
    top, left = tile_h + 2, tile_w + 2  # filter 4: row 1, column 1
    assert (grid[top : top + tile_h, left : left + 2 * scale] == 128).all()


def test_off_it_costs_nothing_and_writes_only_epoch_scalars(tmp_path: Path) -> None:
    model = network()
    seen: list[int] = []

    class Watch(C.Callback):
        def on_epoch_begin(self, epoch: int, logs: C.Logs | None = None) -> None:
            seen.append(len(model.plan.observers))  # after TensorBoard's on_epoch_begin

    X, y = data()
    board = C.TensorBoard(tmp_path, histogram_freq=0, write_images=False)
    model.fit(X, y, epochs=2, batch_size=BATCH, callbacks=[board, Watch()], verbose=0)
    assert seen == [0, 0]  # no observer: the plan runs its usual forward
    tags = events(tmp_path).Tags()
    assert tags["histograms"] == [] and tags["images"] == []
    assert set(tags["scalars"]) == {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}
    assert not (tmp_path / "validation").exists()  # no validation data, no run for it


def test_update_freq_n_writes_every_nth_batch(tmp_path: Path) -> None:
    fit(network(), tmp_path, 3, update_freq=2, histogram_freq=2)
    train = events(tmp_path)
    assert [event.step for event in train.Scalars("batch_loss")] == [0, 2, 4, 6, 8]
    assert [event.step for event in train.Histograms("weights/dense/weights")] == [0, 2]


def test_a_fit_without_it_never_imports_tensorboardx() -> None:
    code = (
        "import sys, numpy as np, lamina as lm\n"
        "m = lm.Model([lm.layers.Dense(2, 2, activation='softmax')], seed=0)\n"
        "m.compile(loss='categorical_crossentropy', optimizer='sgd')\n"
        "m.fit(np.ones((4, 2)), np.array([0, 1, 0, 1]), epochs=1, verbose=0)\n"
        "assert 'tensorboardX' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_missing_extra_is_an_import_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX fails
    with pytest.raises(ImportError, match=r"pip install 'lamina\[tensorboard\]'"):
        C.TensorBoard("logs")


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`TensorBoard\.update_freq`"):
        C.TensorBoard(tmp_path, update_freq="step")
    with pytest.raises(ConfigError, match=r"`TensorBoard\.histogram_freq`"):
        C.TensorBoard(tmp_path, histogram_freq=-1)
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ConfigError, match=r"`TensorBoard\.log_dir`: expected a folder"):
        fit(network(), a_file, 1)


# -- the command line ---------------------------------------------------------------------
def spiral_config(folder: Path, callback: str) -> Path:
    text = (ROOT / "examples" / "spiral.toml").read_text()
    path = folder / "spiral.toml"
    path.write_text(text.replace("epochs = 10000", "epochs = 2") + callback)
    return path


def test_lamina_train_writes_event_files_from_the_flag_and_the_config(tmp_path: Path) -> None:
    config = spiral_config(tmp_path, '\n[[callbacks]]\ntype = "tensorboard"\nlog_dir = "tb"\n')
    out, flagged = tmp_path / "out", tmp_path / "flagged"
    result = subprocess.run(
        [sys.executable, "-m", "lamina", "train", config, "--out", out, "--tensorboard", flagged],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"tensorboard --logdir {flagged}" in result.stdout
    history = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
    for log_dir in (out / "tb", flagged):  # the config's log_dir is inside --out
        losses = [event.value for event in events(log_dir).Scalars("epoch_loss")]
        np.testing.assert_allclose(losses, history["loss"], rtol=1e-6)


@pytest.mark.parametrize("log_dir", ["../tb", "/tmp/tb", "a/../../tb"])
def test_a_config_log_dir_stays_inside_out(tmp_path: Path, log_dir: str) -> None:
    config = spiral_config(
        tmp_path, f'\n[[callbacks]]\ntype = "tensorboard"\nlog_dir = "{log_dir}"\n'
    )
    run = configs.load_config(config)
    with pytest.raises(ConfigError, match="--out folder") as caught:
        configs.build_callbacks(run, tmp_path / "out", configs.build_model(run))
    assert "log_dir =" in str(caught.value)
