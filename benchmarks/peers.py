"""Throughput and accuracy of lamina next to its peers, PyTorch (CPU) and scikit-learn (DESIGN §8).

Method:
    * One process per measurement. The parent launches every (system, batch size) run as
      ``python benchmarks/peers.py --worker SYSTEM ...``, which prints one JSON line. OpenBLAS,
      MKL and torch's OpenMP pools in one process would steal each other's cores, and a
      fresh process also starts every system from the same cold state.
    * Same threads for all. Every worker gets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
      MKL_NUM_THREADS set to ``--threads`` (default: os.cpu_count()), plus
      ``torch.set_num_threads`` in the torch worker and ``threadpoolctl.threadpool_limits`` in
      the NumPy-based ones (lamina, scikit-learn). ``--env KEY=VALUE`` goes to every worker
      alike (e.g. ``--env OPENBLAS_CORETYPE=SKYLAKEX``).
    * Interleaved runs: for each repeat, for each batch size, for each system, one worker.
      Drift in the machine's state (other jobs, clock throttling) then hits every system
      alike instead of whichever ran last. The report gives the median over repeats.
    * Inside a worker: load the workload's data (Fashion-MNIST; W3: generated sequences); warm
      up a throwaway model for 20 steps (neither timed nor kept); build the measured model
      with seed 0; train ``--epochs`` epochs, timing each with ``time.perf_counter``.
      Training samples/s = training samples / median epoch time. Inference samples/s = the
      10,000 test samples / median of 3 timed predictions in batches of the same batch size.
      Test accuracy is measured after the training epochs.
    * ``--accuracy-epochs N`` adds one longer run per system (at ``--accuracy-batch-size``)
      that reports only the test accuracy: throughput runs are too short to compare it.

A workload is an entry of WORKLOADS: its data (Fashion-MNIST unless it has a ``source``), how
to turn them into inputs and, per system, how to build the model. W2 (the CNN), W2-BN (with
BatchNorm), W3 (GRU) and W3-LSTM (the sequence classifiers) are added there; a system
without a builder is skipped.

Run:
    make bench                                    # installs ".[bench]", then runs this file
    python benchmarks/peers.py --batch-sizes 32,128,1024 --repeats 3 --epochs 2
    python benchmarks/peers.py --systems lamina --limit 2000 --epochs 1 --repeats 1

It prints a Markdown report and writes the full results to
benchmarks/results/<workload>-<YYYYmmdd-HHMMSS>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch
    from sklearn.neural_network import MLPClassifier

    import lamina as lm

Result = dict[str, Any]

SYSTEMS = ("lamina", "torch", "sklearn")
MODULE = {"lamina": "lamina", "torch": "torch", "sklearn": "sklearn"}
NATIVE = {"lamina": "lamina", "torch": "torch", "sklearn": "sklearn.neural_network"}
DISTRIBUTIONS = {  # name shown in the report -> distribution to ask for its version
    "numpy": "numpy",
    "lamina": "lamina",
    "torch": "torch",
    "scikit-learn": "scikit-learn",
    "threadpoolctl": "threadpoolctl",
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Variables that steer the math libraries' kernels and threads: reported whenever a worker
# inherits one (a shell or a CI image may set OPENBLAS_CORETYPE, and then the kernels are
# not OpenBLAS's own choice); lamina.system's list, not imported from there because a
# PyTorch worker must not load lamina
MATH_LIBRARY_PREFIXES = ("OPENBLAS_", "GOTO", "MKL_", "OMP_", "KMP_", "DNNL_", "ONEDNN_")
SEED = 0
WARMUP_STEPS = 20
INFERENCE_REPEATS = 3
N_CLASSES = 10
LEARNING_RATE = 1e-3
HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- systems


class Trainer(Protocol):
    """One system's model for one workload, training and predicting at a fixed batch size."""

    def train_epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        """One shuffled pass over ``(X, y)``."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class confidences, shape (len(X), classes)."""


