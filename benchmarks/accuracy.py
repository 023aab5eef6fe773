"""Test accuracy of lamina's weight initialisations next to PyTorch's defaults (issue 14).

For each problem, lamina is trained with every candidate initialisation and PyTorch with
its own defaults, on the same recipe — the same architecture, optimizer (Adam, η = 1e-3),
epochs, batch size, data and scaling — over several seeds; the report is a Markdown table
of the mean ± standard deviation of the test accuracy per (problem, system / init).

Problems:
    * ``w1``: the MLP of ``peers.py`` on Fashion-MNIST (784 → 128 ReLU → 128 ReLU → 10),
      pixels in [0, 1], batch 128, 10 epochs.
    * ``w2``: the CNN of ``peers.py`` (two 3×3 convolutions with 2×2 max pooling, Dense 128,
      Dropout 0.5), NHWC pixels in [0, 1], batch 128, 5 epochs.
    * ``waves``: a 1-D CNN on noisy synthetic waveforms (:func:`waveforms`: 8 classes, 4
      shapes × 2 frequency bands, length 128), built from ``Conv2D`` with (k, 1) kernels on
      (N, T, 1, 1) inputs (torch: ``Conv2d`` with the same (k, 1) kernels on (N, 1, T, 1)).
      Batch 128, 10 epochs.

Candidates (``--inits``): ``defaults`` (no argument: each layer's own default), and
``WEIGHT[+BIAS]`` given to every Dense and Conv2D layer, e.g. ``glorot_uniform`` (biases at
zero) or ``torch_uniform+torch_uniform`` (PyTorch's initialisation: weights and biases from
U(±1/√fan_in)). Candidates that give the same initialisation to every layer of a problem
(``defaults`` and the name of the defaults, say) are trained once, in one row.

Method: every run is seeded (lamina: ``Model(seed=s)``, which also seeds the shuffling;
torch: ``torch.manual_seed(s)`` and a ``torch.Generator`` seeded with s for the shuffling);
all runs are sequential, in this one process, with ``--threads`` BLAS and torch threads
(default 1; speed is measured by ``peers.py``, one process per run). Another thread count
sums the matrix products in another order, which moves a single run's accuracy by about
±0.002 (W1, seed 0: 0.8775 with 1 thread, 0.8762 with 2): compare figures of one thread
count. The standard deviation is the sample one (n − 1).

Run:
    python benchmarks/accuracy.py                         # the full run (~15 min, 2 cores)
    python benchmarks/accuracy.py --problems waves --seeds 0,1,2,3,4
    python benchmarks/accuracy.py --quick                 # smoke run: tiny subsets, 1 epoch

It prints the Markdown report and writes every run to
benchmarks/results/accuracy-<YYYYmmdd-HHMMSS>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from peers import (
    LEARNING_RATE,
    N_CLASSES,
    TorchTrainer,
    cpu_model,
    flat_unit_interval,
    images_unit_interval,
    load_average,
    versions,
    w1_torch,
    w2_torch,
)

if TYPE_CHECKING:
    import lamina as lm

HERE = Path(__file__).resolve().parent
Data = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Result = dict[str, Any]


# --------------------------------------------------------------------------- initialisations


@dataclass(frozen=True)
class Init:
    """A candidate: ``weight``/``bias`` given to every Dense and Conv2D (None: the default)."""

    name: str
    weight: str | None = None
    bias: str | None = None

    def arguments(self) -> dict[str, str]:
        given = {"weight_init": self.weight, "bias_init": self.bias}
        return {key: value for key, value in given.items() if value is not None}


def parse_init(text: str) -> Init:
    if text == "defaults":
        return Init("defaults")
    weight, _, bias = text.partition("+")
    return Init(text, weight, bias or "zeros")


DEFAULT_INITS = "defaults,glorot_uniform,he_normal,torch_uniform,torch_uniform+torch_uniform"


def effective(init: Init, layer_classes: Sequence[type]) -> tuple[tuple[str, str], ...]:
    """What each parameterized layer class of a problem gets: (weight_init, bias_init)."""
    chosen = []
    for cls in layer_classes:
        parameters = inspect.signature(cls).parameters
        chosen.append(
            (
                init.weight or parameters["weight_init"].default,
                init.bias or parameters["bias_init"].default,
            )
        )
    return tuple(chosen)


def describe(layer_classes: Sequence[type], chosen: tuple[tuple[str, str], ...]) -> str:
    """``Dense glorot_uniform (biases zeros), Conv2D he_normal (biases zeros)``-style text;
    one clause when every layer class gets the same."""
    if len(set(chosen)) == 1:
        weight, bias = chosen[0]
        return f"{weight}, biases {bias}"
    return "; ".join(
        f"{cls.__name__} {weight}, biases {bias}"
        for cls, (weight, bias) in zip(layer_classes, chosen, strict=True)
    )


# --------------------------------------------------------------------------- problems


def waveforms(
    samples: int, rng: np.random.Generator, *, length: int = 128, noise: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy periodic signals of 8 classes: 4 shapes (sine, square, sawtooth, a pulse of duty
    ¼) × 2 frequency bands (2–4 and 5–8 periods per sequence), each with a random frequency
    in its band, phase, amplitude (0.5–1.5) and offset (±0.5), plus N(0, noise²) per step.

    Shape:
        X (samples, length, 1, 1) float32 — a length × 1 image with one channel, the layout
        a Conv2D with (k, 1) kernels convolves along time — and y (samples,) int64.
    """
    y = rng.integers(0, 8, samples)
    shape, band = y % 4, y // 4
    periods = np.where(band == 0, rng.uniform(2, 4, samples), rng.uniform(5, 8, samples))
    phase = rng.uniform(0, 1, samples)
    amplitude = rng.uniform(0.5, 1.5, samples)
    offset = rng.uniform(-0.5, 0.5, samples)
    u = (periods[:, None] * np.arange(length) / length + phase[:, None]) % 1.0  # phase in [0, 1)
    shapes = [
        np.sin(2 * np.pi * u),
        np.where(u < 0.5, 1.0, -1.0),
        2 * u - 1,
        np.where(u < 0.25, 1.5, -0.5),
    ]
    signal = np.choose(shape[:, None], shapes)
    X = amplitude[:, None] * signal + offset[:, None] + noise * rng.standard_normal(u.shape)
    return X.astype(np.float32)[:, :, None, None], y.astype(np.int64)


