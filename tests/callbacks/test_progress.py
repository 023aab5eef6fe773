"""The progress display: a widget bar in a Jupyter kernel, a tqdm bar on a terminal, plain
lines elsewhere, and never a bar and duplicate lines together (the real kernel:
tests/test_notebook.py)."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import types
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina.callbacks import progress

L = lm.layers


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as a TTY's stderr does."""

    def isatty(self) -> bool:
        return True


def fit(progress_bar: lm.callbacks.ProgressBar, epochs: int = 2) -> lm.Model:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    model = lm.Model(
        [L.Dense(5, 8, activation="relu"), L.Dense(8, 3, activation="softmax")], seed=0
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(
        X,
        y,
        epochs=epochs,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[progress_bar],
    )
    return model


def epoch_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Epoch ") and " - " in line]


def test_a_file_gets_one_line_per_epoch_and_no_bar() -> None:
    log = io.StringIO()
    fit(lm.callbacks.ProgressBar(verbose=1, file=log), epochs=3)
    text = log.getvalue()
    assert "\r" not in text and "|" not in text  # no carriage-return bar
    lines = text.splitlines()
    assert lines == epoch_lines(text) and len(lines) == 3
    assert lines[0].startswith("Epoch 1/3 - ")
    assert all(f"{key}: " in lines[-1] for key in ("loss", "accuracy", "val_loss", "lr"))


def test_a_terminal_gets_a_bar_then_the_epoch_line() -> None:
    terminal = Terminal()
    fit(lm.callbacks.ProgressBar(verbose=1, file=terminal), epochs=2)
    text = terminal.getvalue()
    assert "\r" in text and "| 0/3 [" in text and "step/s" in text  # tqdm drew its bar
    assert [line[:10] for line in epoch_lines(text)] == ["Epoch 1/2 ", "Epoch 2/2 "]
    # the bar is erased (leave=False) before its epoch's line: what remains on screen after
    # the last carriage return of each line is that line alone
    shown = [segment.rsplit("\r", 1)[-1] for segment in text.split("\n") if segment]
    assert [line for line in shown if line.strip() and not line.strip().startswith("\x1b")] == (
        epoch_lines(text)
    )


def read_all(master: int) -> str:
    """Everything written to a pty so far: a read returns one chunk of it at a time."""
    chunks = []
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_a_real_terminal_gets_the_bar() -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24×100
    try:
        with os.fdopen(slave, "w", closefd=False) as terminal:
            assert terminal.isatty()
            fit(lm.callbacks.ProgressBar(verbose=1, file=terminal), epochs=2)
        text = read_all(master)
    finally:
        os.close(master)
        os.close(slave)
    assert "\rEpoch 1/2:   0%|" in text and "| 0/3 [" in text
    assert [line[:10] for line in epoch_lines(text)] == ["Epoch 1/2 ", "Epoch 2/2 "]


def test_verbose_2_on_a_terminal_prints_only_lines() -> None:
    terminal = Terminal()
    fit(lm.callbacks.ProgressBar(verbose=2, file=terminal), epochs=2)
    text = terminal.getvalue()
    assert "\r" not in text and len(epoch_lines(text)) == 2 == len(text.splitlines())


def test_verbose_0_prints_nothing() -> None:
    log = io.StringIO()
    fit(lm.callbacks.ProgressBar(verbose=0, file=log))
    assert log.getvalue() == ""


def test_in_a_kernel_with_widgets_each_epoch_is_a_kept_widget_bar_and_no_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tqdm.notebook  # ipywidgets: the dev extra (make test) installs the notebook extra

    shown: list[Any] = []
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: True)
    monkeypatch.setattr(tqdm.notebook, "display", shown.append)  # IPython's display()
    fit(lm.callbacks.ProgressBar(verbose=1, file=sys.stderr), epochs=2)
    captured = capsys.readouterr()
    assert epoch_lines(captured.err + captured.out) == []  # the bars are the record
    assert len(shown) == 2
    for epoch, container in enumerate(shown, 1):
        left, bar, right = container.children
        assert left.value.startswith(f"Epoch\u2007{epoch}/2")
        assert (bar.value, bar.max, bar.bar_style) == (3, 3, "success")
        assert all(f"{key}=" in right.value for key in ("loss", "accuracy", "val_loss", "lr"))
        assert container.layout.visibility != "hidden"  # kept (leave=True)


def test_a_kernel_without_widgets_or_a_file_of_ones_own_gets_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: True)
    log = io.StringIO()  # not the notebook's stream: the lines go where they were sent
    assert progress.display_mode(1, log) == "lines"
    monkeypatch.setattr(progress, "widgets_available", lambda: False)
    assert progress.display_mode(1, sys.stderr) == "lines"
    assert progress.display_mode(1, Terminal()) == "terminal"
    monkeypatch.setattr(progress, "widgets_available", lambda: True)
    assert progress.display_mode(1, sys.stderr) == "notebook"
    assert progress.display_mode(2, sys.stderr) == "lines"
    assert progress.display_mode(0, sys.stderr) == "silent"


class Shell:
    """An IPython shell: ipykernel's has a kernel and the kernel app's config."""

    def __init__(self, kernel: object | None, config: dict[str, object]) -> None:
        self.kernel, self.config = kernel, config


def fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: object | None) -> None:
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))