class LaminaTrainer:
    def __init__(self, model: lm.Model, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size

    def train_epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        self.model.fit(X, y, epochs=1, batch_size=self.batch_size, verbose=0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(X, batch_size=self.batch_size))


class TorchTrainer:
    """Cross-entropy on logits; a ``torch.randperm`` shuffle and index-gather per epoch."""

    def __init__(
        self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, batch_size: int, seed: int
    ) -> None:
        import torch

        self.module = module
        self.optimizer = optimizer
        self.batch_size = batch_size
        self._loss = torch.nn.CrossEntropyLoss()
        self._generator = torch.Generator().manual_seed(seed)
        self._data: tuple[np.ndarray, torch.Tensor, torch.Tensor] | None = None

    def _tensors(self, X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        # Built once per training set, like a script that converts its arrays up front.
        import torch

        if self._data is None or self._data[0] is not X:
            self._data = (X, to_torch_layout(X), torch.from_numpy(y.astype(np.int64)))
        return self._data[1], self._data[2]

    def train_epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        import torch

        inputs, targets = self._tensors(X, y)
        self.module.train()
        order = torch.randperm(len(inputs), generator=self._generator)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._loss(self.module(inputs[index]), targets[index])
            loss.backward()
            self.optimizer.step()

    def predict(self, X: np.ndarray) -> np.ndarray:
        import torch

        inputs = to_torch_layout(X)
        self.module.eval()
        with torch.inference_mode():
            parts = [
                torch.softmax(self.module(inputs[start : start + self.batch_size]), dim=1)
                for start in range(0, len(inputs), self.batch_size)
            ]
        return torch.cat(parts).numpy()


def to_torch_layout(X: np.ndarray) -> torch.Tensor:
    """A tensor of X; NHWC images become NCHW, torch's convolution layout (copied once)."""
    import torch

    tensor = torch.from_numpy(X)
    return tensor.permute(0, 3, 1, 2).contiguous() if X.ndim == 4 else tensor


class SklearnTrainer:
    """``partial_fit`` is one epoch of MLPClassifier's own minibatch loop, so each can be timed."""

    def __init__(self, model: MLPClassifier, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        self._classes = np.arange(N_CLASSES)
        self._started = False

    def train_epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        if self._started:
            self.model.partial_fit(X, y)
        else:
            self.model.partial_fit(X, y, classes=self._classes)
            self._started = True

    def predict(self, X: np.ndarray) -> np.ndarray:
        parts = [
            self.model.predict_proba(X[start : start + self.batch_size])
            for start in range(0, len(X), self.batch_size)
        ]
        return np.concatenate(parts)


# --------------------------------------------------------------------------- workloads


Builder = Callable[[int, int], Trainer]  # (seed, batch_size) -> a fresh model


Split = tuple[np.ndarray, np.ndarray]  # (X, integer labels)


def fashion_mnist() -> tuple[Split, Split]:
    import lamina as lm

    return lm.datasets.fashion_mnist()


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    to_inputs: Callable[[np.ndarray], np.ndarray]  # raw X of `source` -> float32 inputs
    builders: Mapping[str, Builder]  # system -> model; systems left out are skipped
    source: Callable[[], tuple[Split, Split]] = fashion_mnist  # (train, test) raw data


def flat_unit_interval(images: np.ndarray) -> np.ndarray:
    """Pixels scaled to [0, 1] in float32, each image flattened to 784 values."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def w1_lamina(seed: int, batch_size: int) -> Trainer:
    import lamina as lm

    model = lm.Model(
        [
            lm.layers.Dense(784, 128, activation="relu"),
            lm.layers.Dense(128, 128, activation="relu"),
            lm.layers.Dense(128, N_CLASSES, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=LEARNING_RATE),
        metrics=["accuracy"],
    )
    return LaminaTrainer(model, batch_size)


def w1_torch(seed: int, batch_size: int) -> Trainer:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    module = nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, N_CLASSES)
    )
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    return TorchTrainer(module, optimizer, batch_size, seed)


def w1_sklearn(seed: int, batch_size: int) -> Trainer:
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=(128, 128),
        activation="relu",
        solver="adam",
        learning_rate_init=LEARNING_RATE,
        batch_size=batch_size,
        alpha=0.0,  # no L2 penalty: lamina and torch have none
        shuffle=True,
        # A RandomState, not the int seed: MLPClassifier re-seeds from an int on every
        # partial_fit call, which would replay the same shuffle order every epoch.
        random_state=np.random.RandomState(seed),
    )
    return SklearnTrainer(model, batch_size)


def images_unit_interval(images: np.ndarray) -> np.ndarray:
    """Pixels scaled to [0, 1] in float32, as NHWC images (N, 28, 28, 1)."""
    return images.reshape(len(images), 28, 28, 1).astype(np.float32) / np.float32(255.0)


def w2_lamina(seed: int, batch_size: int, batchnorm: bool = False) -> Trainer:
    """W2; ``batchnorm``: a BatchNorm between each convolution and its ReLU (Keras' order),
    which ``predict`` folds into the convolution (``lamina.engine.folding``)."""
    import lamina as lm
    from lamina.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU

    def block(channels: int, filters: int) -> list[lm.layers.Layer]:
        if batchnorm:
            return [Conv2D(channels, filters, 3), BatchNorm(filters), ReLU(), MaxPool2D(2)]
        return [Conv2D(channels, filters, 3, activation="relu"), MaxPool2D(2)]

    model = lm.Model(
        [
            *block(1, 32),
            *block(32, 64),
            Flatten(),
            Dense(5 * 5 * 64, 128, activation="relu"),
            Dropout(0.5),
            Dense(128, N_CLASSES, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=LEARNING_RATE),
        metrics=["accuracy"],
    )
    return LaminaTrainer(model, batch_size)


def w2_torch(seed: int, batch_size: int, batchnorm: bool = False) -> Trainer:
    import torch
    from torch import nn

    def block(channels: int, filters: int) -> list[nn.Module]:
        normalized = [nn.BatchNorm2d(filters)] if batchnorm else []
        return [nn.Conv2d(channels, filters, 3), *normalized, nn.ReLU(), nn.MaxPool2d(2)]

    torch.manual_seed(seed)
    module = nn.Sequential(
        *block(1, 32), *block(32, 64),
        nn.Flatten(), nn.Linear(5 * 5 * 64, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, N_CLASSES),
    )  # fmt: skip
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    return TorchTrainer(module, optimizer, batch_size, seed)


def w2(batchnorm: bool) -> Workload:
    """W2, or W2-BN: a BatchNorm between each convolution and its ReLU."""
    if batchnorm:
        description = (
            "W2 with a BatchNorm between each convolution and its ReLU (conv → BatchNorm → "
            "ReLU → MaxPool; torch: BatchNorm2d), Adam 1e-3"
        )
    else:
        description = (
            "CNN 28×28×1 → Conv 3×3×32 ReLU → MaxPool 2 → Conv 3×3×64 ReLU → MaxPool 2"
            " → Flatten → Dense 128 ReLU → Dropout 0.5 → Dense 10 Softmax, Adam 1e-3"
        )
    return Workload(
        name="w2-bn" if batchnorm else "w2",
        description=description,
        to_inputs=images_unit_interval,
        builders={
            "lamina": functools.partial(w2_lamina, batchnorm=batchnorm),
            "torch": functools.partial(w2_torch, batchnorm=batchnorm),
        },
    )


# W3: sequences of SEQUENCE_STEPS steps × SEQUENCE_FEATURES features, one class each.
SEQUENCE_STEPS, SEQUENCE_FEATURES, SEQUENCE_UNITS = 40, 8, 128
SEQUENCE_TRAIN, SEQUENCE_TEST = 10_000, 10_000


def frequency_sequences(n: int, seed: int) -> Split:
    """n sequences (n, 40, 8) in float32 whose class c ∈ 0…9 is the frequency of the signal:
    every feature j is a sine of (1 + c) / 2 cycles per 40 steps with its own random phase
    and amplitude in [0.5, 1.5], plus Gaussian noise of σ 0.5. Telling the classes apart
    needs the whole sequence, not its last steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, n)
    steps = np.arange(SEQUENCE_STEPS, dtype=np.float64)
    cycles = (1.0 + labels) / 2.0 / SEQUENCE_STEPS  # per step
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 1, SEQUENCE_FEATURES))
    amplitude = rng.uniform(0.5, 1.5, (n, 1, SEQUENCE_FEATURES))
    angle = 2.0 * np.pi * cycles[:, None, None] * steps[None, :, None] + phase
    noise = rng.normal(0.0, 0.5, (n, SEQUENCE_STEPS, SEQUENCE_FEATURES))
    return (amplitude * np.sin(angle) + noise).astype(np.float32), labels


def frequency_classes() -> tuple[Split, Split]:
    """W3's data: 10,000 training and 10,000 test sequences, from seeds 0 and 1."""
    return frequency_sequences(SEQUENCE_TRAIN, 0), frequency_sequences(SEQUENCE_TEST, 1)


def as_float32(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X, dtype=np.float32)


def w3_lamina(cell: str) -> Builder:
    def build(seed: int, batch_size: int) -> Trainer:
        import lamina as lm
        from lamina.layers import GRU, LSTM, Dense

        recurrent = {"gru": GRU, "lstm": LSTM}[cell]
        model = lm.Model(
            [
                recurrent(SEQUENCE_FEATURES, SEQUENCE_UNITS),
                Dense(SEQUENCE_UNITS, N_CLASSES, activation="softmax"),
            ],
            seed=seed,
        )
        model.compile(
            loss="categorical_crossentropy",
            optimizer=lm.optimizers.Adam(learning_rate=LEARNING_RATE),
            metrics=["accuracy"],
        )
        return LaminaTrainer(model, batch_size)

    return build


def w3_torch(cell: str) -> Builder:
    def build(seed: int, batch_size: int) -> Trainer:
        import torch
        from torch import nn

        class LastState(nn.Module):
            """The recurrent layer's last hidden state into a linear layer (logits)."""

            def __init__(self) -> None:
                super().__init__()
                recurrent = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
                self.recurrent = recurrent(SEQUENCE_FEATURES, SEQUENCE_UNITS, batch_first=True)
                self.linear = nn.Linear(SEQUENCE_UNITS, N_CLASSES)

            def forward(self, inputs: torch.Tensor) -> torch.Tensor:
                outputs, _ = self.recurrent(inputs)
                return self.linear(outputs[:, -1])  # type: ignore[no-any-return]

        torch.manual_seed(seed)
        module = LastState()
        optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
        return TorchTrainer(module, optimizer, batch_size, seed)

    return build


def w3(cell: str) -> Workload:
    layer, peer = {"gru": ("GRU", "nn.GRU"), "lstm": ("LSTM", "nn.LSTM")}[cell]
    return Workload(
        name="w3" if cell == "gru" else f"w3-{cell}",
        description=f"sequences ({SEQUENCE_STEPS} steps × {SEQUENCE_FEATURES} features, "
        f"10 frequency classes) → {layer} {SEQUENCE_UNITS} (last state) → Dense 10 Softmax, "
        f"Adam 1e-3; torch: {peer}(batch_first=True) + Linear",
        to_inputs=as_float32,
        builders={"lamina": w3_lamina(cell), "torch": w3_torch(cell)},
        source=frequency_classes,
    )


WORKLOADS: dict[str, Workload] = {
    "w1": Workload(
        name="w1",
        description="MLP 784 → Dense 128 ReLU → Dense 128 ReLU → Dense 10 Softmax, Adam 1e-3",
        to_inputs=flat_unit_interval,
        builders={"lamina": w1_lamina, "torch": w1_torch, "sklearn": w1_sklearn},
    ),
    "w2": w2(batchnorm=False),
    "w2-bn": w2(batchnorm=True),
    "w3": w3("gru"),
    "w3-lstm": w3("lstm"),
}


# --------------------------------------------------------------------------- worker


def load_data(
    workload: Workload, limit: int | None, test_limit: int | None = None
) -> tuple[Split, Split]:
    (X_train, y_train), (X_test, y_test) = workload.source()
    if limit is not None:
        X_train, y_train = X_train[:limit], y_train[:limit]
    if test_limit is not None:
        X_test, y_test = X_test[:test_limit], y_test[:test_limit]
    return (
        (workload.to_inputs(X_train), y_train.astype(np.int64)),
        (workload.to_inputs(X_test), y_test.astype(np.int64)),
    )


def warm_up(build: Builder, X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    """Train and predict with a throwaway model, so that lazy imports, allocator pools and
    thread start-up are paid before the clock runs."""
    trainer = build(SEED + 1, batch_size)
    n = min(len(X), WARMUP_STEPS * batch_size)
    trainer.train_epoch(X[:n], y[:n])
    trainer.predict(X[: 2 * batch_size])


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def limit_threads(system: str, threads: int) -> None:
    """Pin the system's thread pools to ``threads``, on top of the *_NUM_THREADS variables."""
    # threadpoolctl only reaches libraries already loaded: import the system's first.
    module = importlib.import_module(NATIVE[system])
    if system == "torch":
        module.set_num_threads(threads)
    else:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)


def system_version(system: str) -> str:
    return str(importlib.import_module(MODULE[system]).__version__)


def hidden_libraries(system: str) -> list[str]:
    """Math libraries linked statically, which threadpoolctl cannot see (torch's MKL, oneDNN)."""
    if system != "torch":
        return []
    import torch

    lines = [line.strip() for line in torch.__config__.parallel_info().splitlines()]
    keep = ("Intel(R)", "ATen parallel backend")
    return [line.split(" for ")[0] for line in lines if line.startswith(keep)]


def run_worker(args: argparse.Namespace) -> Result:
    from threadpoolctl import threadpool_info

    started = time.perf_counter()
    workload = WORKLOADS[args.workload]
    build = workload.builders[args.worker]
    limit_threads(args.worker, args.threads)
    (X_train, y_train), (X_test, y_test) = load_data(workload, args.limit, args.test_limit)

    warm_up(build, X_train, y_train, args.batch_size)
    trainer = build(SEED, args.batch_size)
    epoch_seconds = [
        timed(lambda: trainer.train_epoch(X_train, y_train))[0] for _ in range(args.epochs)
    ]
    predictions = [timed(lambda: trainer.predict(X_test)) for _ in range(INFERENCE_REPEATS)]
    predict_seconds = [seconds for seconds, _ in predictions]
    confidences = predictions[-1][1]
    limit = matmul_limit(build, args.worker, X_train, y_train, args.batch_size)

    return {
        "system": args.worker,
        "workload": workload.name,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "threads": args.threads,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "epoch_seconds": epoch_seconds,
        "predict_seconds": predict_seconds,
        "train_samples_per_s": len(X_train) / statistics.median(epoch_seconds),
        "inference_samples_per_s": len(X_test) / statistics.median(predict_seconds),
        "test_accuracy": float(np.mean(confidences.argmax(axis=1) == y_test)),
        "worker_seconds": time.perf_counter() - started,
        "version": system_version(args.worker),
        "numpy": np.__version__,
        "threadpools": threadpool_info(),
        "libraries": hidden_libraries(args.worker),
        **limit,
    }


def matmul_limit(
    build: Builder, system: str, X: np.ndarray, y: np.ndarray, batch_size: int
) -> Result:
    """lamina's matrix-product limit in samples/s (``step_profile.limits``: the products of
    a training step and of an inference batch replayed alone), measured on a throw-away
    model; empty for the other systems."""
    if system != "lamina":
        return {}
    from step_profile import limits

    trainer: Any = build(SEED, batch_size)
    train_seconds, infer_seconds = limits(trainer.model, X, y, batch_size)
    return {
        "limit_train_samples_per_s": batch_size / train_seconds,
        "limit_inference_samples_per_s": batch_size / infer_seconds,
    }


# --------------------------------------------------------------------------- parent


@dataclass(frozen=True)
class Job:
    system: str
    workload: str
    batch_size: int
    epochs: int
    kind: str  # "throughput" or "accuracy"
    repeat: int


def worker_environment(threads: int, extra: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment, the thread counts, then ``--env`` (``KEY=`` removes KEY)."""
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    env.update(extra)  # after the thread variables, so that --env can override them
    return {key: value for key, value in env.items() if not (key in extra and value == "")}


def reported_environment(env: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """What the report names: the thread counts, every inherited math-library variable and
    each ``--env`` (a removed one as ``KEY=`` with "(removed)")."""
    names = [*THREAD_VARIABLES, *sorted(k for k in env if k.startswith(MATH_LIBRARY_PREFIXES))]
    names += [key for key in extra if key not in names]
    return {name: env.get(name, "(removed)") for name in dict.fromkeys(names)}


#: one small float32 product: what every worker does first, in a few milliseconds
BLAS_PROBE = "import numpy as np; a = np.ones((96, 96), np.float32); print(float((a @ a)[0, 0]))"


def blas_problem(env: Mapping[str, str]) -> str | None:
    """Why NumPy's BLAS cannot run in the workers' environment, or None when it can.

    A variable such as ``OPENBLAS_CORETYPE=SKYLAKEX`` on a processor without AVX-512 makes
    every product die with SIGILL; without this probe each of the run's workers would fail
    the same way, and the report would be a table of failures."""
    process = subprocess.run(
        [sys.executable, "-c", BLAS_PROBE], env=env, capture_output=True, text=True, check=False
    )
    if process.returncode == 0 and process.stdout.strip() == "96.0":
        return None
    if process.returncode < 0:
        how = f"died of {signal.Signals(-process.returncode).name}"
    else:
        tail = process.stderr.strip().splitlines()[-1:] or [process.stdout.strip()]
        how = f"failed ({tail[0]})"
    chosen = {k: v for k, v in env.items() if k.startswith(MATH_LIBRARY_PREFIXES)}
    variables = ", ".join(f"{k}={v}" for k, v in sorted(chosen.items())) or "none"
    hint = ""
    if process.returncode == -signal.SIGILL:
        from lamina.system import cpu_description

        avx512 = {True: "has", False: "has no", None: "may lack"}[cpu_description()["avx512"]]
        hint = (
            " SIGILL is an instruction this CPU does not have: kernels chosen for another "
            f"processor (this one {avx512} AVX-512)."
        )
    return (
        f"a float32 product in the workers' environment {how}.{hint} Math-library variables: "
        f"{variables}. Fix: remove or change the variable (--env KEY= removes one), e.g. "
        "OPENBLAS_CORETYPE=Haswell on an AVX2 processor."
    )


def launch(job: Job, args: argparse.Namespace, env: Mapping[str, str]) -> Result:
    command = [
        sys.executable, str(Path(__file__).resolve()),
        "--worker", job.system, "--workload", job.workload,
        "--batch-size", str(job.batch_size), "--epochs", str(job.epochs),
        "--threads", str(args.threads),
    ]  # fmt: skip
    if args.limit is not None:
        command += ["--limit", str(args.limit)]
    if args.test_limit is not None:
        command += ["--test-limit", str(args.test_limit)]
    seconds, process = timed(
        lambda: subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    )
    lines = process.stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        tail = "\n".join(process.stderr.strip().splitlines()[-15:])
        return {**asdict(job), "error": f"exit code {process.returncode}\n{tail}"}
    return {
        **json.loads(lines[-1]),
        "kind": job.kind,
        "repeat": job.repeat,
        "wall_seconds": seconds,
    }


def plan(args: argparse.Namespace, systems: Mapping[str, list[str]]) -> list[Job]:
    """Interleaved order: repeat, then batch size, then system; accuracy runs at the end."""
    jobs = [
        Job(system, workload, batch_size, args.epochs, "throughput", repeat)
        for repeat in range(args.repeats)
        for workload in args.workloads
        for batch_size in args.batch_sizes
        for system in systems[workload]
    ]
    if args.accuracy_epochs:
        jobs += [
            Job(system, workload, args.accuracy_batch_size, args.accuracy_epochs, "accuracy", 0)
            for workload in args.workloads
            for system in systems[workload]
        ]
    return jobs


def available_systems(args: argparse.Namespace) -> dict[str, list[str]]:
    """Per workload, the requested systems that are installed and have a model for it."""
    missing = [s for s in args.systems if importlib.util.find_spec(MODULE[s]) is None]
    for system in missing:
        print(
            f"note: {system} is not importable; skipping it and its ratios "
            "(help: pip install -e '.[bench]')",
            file=sys.stderr,
        )
    chosen: dict[str, list[str]] = {}
    for name in args.workloads:
        builders = WORKLOADS[name].builders
        for system in args.systems:
            if system not in missing and system not in builders:
                print(f"note: {system} has no model for {name}; skipping it there", file=sys.stderr)
        chosen[name] = [s for s in args.systems if s not in missing and s in builders]
    return chosen


def progress(index: int, total: int, result: Result) -> None:
    where = f"[{index}/{total}] {result['workload']} b{result['batch_size']} {result['system']}"
    if "error" in result:
        print(f"{where}: FAILED ({result['error']})", file=sys.stderr)
        return
    print(
        f"{where} ({result['kind']}, repeat {result['repeat'] + 1}): "
        f"train {result['train_samples_per_s']:,.0f}/s, "
        f"inference {result['inference_samples_per_s']:,.0f}/s, "
        f"accuracy {result['test_accuracy']:.4f}, {result['wall_seconds']:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def throughput_runs(
    runs: Sequence[Result], workload: str, batch_size: int, system: str
) -> list[Result]:
    """The successful throughput runs of one system at one workload and batch size."""
    return [
        r
        for r in runs
        if r["kind"] == "throughput"
        and "error" not in r
        and (r["workload"], r["batch_size"], r["system"]) == (workload, batch_size, system)
    ]


def summarize(runs: Sequence[Result], workload: str, batch_size: int, system: str) -> Result | None:
    mine = throughput_runs(runs, workload, batch_size, system)
    if not mine:
        return None
    train = [r["train_samples_per_s"] for r in mine]
    inference = [r["inference_samples_per_s"] for r in mine]
    limits = {
        key: statistics.median(r[key] for r in mine)
        for key in ("limit_train_samples_per_s", "limit_inference_samples_per_s")
        if all(key in r for r in mine)
    }
    return {
        **limits,
        "repeats": len(mine),
        "train_samples_per_s": statistics.median(train),
        "inference_samples_per_s": statistics.median(inference),
        "test_accuracy": statistics.median(r["test_accuracy"] for r in mine),
        "train_spread": max(train) / min(train),
        "inference_spread": max(inference) / min(inference),
    }


def paired_ratios(
    runs: Sequence[Result], workload: str, batch_size: int, peer: str
) -> dict[str, list[float]]:
    """Per repeat, lamina's run ÷ the peer's run of the same repeat (they ran one after the
    other): a machine that speeds up or slows down between repeats moves both runs of a
    pair alike, so these ratios drift less than the two systems' medians do."""

    def by_repeat(system: str) -> dict[int, Result]:
        return {r["repeat"]: r for r in throughput_runs(runs, workload, batch_size, system)}

    mine, theirs = by_repeat("lamina"), by_repeat(peer)
    repeats = sorted(mine.keys() & theirs.keys())
    return {
        kind: [mine[k][key] / theirs[k][key] for k in repeats]
        for kind, key in (
            ("train", "train_samples_per_s"),
            ("inference", "inference_samples_per_s"),
        )
    }


def paired_line(
    runs: Sequence[Result], workload: str, batch_size: int, peers: Sequence[str]
) -> list[str]:
    """The repeat-by-repeat ratios of lamina to each peer: median and range."""
    parts = []
    for peer in peers:
        ratios = paired_ratios(runs, workload, batch_size, peer)
        if not ratios["train"]:
            continue
        shown = [
            f"{kind} {statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"
            for kind, values in ratios.items()
        ]
        parts.append(f"{peer} {', '.join(shown)}")
    if not parts:
        return []
    return ["", "lamina ÷ peer repeat by repeat, median (range): " + "; ".join(parts)]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load: above the thread count, other jobs were competing for cores."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for shown, distribution in DISTRIBUTIONS.items():
        try:
            found[shown] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            found[shown] = "not installed"
    return found


def blas_summary(runs: Sequence[Result]) -> dict[str, str]:
    """Per system, the thread pools threadpoolctl saw in its first successful worker."""
    summary: dict[str, str] = {}
    for run in runs:
        if "error" in run or run["system"] in summary:
            continue
        pools = [describe_pool(pool) for pool in run["threadpools"]] + run["libraries"]
        summary[run["system"]] = "; ".join(dict.fromkeys(pools)) or "none found"
    return summary


def describe_pool(pool: Mapping[str, Any]) -> str:
    """E.g. ``openblas 0.3.31 (pthreads, Haswell), num_threads=2``, from threadpoolctl's info."""
    details = [pool[key] for key in ("threading_layer", "architecture") if pool.get(key)]
    name = " ".join(str(pool[key]) for key in ("internal_api", "version") if pool.get(key))
    if details:
        name += f" ({', '.join(details)})"
    return f"{name}, num_threads={pool['num_threads']}"


def ratio(lamina: Result | None, peer: Result, key: str) -> str:
    """``lamina ÷ peer`` for one quantity; a dash where there is nothing to compare."""
    if lamina is None or lamina is peer:
        return "—"
    return f"{lamina[key] / peer[key]:.2f}×"


def throughput_table(summaries: Mapping[str, Result | None]) -> list[str]:
    lamina = summaries.get("lamina")
    lines = [
        "| system | train samples/s | inference samples/s | test accuracy "
        "| train: lamina ÷ peer | inference: lamina ÷ peer |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for system, s in summaries.items():
        if s is None:
            lines.append(f"| {system} | failed | failed | — | — | — |")
            continue
        lines.append(
            f"| {system} | {s['train_samples_per_s']:,.0f} | {s['inference_samples_per_s']:,.0f} "
            f"| {s['test_accuracy']:.4f} | {ratio(lamina, s, 'train_samples_per_s')} "
            f"| {ratio(lamina, s, 'inference_samples_per_s')} |"
        )
    return lines


def limit_line(lamina: Result | None) -> list[str]:
    """lamina's fraction of its matrix-product limit (``benchmarks/step_profile.py``)."""
    if lamina is None or "limit_train_samples_per_s" not in lamina:
        return []
    train, infer = lamina["limit_train_samples_per_s"], lamina["limit_inference_samples_per_s"]
    return [
        "",
        f"lamina's fraction of its matrix-product limit (the step's products alone: "
        f"{train:,.0f} train / {infer:,.0f} inference samples/s): "
        f"train {lamina['train_samples_per_s'] / train:.2f}, "
        f"inference {lamina['inference_samples_per_s'] / infer:.2f}",
    ]


def accuracy_table(runs: Sequence[Result], workload: str, systems: Sequence[str]) -> list[str]:
    lines = ["| system | test accuracy |", "| --- | ---: |"]
    for system in systems:
        found = [
            r
            for r in runs
            if r["kind"] == "accuracy" and (r["workload"], r["system"]) == (workload, system)
        ]
        cell = f"{found[0]['test_accuracy']:.4f}" if found and "error" not in found[0] else "failed"
        lines.append(f"| {system} | {cell} |")
    return lines


def header(meta: Result) -> list[str]:
    env = ", ".join(f"{k}={v}" for k, v in meta["env"].items())
    blas = [f"  - {system}: {pools}" for system, pools in meta["blas"].items()]
    version_text = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return [
        f"## lamina and peers — {meta['date']}",
        "",
        f"- command: `{meta['command']}`",
        f"- machine: {meta['cpu']} ({os.cpu_count()} logical CPUs), {meta['platform']}",
        f"- threads per system: {meta['threads']}; worker environment: {env}",
        f"- versions: {version_text}",
        "- math libraries and thread pools seen in each system's worker (threadpoolctl; "
        "torch's statically linked MKL and oneDNN from torch.__config__):",
        *blas,
        f"- method: each run in its own process; {meta['repeats']} interleaved repeats of "
        f"{meta['epochs']} epoch(s) on {meta['n_train']:,} training samples after a "
        f"{WARMUP_STEPS}-step warm-up; medians over repeats; inference = "
        f"{INFERENCE_REPEATS} timed predictions of the test set (median). "
        "Ratios > 1 mean lamina is faster.",
        f"- wall time: {meta['wall_seconds']:.0f} s; load average (1/5/15 min) "
        f"at start {meta['load_average']['start']}, at end {meta['load_average']['end']}",
    ]


def report(
    args: argparse.Namespace, meta: Result, runs: Sequence[Result], systems: Mapping[str, list[str]]
) -> str:
    lines = header(meta)
    for name in args.workloads:
        workload = WORKLOADS[name]
        for batch_size in args.batch_sizes:
            summaries = {s: summarize(runs, name, batch_size, s) for s in systems[name]}
            lines += [
                "",
                f"### {name} — batch size {batch_size}",
                "",
                f"{workload.description}. Medians of {args.repeats} runs; "
                f"test accuracy after {args.epochs} epoch(s).",
                "",
            ]
            lines += throughput_table(summaries)
            spreads = ", ".join(
                f"{s} {v['train_spread']:.2f}/{v['inference_spread']:.2f}"
                for s, v in summaries.items()
                if v is not None
            )
            if spreads:
                lines += ["", f"Spread (max ÷ min over repeats, train/inference): {spreads}"]
            if "lamina" in systems[name]:
                peers = [s for s in systems[name] if s != "lamina"]
                lines += paired_line(runs, name, batch_size, peers)
            lines += limit_line(summaries.get("lamina"))
        if args.accuracy_epochs:
            lines += [
                "",
                f"### {name} — test accuracy after {args.accuracy_epochs} epochs "
                f"(batch size {args.accuracy_batch_size}, one run per system)",
                "",
                *accuracy_table(runs, name, systems[name]),
            ]
    return "\n".join(lines)


def write_results(
    args: argparse.Namespace,
    meta: Result,
    runs: Sequence[Result],
    systems: Mapping[str, list[str]],
    stamp: str,
) -> list[Path]:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in args.workloads:
        summary = {
            str(b): {s: summarize(runs, name, b, s) for s in systems[name]}
            for b in args.batch_sizes
        }
        paired = {
            str(b): {s: paired_ratios(runs, name, b, s) for s in systems[name] if s != "lamina"}
            for b in args.batch_sizes
        }
        document = {
            "workload": name,
            "description": WORKLOADS[name].description,
            "meta": meta,
            "summary": summary,
            "paired_ratios": paired,
            "runs": [r for r in runs if r["workload"] == name],
        }
        path = args.results_dir / f"{name}-{stamp}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        paths.append(path)
    return paths


def run_parent(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    now = dt.datetime.now()
    load_before = load_average()
    systems = available_systems(args)
    env = worker_environment(args.threads, args.env)
    problem = blas_problem(env)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    jobs = plan(args, systems)
    runs = []
    for index, job in enumerate(jobs, start=1):
        runs.append(launch(job, args, env))
        progress(index, len(jobs), runs[-1])

    n_train = next((r["n_train"] for r in runs if "n_train" in r), 0)
    meta = {
        "date": now.strftime("%Y-%m-%d %H:%M:%S"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "threads": args.threads,
        "env": reported_environment(env, args.env),
        "versions": versions(),
        "blas": blas_summary(runs),
        "repeats": args.repeats,
        "epochs": args.epochs,
        "n_train": n_train,
        "wall_seconds": time.perf_counter() - started,
        "load_average": {"start": load_before, "end": load_average()},
    }
    print(report(args, meta, runs, systems))
    for path in write_results(args, meta, runs, systems, now.strftime("%Y%m%d-%H%M%S")):
        print(f"\nresults: {path}")
    return 1 if any("error" in r for r in runs) else 0


# --------------------------------------------------------------------------- command line


def comma_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma list of {', '.join(choices)}, received {text!r}"
            )
        return items

    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def positive_ints(text: str) -> list[int]:
    return [positive_int(item) for item in text.split(",")]


def env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, received {text!r}")
    return key, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train and predict with lamina, PyTorch and scikit-learn side by side.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--workloads", type=comma_list(list(WORKLOADS)), default=["w1"], help="comma list"
    )
    parser.add_argument("--batch-sizes", type=positive_ints, default=[128], help="comma list")
    parser.add_argument("--epochs", type=positive_int, default=3, help="timed epochs per run")
    parser.add_argument(
        "--accuracy-epochs",
        type=positive_int,
        default=None,
        help="also one run per system of this many epochs, reporting only test accuracy",
    )
    parser.add_argument(
        "--accuracy-batch-size",
        type=positive_int,
        default=128,
        help="batch size of the accuracy run",
    )
    parser.add_argument("--repeats", type=positive_int, default=3, help="interleaved repeats")
    parser.add_argument(
        "--systems", type=comma_list(SYSTEMS), default=list(SYSTEMS), help="comma list"
    )
    parser.add_argument(
        "--threads", type=positive_int, default=os.cpu_count() or 1, help="threads per system"
    )
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N training samples"
    )
    parser.add_argument(
        "--test-limit", type=positive_int, default=None, help="use only the first N test samples"
    )
    parser.add_argument(
        "--env",
        type=env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set in every worker's environment (repeatable); KEY= removes KEY from it, "
        "e.g. OPENBLAS_CORETYPE= lets OpenBLAS choose its kernels when the shell sets them",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=HERE / "results", help="where the JSON goes"
    )
    worker = parser.add_argument_group("worker (internal: one system, one run, one JSON line)")
    worker.add_argument("--worker", choices=SYSTEMS, default=None)
    worker.add_argument("--workload", choices=list(WORKLOADS), default="w1")
    worker.add_argument("--batch-size", type=positive_int, default=128)
    args = parser.parse_args(argv)
    args.env = dict(args.env)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        print(json.dumps(run_worker(args)))
        return 0
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