WAVES_SEED = 2026  # the data set is the same in every run; only the models' seeds vary


def load_waves(train: int, test: int) -> Data:
    rng = np.random.default_rng(WAVES_SEED)
    return waveforms(train, rng), waveforms(test, rng)


def load_fashion(to_inputs: Callable[[np.ndarray], np.ndarray], train: int, test: int) -> Data:
    import lamina as lm

    (X_train, y_train), (X_test, y_test) = lm.datasets.fashion_mnist()
    return (
        (to_inputs(X_train[:train]), y_train[:train].astype(np.int64)),
        (to_inputs(X_test[:test]), y_test[:test].astype(np.int64)),
    )


def w1_layers(init: Init) -> list[lm.layers.Layer]:
    from lamina.layers import Dense

    given = init.arguments()
    return [
        Dense(784, 128, activation="relu", **given),
        Dense(128, 128, activation="relu", **given),
        Dense(128, N_CLASSES, activation="softmax", **given),
    ]


def w2_layers(init: Init) -> list[lm.layers.Layer]:
    from lamina.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D

    given = init.arguments()
    return [
        Conv2D(1, 32, 3, activation="relu", **given),
        MaxPool2D(2),
        Conv2D(32, 64, 3, activation="relu", **given),
        MaxPool2D(2),
        Flatten(),
        Dense(5 * 5 * 64, 128, activation="relu", **given),
        Dropout(0.5),
        Dense(128, N_CLASSES, activation="softmax", **given),
    ]


WAVE_CLASSES = 8


