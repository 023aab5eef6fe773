"""``lamina trace CONFIG|MODEL`` (one training step, layer by layer, with its formulas) and
``lamina lr-find CONFIG`` (the learning-rate range test). Neither changes or writes a
model: the trace's step and the sweep are undone (``engine.rewind.unchanged``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

import lamina
from lamina import config as configs
from lamina.cli.output import printable
from lamina.errors import ConfigError


def trace_command(args: argparse.Namespace) -> int:
    model, X, y = _model_and_data(args.source)
    table = model.trace(X[: args.samples], y[: args.samples]).table(values=args.values)
    print("\n".join(printable(line) for line in table.splitlines()))  # names from a file
    return 0


def lr_find_command(args: argparse.Namespace) -> int:
    run = configs.load_config(args.config)
    model = configs.build_model(run)
    data = configs.load_data(run)
    configs.check_fit(run, model, data)
    batch_size = args.batch_size or run.train.get("batch_size", 32)
    result = lamina.lr_finder(
        model,
        data.X_train,
        data.y_train,
        start=args.start,
        stop=args.stop,
        steps=args.steps,
        batch_size=batch_size,
    )
    print(f"learning-rate range test, {len(result.learning_rates)} steps of {batch_size}:")
    print("  learning rate  loss    smoothed")
    for index in np.linspace(0, len(result.learning_rates) - 1, 12).round().astype(int):
        rate, loss = result.learning_rates[index], result.losses[index]
        print(f"  {rate:13.3g}  {loss:6.4f}  {result.smoothed[index]:.4f}")
    print(result)
    out = args.out or Path("runs") / args.config.stem
    try:
        out.mkdir(parents=True, exist_ok=True)
        result.plot(out / "lr_find.png")
        print(f"wrote {out / 'lr_find.png'}")
    except ImportError:
        print("matplotlib is not installed: no lr_find.png (pip install 'lamina[plot]')")
    return 0


def _model_and_data(source: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    """A model and training data from a config (the model built, its preprocessing fitted
    on the training data as ``fit`` would) or from a saved ``.lamina`` model (with the
    data its metadata records)."""
    if source.suffix == ".lamina":
        model = lamina.load_model(source)
        record = model.metadata.get("data")
        if not isinstance(record, dict):
            raise ConfigError(
                f"{source} does not record the data it was trained on. Fix: trace its "
                "config instead (lamina trace CONFIG.toml)."
            )
        data = configs.read_data(record, configs.Source(source, ""))
    else:
        run = configs.load_config(source)
        model = configs.build_model(run)
        data = configs.load_data(run)
        configs.check_fit(run, model, data)
    if model.loss is None:
        raise ConfigError(f"{source} has no loss, so there is no training step to trace.")
    pipeline = model.preprocessing
    if pipeline is not None and not getattr(pipeline, "fitted", False):
        pipeline.fit(data.X_train, data.y_train)
    return model, data.X_train, data.y_train