def test_jupyter_kernel_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QT_API", raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not progress.in_jupyter_kernel()  # a plain script: IPython never imported
    fake_ipython(monkeypatch, None)
    assert not progress.in_jupyter_kernel()  # IPython imported, no shell
    fake_ipython(monkeypatch, Shell(None, {}))
    assert not progress.in_jupyter_kernel()  # the terminal IPython
    fake_ipython(monkeypatch, Shell(object(), {}))
    assert progress.in_jupyter_kernel()
    fake_ipython(monkeypatch, Shell(None, {"IPKernelApp": {}}))
    assert progress.in_jupyter_kernel()
    monkeypatch.setenv("QT_API", "pyqt5")  # the Qt console shows no widgets
    assert not progress.in_jupyter_kernel()
    monkeypatch.delitem(sys.modules, "ipykernel")
    monkeypatch.delenv("QT_API")
    assert not progress.in_jupyter_kernel()  # no ipykernel loaded: not a kernel


# -- issue 19: lines on stdout, the bar on stderr, running means, the restored epoch -------
SCRIPT = """
import numpy as np, lamina as lm
rng = np.random.default_rng(0)
X, y = rng.standard_normal((64, 5)).astype(np.float32), rng.integers(0, 3, 64)
model = lm.Model([lm.layers.Dense(5, 3, activation="softmax")], seed=0)
model.compile(loss="categorical_crossentropy", optimizer="adam")
model.fit(X, y, epochs=3, batch_size=16, verbose={verbose})
"""


@pytest.mark.parametrize("verbose", [1, 2])
def test_a_script_run_with_stdout_to_a_file_leaves_the_epoch_lines_there(
    verbose: int, tmp_path: Any
) -> None:
    log, errors = tmp_path / "log", tmp_path / "errors"
    with log.open("w") as out, errors.open("w") as err:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT.format(verbose=verbose)],
            stdout=out,
            stderr=err,
            check=False,
            timeout=120,
        )
    assert done.returncode == 0, errors.read_text()
    lines = log.read_text().splitlines()
    assert [line[:10] for line in lines] == ["Epoch 1/3 ", "Epoch 2/3 ", "Epoch 3/3 "]
    assert errors.read_text() == ""  # stderr is no terminal here: no bar either


def test_by_default_the_lines_go_to_stdout_and_the_bar_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fit(lm.callbacks.ProgressBar(verbose=2), epochs=2)
    captured = capsys.readouterr()
    assert len(epoch_lines(captured.out)) == 2 and captured.err == ""
    bar = lm.callbacks.ProgressBar(verbose=1)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # a terminal's stderr: the bar is drawn
    fit(bar, epochs=2)
    assert "\r" in terminal.getvalue() and "| 0/3 [" in terminal.getvalue()
    assert epoch_lines(terminal.getvalue()) == []
    out = capsys.readouterr().out
    assert [line[:10] for line in epoch_lines(out)] == ["Epoch 1/2 ", "Epoch 2/2 "]
    assert "\r" not in out


class Postfixes(lm.callbacks.Callback):
    """Records the logs of every batch, as the progress bar receives them or not."""

    def __init__(self, running: bool) -> None:
        super().__init__()
        self.running_logs = running
        self.logs: list[dict[str, float]] = []

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        self.logs.append(dict(logs))


def test_the_bar_shows_running_means_of_the_epoch() -> None:
    running, batches = Postfixes(True), Postfixes(False)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)).astype(np.float32)  # 16 + 16 + 16 + 12: uneven batches
    y = rng.integers(0, 3, 60)
    model = lm.Model([L.Dense(5, 3, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(X, y, epochs=1, batch_size=16, verbose=0, callbacks=[running, batches])
    assert batches.logs == [
        dict(zip(history.steps, values, strict=True))
        for values in zip(*history.steps.values(), strict=True)
    ]  # the others still get each batch's own values
    sizes = np.array([16, 16, 16, 12])
    for step in range(4):  # the sample-weighted means of the batches so far
        for key in ("loss", "accuracy"):
            own = np.array([logs[key] for logs in batches.logs[: step + 1]])
            expected = (own * sizes[: step + 1]).sum() / sizes[: step + 1].sum()
            assert running.logs[step][key] == pytest.approx(expected, rel=1e-9)
    assert running.logs[-1] == pytest.approx(
        {key: values[0] for key, values in history.history.items()}
    )
    assert lm.callbacks.ProgressBar.running_logs


def test_a_restore_is_said_and_the_history_knows_which_epoch_the_model_holds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = rng.integers(0, 3, 64)

    def model() -> lm.Model:
        built = lm.Model([L.Dense(5, 3, activation="softmax")], seed=0)
        built.compile(loss="categorical_crossentropy", optimizer="adam")
        return built

    # the loss falls every epoch, so "max" finds epoch 1 best and stops 2 epochs later
    stopping = lm.callbacks.EarlyStopping("loss", mode="max", patience=2, restore_best_weights=True)
    restored = model()
    history = restored.fit(X, y, epochs=10, batch_size=16, verbose=2, callbacks=[stopping])
    lines = capsys.readouterr().out.splitlines()
    assert len(history.epoch) == 3
    assert lines[-1] == f"Restored the weights of epoch 1 (loss {history.history['loss'][0]:.4f})."
    assert history.restored == lm.callbacks.Restored(0, "loss", history.history["loss"][0])
    assert history.final_logs == {key: values[0] for key, values in history.history.items()}
    one_epoch = model()
    one_epoch.fit(X, y, epochs=1, batch_size=16, verbose=0)
    for (_, a, _), (_, b, _) in zip(restored.parameters(), one_epoch.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)  # the model does hold epoch 1's weights
    quiet = model().fit(X, y, epochs=10, batch_size=16, verbose=0, callbacks=[stopping])
    assert quiet.restored is not None and capsys.readouterr().out == ""
    plain = model().fit(X, y, epochs=2, batch_size=16, verbose=2)
    assert plain.restored is None
    assert plain.final_logs == {key: values[-1] for key, values in plain.history.items()}
    assert "Restored" not in capsys.readouterr().out