def waves_layers(init: Init) -> list[lm.layers.Layer]:
    from lamina.layers import Conv2D, Dense, Flatten, MaxPool2D

    given = init.arguments()
    return [  # T = 128 → 120 → 30 → 26 → 6 steps
        Conv2D(1, 16, (9, 1), activation="relu", **given),
        MaxPool2D((4, 1)),
        Conv2D(16, 32, (5, 1), activation="relu", **given),
        MaxPool2D((4, 1)),
        Flatten(),
        Dense(6 * 32, 64, activation="relu", **given),
        Dense(64, WAVE_CLASSES, activation="softmax", **given),
    ]


def waves_torch(seed: int, batch_size: int) -> TorchTrainer:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    module = nn.Sequential(
        nn.Conv2d(1, 16, (9, 1)), nn.ReLU(), nn.MaxPool2d((4, 1)),
        nn.Conv2d(16, 32, (5, 1)), nn.ReLU(), nn.MaxPool2d((4, 1)),
        nn.Flatten(), nn.Linear(6 * 32, 64), nn.ReLU(), nn.Linear(64, WAVE_CLASSES),
    )  # fmt: skip
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    return TorchTrainer(module, optimizer, batch_size, seed)


@dataclass(frozen=True)
class Problem:
    name: str
    description: str
    load: Callable[[bool], Data]  # quick -> ((X_train, y_train), (X_test, y_test))
    lamina_layers: Callable[[Init], list[Any]]
    torch_trainer: Callable[[int, int], Any]  # (seed, batch_size) -> peers.TorchTrainer
    epochs: int
    batch_size: int = 128

    def layer_classes(self) -> list[type]:
        """The parameterized layer classes of the lamina model, in order of first use."""
        seen: list[type] = []
        for layer in self.lamina_layers(Init("defaults")):
            if "weight_init" in inspect.signature(type(layer)).parameters:
                if type(layer) not in seen:
                    seen.append(type(layer))
        return seen


QUICK_SIZES = (256, 256)  # training and test samples of a --quick run

PROBLEMS: dict[str, Problem] = {
    "w1": Problem(
        "w1",
        "Fashion-MNIST MLP 784 → 128 ReLU → 128 ReLU → 10 (peers.py W1), pixels in [0, 1]",
        lambda quick: load_fashion(
            flat_unit_interval, *(QUICK_SIZES if quick else (60_000, 10_000))
        ),
        w1_layers,
        w1_torch,
        epochs=10,
    ),
    "w2": Problem(
        "w2",
        "Fashion-MNIST CNN Conv 3×3×32 → MaxPool 2 → Conv 3×3×64 → MaxPool 2 → Dense 128 → "
        "Dropout 0.5 → 10 (peers.py W2), NHWC pixels in [0, 1]",
        lambda quick: load_fashion(
            images_unit_interval, *(QUICK_SIZES if quick else (60_000, 10_000))
        ),
        w2_layers,
        w2_torch,
        epochs=5,
    ),
    "waves": Problem(
        "waves",
        "noisy waveforms, 8 classes, length 128: Conv (9, 1)×16 → MaxPool (4, 1) → "
        "Conv (5, 1)×32 → MaxPool (4, 1) → Dense 64 → 8 (1-D CNN from Conv2D)",
        lambda quick: load_waves(*(QUICK_SIZES if quick else (12_000, 4_000))),
        waves_layers,
        waves_torch,
        epochs=10,
    ),
}


# --------------------------------------------------------------------------- runs


def train_lamina(problem: Problem, init: Init, seed: int, data: Data, epochs: int) -> float:
    import lamina as lm

    (X_train, y_train), (X_test, y_test) = data
    model = lm.Model(problem.lamina_layers(init), seed=seed)
    model.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=LEARNING_RATE),
        metrics=["accuracy"],
    )
    model.fit(X_train, y_train, epochs=epochs, batch_size=problem.batch_size, verbose=0)
    return float(model.evaluate(X_test, y_test)["accuracy"])


def train_torch(problem: Problem, seed: int, data: Data, epochs: int) -> float:
    (X_train, y_train), (X_test, y_test) = data
    trainer = problem.torch_trainer(seed, problem.batch_size)
    for _ in range(epochs):
        trainer.train_epoch(X_train, y_train)
    return float(np.mean(trainer.predict(X_test).argmax(axis=1) == y_test))


