"""``lamina train CONFIG``: build, train and save the model a TOML config describes."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lamina
from lamina import callbacks as callback_classes
from lamina import config as configs
from lamina.cli.output import one_line, printable, show_warning
from lamina.errors import ConfigError


def train_command(args: argparse.Namespace) -> int:
    run = configs.load_config(args.config)
    # a resumed run continues in its model's folder unless --out says otherwise
    default = args.resume.parent if args.resume else Path("runs") / args.config.stem
    out = args.out or default
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"--out {out} is a file; it must be the folder the run writes model.lamina and "
            "history.csv into. Fix: pass a folder, new or existing."
        )
    if args.resume:
        model = lamina.load_model(args.resume)
    else:
        model = configs.build_model(run, seed=args.seed)
    epochs = args.epochs if args.epochs is not None else run.train.get("epochs", 10)
    total = model.epochs_done + epochs if args.resume else epochs
    # before the data is loaded: a bad callback is a config error, not a failure after epoch 1
    callbacks = [
        *configs.build_callbacks(run, out, model, epochs=total),
        callback_classes.CSVLogger(out / "history.csv", append=bool(args.resume)),
    ]
    if args.tensorboard is not None:
        callbacks.append(callback_classes.TensorBoard(args.tensorboard))
    data = configs.load_data(run)
    configs.check_fit(run, model, data, resumed=args.resume)  # before any folder is made
    folders = {out, *(Path(c.path).parent for c in callbacks if hasattr(c, "path"))}
    with _new_folders_removed_on_error(folders):
        return _train(args, run, model, data, callbacks, out, epochs=total)


@contextlib.contextmanager
def _new_folders_removed_on_error(folders: set[Path]) -> Iterator[None]:
    """Make ``folders``; if the block raises, remove those it made that are still empty,
    so that a failed run leaves no empty run folder behind."""
    made: list[Path] = []
    for folder in sorted(folders, key=lambda f: len(f.parts)):
        if "{" in str(folder):  # a folder named by logged values is not known yet
            continue
        missing = [folder, *folder.parents]
        missing = [f for f in missing if not f.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        made.extend(sorted(missing, key=lambda f: len(f.parts)))
    try:
        yield
    except BaseException:
        for folder in sorted(made, key=lambda f: -len(f.parts)):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise


def _train(
    args: argparse.Namespace,
    run: configs.RunConfig,
    model: Any,
    data: configs.Data,
    callbacks: list[Any],
    out: Path,
    *,
    epochs: int,
) -> int:
    """Fit ``model`` on ``data`` for ``epochs`` in all, save it and report."""
    model.metadata.update(
        {
            "class_names": None if data.class_names is None else list(data.class_names),
            "input_shape": list(data.X_train.shape[1:]),
            "feature_names": None if data.feature_names is None else list(data.feature_names),
            "data": data.description,
            "config": str(args.config),
        }
    )
    before = model.epochs_done
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        history = model.fit(
            data.X_train,
            data.y_train,
            epochs=epochs,
            batch_size=run.train.get("batch_size", 32),
            validation_split=run.train.get("validation_split", 0.0),
            shuffle=run.train.get("shuffle", True),
            class_weight=run.train.get("class_weight"),
            verbose=run.train.get("verbose", 1) if args.verbose is None else args.verbose,
            callbacks=callbacks,
            initial_epoch=before,
            threads=args.threads,
        )
    seconds = time.perf_counter() - start
    for warning in caught:  # a divergence's warnings are said by its error line below
        if not (history.divergence and issubclass(warning.category, RuntimeWarning)):
            show_warning(warning.message, warning.category, warning.filename, warning.lineno)
    target = out / "model.lamina"
    if history.divergence:
        print(
            f"lamina: error: training diverged: {one_line(history.divergence)}; {target} was "
            "not written. Fix: lower the learning rate ([optimizer] learning_rate), or scale "
            "the inputs ([[preprocessing]] standard_scaler).",
            file=sys.stderr,
        )
        return 1
    model.save(target)
    written = ["model.lamina", "history.csv"]
    if history.epoch and _plot_history(history, out / "curves.png"):
        written.append("curves.png")
    last = {key: values[-1] for key, values in history.history.items() if values}
    print(
        f"trained {model.epochs_done - before} epoch(s) in {seconds:.1f} s"
        + (_epochs_after(before, model.epochs_done) if before else "")
        + ": "
        + ", ".join(f"{printable(key)} {value:.4f}" for key, value in last.items())
    )
    if data.X_test is not None and data.y_test is not None:
        result = model.evaluate(data.X_test, data.y_test)
        print("test: " + ", ".join(f"{key} {value:.4f}" for key, value in result.items()))
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    for callback in callbacks:
        if isinstance(callback, callback_classes.TensorBoard):
            print(f"watch it in TensorBoard: tensorboard --logdir {callback.log_dir}")
    return 0


def _epochs_after(before: int, done: int) -> str:
    """Which of the model's epochs a resumed run trained: `` (epochs 6–10)``."""
    return f" (epoch {done})" if done == before + 1 else f" (epochs {before + 1}–{done})"


def _plot_history(history: Any, path: Path) -> bool:
    try:
        from lamina import plot

        plot.history(history, path)
    except ImportError:
        print("matplotlib is not installed: no curves.png (pip install 'lamina[plot]')")
        return False
    return True