@dataclass
class Row:
    """One (problem, system / init) line of the table and its runs."""

    problem: str
    system: str
    label: str
    candidates: list[str]
    init: Init | None  # None for torch
    is_default: bool = False
    accuracies: list[float] | None = None
    seconds: list[float] | None = None


def rows_of(problem: Problem, inits: Sequence[Init], with_torch: bool) -> list[Row]:
    """One row per distinct initialisation of the problem's layers, then torch."""
    classes = problem.layer_classes()
    defaults = effective(Init("defaults"), classes)
    grouped: dict[tuple[tuple[str, str], ...], Row] = {}
    for init in inits:
        key = effective(init, classes)
        if key in grouped:
            grouped[key].candidates.append(init.name)
            continue
        grouped[key] = Row(problem.name, "lamina", describe(classes, key), [init.name], init)
    for key, row in grouped.items():
        row.is_default = key == defaults
    rows = list(grouped.values())
    if with_torch:
        rows.append(Row(problem.name, "torch", "U(±1/√fan_in), biases too", ["torch"], None))
    return rows


def run_row(row: Row, problem: Problem, data: Data, seeds: Sequence[int], epochs: int) -> None:
    row.accuracies, row.seconds = [], []
    for seed in seeds:
        start = time.perf_counter()
        if row.init is None:
            accuracy = train_torch(problem, seed, data, epochs)
        else:
            accuracy = train_lamina(problem, row.init, seed, data, epochs)
        row.seconds.append(time.perf_counter() - start)
        row.accuracies.append(accuracy)
        print(
            f"{problem.name} {row.system} [{row.label}] seed {seed}: accuracy {accuracy:.4f}, "
            f"{row.seconds[-1]:.1f} s",
            file=sys.stderr,
            flush=True,
        )


def limit_threads(threads: int, with_torch: bool) -> None:
    from threadpoolctl import threadpool_limits

    import lamina  # noqa: F401  (threadpoolctl only reaches libraries already loaded)

    threadpool_limits(limits=threads)
    if with_torch:
        import torch

        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- report


def mean_std(values: Sequence[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| problem | system / init | what the layers get | test accuracy, mean ± std "
        "| − torch | per seed | s / run |",
        "| --- | --- | --- | ---: | ---: | --- | ---: |",
    ]
    torch_means = {
        r.problem: statistics.mean(r.accuracies)
        for r in rows
        if r.system == "torch" and r.accuracies
    }
    for row in rows:
        assert row.accuracies is not None and row.seconds is not None
        mean = statistics.mean(row.accuracies)
        if row.system == "torch":
            label, versus = "torch (its defaults)", "—"
        else:
            label = "lamina " + " = ".join(f"`{name}`" for name in row.candidates)
            versus = (
                f"{mean - torch_means[row.problem]:+.4f}" if row.problem in torch_means else "—"
            )
            if row.is_default:
                label = f"**{label}** (lamina's defaults)"
        seeds = ", ".join(f"{a:.4f}" for a in row.accuracies)
        lines.append(
            f"| {row.problem} | {label} | {row.label} | {mean_std(row.accuracies)} | {versus} "
            f"| {seeds} | {statistics.mean(row.seconds):.1f} |"
        )
    return lines


def report(args: argparse.Namespace, meta: Result, rows: Sequence[Row]) -> str:
    lines = [
        f"## Test accuracy by initialisation — {meta['date']}",
        "",
        f"- command: `{meta['command']}`",
        f"- machine: {meta['cpu']} ({os.cpu_count()} logical CPUs); {args.threads} thread(s)",
        f"- versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}",
        f"- seeds {', '.join(map(str, args.seeds))}; Adam η = {LEARNING_RATE}; "
        "categorical cross-entropy (torch: on the logits); std over seeds (n − 1)",
    ]
    for name in args.problems:
        problem = PROBLEMS[name]
        epochs = meta["epochs"][name]
        lines.append(
            f"- {name}: {problem.description}; {epochs} epoch(s), batch {problem.batch_size}, "
            f"{meta['samples'][name][0]:,} training / {meta['samples'][name][1]:,} test samples"
        )
    lines += [
        f"- wall time {meta['wall_seconds']:.0f} s; load average at start "
        f"{meta['load_average']['start']}, at end {meta['load_average']['end']}",
        "",
        *table(rows),
    ]
    return "\n".join(lines)


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


def init_list(text: str) -> list[Init]:
    from lamina import initializers

    inits = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        init = parse_init(item)
        if init.weight is not None and init.weight not in initializers.INITIALIZERS:
            raise argparse.ArgumentTypeError(
                f"unknown weight initializer {init.weight!r} in {item!r}: expected one of "
                f"{sorted(initializers.INITIALIZERS)} (or 'defaults')"
            )
        if init.bias is not None and init.bias not in initializers.BIAS_INITIALIZERS:
            raise argparse.ArgumentTypeError(
                f"unknown bias initializer {init.bias!r} in {item!r}: expected one of "
                f"{sorted(initializers.BIAS_INITIALIZERS)}"
            )
        inits.append(init)
    if not inits:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of initialisations, received {text!r}"
        )
    return inits


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(item) for item in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"expected distinct seeds ≥ 0, e.g. 0,1,2, received {text!r}"
        )
    return seeds


def positive_int(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Test accuracy of lamina's initialisations next to PyTorch's defaults.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--problems", type=comma_list(list(PROBLEMS)), default=list(PROBLEMS))
    parser.add_argument(
        "--inits",
        type=init_list,
        default=DEFAULT_INITS,
        help="comma list of 'defaults' and WEIGHT[+BIAS] initializer names",
    )
    parser.add_argument(
        "--seeds", type=seed_list, default=None, help="comma list (default 0,1,2; --quick 0,1)"
    )
    parser.add_argument("--no-torch", action="store_true", help="train lamina only")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="override every problem's epochs"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="BLAS/torch threads (1: on a busy machine two OpenBLAS threads slowed a W1 run "
        "from 5 s to 160 s); another count sums the products in another order, which moves "
        "single runs' accuracies by about ±0.002",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_SIZES[0]} training and {QUICK_SIZES[1]} test samples, "
        "1 epoch, seeds 0 and 1",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=HERE / "results", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    if isinstance(args.inits, str):  # the default, not parsed by argparse
        args.inits = init_list(args.inits)
    if args.seeds is None:
        args.seeds = [0, 1] if args.quick else [0, 1, 2]
    if args.quick:
        args.epochs = 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with_torch = not args.no_torch
    limit_threads(args.threads, with_torch)
    started, now, load_before = time.perf_counter(), dt.datetime.now(), load_average()
    rows: list[Row] = []
    epochs: dict[str, int] = {}
    samples: dict[str, tuple[int, int]] = {}
    for name in args.problems:
        problem = PROBLEMS[name]
        data = problem.load(args.quick)
        epochs[name] = args.epochs or problem.epochs
        samples[name] = (len(data[0][0]), len(data[1][0]))
        for row in rows_of(problem, args.inits, with_torch):
            run_row(row, problem, data, args.seeds, epochs[name])
            rows.append(row)
    meta = {
        "date": now.strftime("%Y-%m-%d %H:%M:%S"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "threads": args.threads,
        "versions": versions(),
        "seeds": args.seeds,
        "epochs": epochs,
        "samples": samples,
        "wall_seconds": time.perf_counter() - started,
        "load_average": {"start": load_before, "end": load_average()},
    }
    print(report(args, meta, rows))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"accuracy-{now.strftime('%Y%m%d-%H%M%S')}.json"
    runs = [
        {
            "problem": row.problem,
            "system": row.system,
            "init": row.label,
            "candidates": row.candidates,
            "lamina_defaults": row.is_default,
            "seeds": args.seeds,
            "test_accuracy": row.accuracies,
            "seconds": row.seconds,
        }
        for row in rows
    ]
    path.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
