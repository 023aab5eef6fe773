"""The ``lamina`` command (DESIGN §7): train, evaluate, predict, info, cv, search, export,
gradcheck.

Every error prints one line, ``lamina: error: ...``, and exits with status 2 (a run that
diverged: status 1); ``--debug`` shows the traceback instead. Text that comes from a file
(layer and class names, history keys) is printed with its control characters escaped, so a
hostile file cannot send escape sequences to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from lamina.errors import ConfigError, LaminaError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help, or a bad argument (one line, see _Parser)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.command(args) or 0)
    except KeyboardInterrupt:
        print("lamina: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last resort too: a user never gets a traceback
        if args.debug:
            raise
        print(f"lamina: error: {_error_message(error, args.action)}", file=sys.stderr)
        return 2


def _error_message(error: Exception, action: str) -> str:
    """One line saying what went wrong; the fix comes from lamina's own messages."""
    text = str(error)
    if isinstance(error, LaminaError | OSError | ImportError):
        message = text or type(error).__name__
    elif isinstance(error, MemoryError):
        detail = f" ({text})" if text else ""
        message = (
            f"not enough memory to {action}{detail}. Fix: use less data (a [data] limit, a "
            "smaller batch_size) or a machine with more memory."
        )
    elif isinstance(error, RecursionError):
        message = (
            f"an input is nested too deeply to {action} ({text}). Fix: flatten the nesting; "
            "run with --debug for the traceback."
        )
    else:
        message = (
            f"unexpected {type(error).__name__} while trying to {action}: {text}. "
            "Run with --debug for the traceback (and please report it)."
        )
    return printable(" ".join(message.split()))


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Warnings as one line each, like errors, not Python's two lines with a source line."""
    text = printable(" ".join(str(message).split()))
    print(f"lamina: warning: {text}", file=file or sys.stderr)


# C0 and C1 controls (ESC starts terminal escape sequences), line separators and the
# bidirectional overrides that make text display in another order than it is stored.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` with every control character escaped (``\\x1b``), safe to print."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escape, str(text))


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, as lamina's own errors are."""

    def error(self, message: str) -> NoReturn:
        text = printable(" ".join(message.split()))
        self.exit(2, f"lamina: error: {text}. Fix: see `{self.prog} --help`.\n")


def _integer(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, received {text!r}"
            )
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lamina", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model from a TOML config")
    train.add_argument("config", type=Path)
    train.add_argument("--epochs", type=_integer(1), help="override [train] epochs")
    train.add_argument("--out", type=Path, help="output folder (default runs/<config name>)")
    train.add_argument("--seed", type=_integer(0), help="override [model] seed")
    train.add_argument(
        "--resume", type=Path, metavar="CHECKPOINT", help="continue training a saved .lamina model"
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        help="0 quiet, 1 progress bar, 2 a line per epoch (default: [train])",
    )
    train.set_defaults(command=train_command, action="train the model")

    evaluate = commands.add_parser("evaluate", help="loss, accuracy, per-class accuracy")
    evaluate.add_argument("model", type=Path)
    evaluate.add_argument(
        "--data",
        help="a dataset name, an image folder or a CSV file "
        "(default: the test set of the data it was trained on)",
    )
    evaluate.add_argument("--target", help="the target column of a CSV file")
    evaluate.add_argument("--out", type=Path, help="where to write confusion_matrix.png")
    evaluate.set_defaults(command=evaluate_command, action="evaluate the model")

    predict = commands.add_parser("predict", help="classify images or the rows of a CSV")
    predict.add_argument("model", type=Path)
    predict.add_argument("files", nargs="+", type=Path)
    predict.add_argument("--top", type=_integer(1), default=3)
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.set_defaults(command=predict_command, action="predict")

    info = commands.add_parser("info", help="describe a saved model")
    info.add_argument("model", type=Path)
    info.set_defaults(command=info_command, action="describe the model")

    cv = commands.add_parser("cv", help="k-fold cross-validation of a config (notes §1.5)")
    cv.add_argument("config", type=Path)
    _parallel_arguments(cv)
    cv.set_defaults(command=cv_command, action="cross-validate")

    search = commands.add_parser("search", help="grid or random search over config keys")
    search.add_argument("config", type=Path)
    search.add_argument(
        "--grid",
        nargs="+",
        required=True,
        metavar="KEY=V1,V2",
        help="e.g. optimizer.learning_rate=0.001,0.01 layers[0].n_neurons=32,64; "
        "with --random also KEY=log_uniform:1e-4:1e-1",
    )
    search.add_argument(
        "--random", type=_integer(1), metavar="N", help="N random trials instead"
    )
    search.add_argument("--metric", default="accuracy")
    search.add_argument("--mode", choices=("max", "min"), default="max")
    search.add_argument(
        "--refit",
        type=Path,
        metavar="OUT.lamina",
        help="train the best config on all the data and save it",
    )
    _parallel_arguments(search)
    search.set_defaults(command=search_command, action="search")

    export = commands.add_parser("export", help="export a saved model to ONNX")
    export.add_argument("model", type=Path)
    export.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx")
    export.add_argument("--opset", type=_integer(1), default=17)
    export.set_defaults(command=export_command, action="export the model")

    gradcheck = commands.add_parser(
        "gradcheck", help="numerical gradient checks of every registered layer and loss"
    )
    gradcheck.set_defaults(command=gradcheck_command, action="check the gradients")
    return parser


# -- train --------------------------------------------------------------------------------
def train_command(args: argparse.Namespace) -> int:
    import lamina as lm
    from lamina import config as configs

    run = configs.load_config(args.config)
    out = args.out or Path("runs") / args.config.stem
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"--out {out} is a file; it must be the folder the run writes model.lamina and "
            "history.csv into. Fix: pass a folder, new or existing."
        )
    if args.resume:
        model = lm.load_model(args.resume)
    else:
        model = configs.build_model(run, seed=args.seed)
    # before the data is loaded: a bad callback is a config error, not a failure after epoch 1
    callbacks = [
        *configs.build_callbacks(run, out, model),
        lm.callbacks.CSVLogger(out / "history.csv", append=bool(args.resume)),
    ]
    data = configs.load_data(run)
    folders = {out, *(Path(c.path).parent for c in callbacks if hasattr(c, "path"))}
    for folder in folders:
        if "{" not in str(folder):  # a folder named by logged values is not known yet
            folder.mkdir(parents=True, exist_ok=True)
    model.metadata.update(
        {
            "class_names": None if data.class_names is None else list(data.class_names),
            "input_shape": list(data.X_train.shape[1:]),
            "feature_names": None if data.feature_names is None else list(data.feature_names),
            "data": data.description,
            "config": str(args.config),
        }
    )
    epochs = args.epochs if args.epochs is not None else run.train.get("epochs", 10)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        history = model.fit(
            data.X_train,
            data.y_train,
            epochs=model.epochs_done + epochs if args.resume else epochs,
            batch_size=run.train.get("batch_size", 32),
            validation_split=run.train.get("validation_split", 0.0),
            shuffle=run.train.get("shuffle", True),
            verbose=run.train.get("verbose", 1) if args.verbose is None else args.verbose,
            callbacks=callbacks,
            initial_epoch=model.epochs_done if args.resume else 0,
        )
    seconds = time.perf_counter() - start
    for warning in caught:  # a divergence's warnings are said by its error line below
        if not (history.divergence and issubclass(warning.category, RuntimeWarning)):
            _show_warning(warning.message, warning.category, warning.filename, warning.lineno)
    target = out / "model.lamina"
    if history.divergence:
        reason = printable(" ".join(history.divergence.split()))
        print(
            f"lamina: error: training diverged: {reason}; {target} was not written. Fix: "
            "lower the learning rate ([optimizer] learning_rate), or scale the inputs "
            "([[preprocessing]] standard_scaler).",
            file=sys.stderr,
        )
        return 1
    model.save(target)
    written = ["model.lamina", "history.csv"]
    if history.epoch and _plot_history(history, out / "curves.png"):
        written.append("curves.png")
    last = {key: values[-1] for key, values in history.history.items() if values}
    print(
        f"trained {len(history.epoch)} epoch(s) in {seconds:.1f} s: "
        + ", ".join(f"{printable(key)} {value:.4f}" for key, value in last.items())
    )
    if data.X_test is not None and data.y_test is not None:
        result = model.evaluate(data.X_test, data.y_test)
        print("test: " + ", ".join(f"{key} {value:.4f}" for key, value in result.items()))
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    return 0


def _plot_history(history: Any, path: Path) -> bool:
    try:
        from lamina import plot

        plot.history(history, path)
    except ImportError:
        print("matplotlib is not installed: no curves.png (pip install 'lamina[plot]')")
        return False
    return True


# -- evaluate -------------------------------------------------------------------------------
def evaluate_command(args: argparse.Namespace) -> int:
    import lamina as lm
    from lamina import metrics

    model = lm.load_model(args.model)
    if model.loss is None:
        raise ConfigError(f"{args.model} was saved without a loss; it cannot be evaluated.")
    X, y = _evaluation_data(model, args)
    result = model.evaluate(X, y)
    y = np.asarray(y)
    print(", ".join(f"{printable(key)} {value:.4f}" for key, value in result.items()))
    names = model.metadata.get("class_names")
    outputs = model.predict(X)
    if outputs.shape[-1] > 1 and y.ndim == 1:
        matrix = metrics.confusion_matrix(y, outputs.argmax(axis=1), outputs.shape[-1])
        per_class = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
        labels = [_class_name(names, index) for index in range(len(per_class))]
        width = max(len(label) for label in labels)
        print("per-class accuracy:")
        for index, accuracy in enumerate(per_class):
            count = int(matrix[index].sum())
            print(f"  {labels[index]:<{width}}  {accuracy:.4f}  ({count} samples)")
        out = args.out or args.model.parent
        try:
            from lamina import plot

            plot.confusion_matrix(matrix, class_names=names, path=out / "confusion_matrix.png")
            print(f"wrote {out / 'confusion_matrix.png'}")
        except ImportError:
            print("matplotlib is not installed: no confusion_matrix.png")
    return 0


def _class_name(names: Any, index: int) -> str:
    """The printable name of class ``index`` (its number when the model names no classes)."""
    if isinstance(names, list) and index < len(names):
        return printable(names[index])
    return str(index)


def _evaluation_data(model: Any, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    from lamina import config as configs
    from lamina import datasets

    record = model.metadata.get("data")
    if args.data is None:
        if not record:
            raise ConfigError(f"{args.model} does not record its data. Fix: pass --data.")
        # the record comes from a file: checked as strictly as a config's [data] table
        run = configs.data_config(record, args.model)
    elif args.data in configs.DATASETS:
        run = configs.data_config({"dataset": args.data}, args.data)
    elif Path(args.data).suffix.lower() == ".csv":
        target = args.target or (record.get("target") if isinstance(record, dict) else None)
        if not isinstance(target, str):
            raise ConfigError("evaluating a CSV needs its target column. Fix: pass --target.")
        table = datasets.load_csv(args.data, target)
        return table.X, table.y
    else:
        size, grayscale = _image_input(model, args.model)
        folder = datasets.image_folder(
            args.data,
            size=size,
            grayscale=grayscale,
            class_names=model.metadata.get("class_names"),
        )
        return folder.images, folder.labels
    data = configs.load_data(run)
    if data.X_test is not None and data.y_test is not None:
        return data.X_test, data.y_test
    return data.X_train, data.y_train


def _image_input(model: Any, model_path: Path) -> tuple[tuple[int, int], bool]:
    """The (height, width) and grayscale-ness of the images ``model`` takes, from the
    input shape it was trained on ([28, 28, 1] when the file records none)."""
    from lamina.datasets.folders import MAX_IMAGE_PIXELS

    shape = model.metadata.get("input_shape") or [28, 28, 1]
    image = (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(side, int) and not isinstance(side, bool) for side in shape)
        and shape[0] >= 1
        and shape[1] >= 1
        and shape[0] * shape[1] <= MAX_IMAGE_PIXELS
        and shape[2] in (1, 3)
    )
    if not image:
        raise ConfigError(
            f"{model_path} takes inputs of shape {json.dumps(shape)[:80]} (its metadata "
            "input_shape), not images (height, width, 1 or 3 channels). Fix: pass the kind "
            "of data it was trained on (e.g. a .csv file)."
        )
    return (shape[0], shape[1]), shape[2] == 1


# -- predict ---------------------------------------------------------------------------------
def predict_command(args: argparse.Namespace) -> int:
    import lamina as lm

    model = lm.load_model(args.model)
    names = model.metadata.get("class_names")
    rows: list[dict[str, Any]] = []
    for path in args.files:
        labels, inputs = _prediction_inputs(model, args.model, path)
        outputs = model.predict(inputs)
        for label, confidences in zip(labels, outputs, strict=True):
            rows.append(_prediction_row(label, confidences, names, args.top))
    if args.json:
        print(json.dumps(rows, indent=1))  # ensure_ascii: control characters are escaped
    else:
        for row in rows:
            top = ", ".join(f"{c['class']} {c['confidence']:.3f}" for c in row["top"])
            print(
                f"{printable(row['input'])}: {row['class']} ({row['confidence']:.3f})  top: {top}"
            )
    return 0


def _prediction_inputs(model: Any, model_path: Path, path: Path) -> tuple[list[str], np.ndarray]:
    from lamina import datasets

    if path.suffix.lower() == ".csv":
        features = model.metadata.get("feature_names")
        if not features:
            raise ConfigError(f"{path}: this model was not trained on a CSV; pass images.")
        X = datasets.load_csv_features(path, features)
        return [f"{path}, row {row + 2}" for row in range(len(X))], X
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(
            f"{path}: expected an image ({', '.join(sorted(IMAGE_SUFFIXES))}) or a .csv file."
        )
    size, grayscale = _image_input(model, model_path)
    return [str(path)], read_image(path, size, grayscale=grayscale)


def read_image(path: Path, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    """One image file as a (1, H, W, C) uint8 batch, read by the function
    ``lamina.datasets.image_folder`` uses (same checks, conversion and resizing)."""
    from lamina.datasets.folders import load_image

    pixels = load_image(path, grayscale=grayscale, size=size)
    return pixels.reshape(1, size[0], size[1], 1 if grayscale else 3)


def _prediction_row(
    label: str, confidences: np.ndarray, names: list[str] | None, top: int
) -> dict[str, Any]:
    def name(index: int) -> str:
        return _class_name(names, index)

    if confidences.shape[-1] == 1:  # a regression or binary output
        return {
            "input": label,
            "class": None,
            "confidence": float(confidences[0]),
            "top": [],
            "output": confidences.tolist(),
        }
    order = np.argsort(confidences)[::-1][:top]
    return {
        "input": label,
        "class": name(int(order[0])),
        "confidence": float(confidences[order[0]]),
        "top": [{"class": name(int(i)), "confidence": float(confidences[i])} for i in order],
    }


# -- info --------------------------------------------------------------------------------------
def info_command(args: argparse.Namespace) -> int:
    import lamina as lm

    model = lm.load_model(args.model)
    shape = model.metadata.get("input_shape")
    table = io.StringIO()
    with contextlib.redirect_stdout(table):  # it prints layer names, which come from the file
        model.summary(input_shape=_model_input_shape(model, shape))
    print("\n".join(printable(line) for line in table.getvalue().splitlines()))
    pipeline: Any = model.preprocessing
    if pipeline is not None:
        from lamina import preprocessing

        print("preprocessing:", json.dumps(preprocessing.serialize(pipeline)))
    if model.optimizer is not None and model.loss is not None:
        print(
            f"loss: {type(model.loss).__name__}; optimizer: {type(model.optimizer).__name__} "
            f"{json.dumps(model.optimizer.get_config())}, {model.optimizer.iterations} steps"
        )
    print(f"epochs trained: {model.epochs_done}")
    if model.history is not None and model.history.epoch:
        for key, values in model.history.history.items():
            print(f"  {printable(key)}: " + " ".join(f"{v:.4f}" for v in values[-10:]))
    for key in ("class_names", "input_shape", "data"):
        if model.metadata.get(key) is not None:
            print(f"{key}: {json.dumps(model.metadata[key])}")  # ensure_ascii escapes
    return 0


def _model_input_shape(model: Any, raw_shape: list[int] | None) -> tuple[int, ...] | None:
    if raw_shape is None:
        return None
    if model.preprocessing is not None:
        probe = np.zeros((1, *raw_shape), dtype=np.float32)
        return tuple(np.asarray(model.preprocessing.transform(probe)).shape[1:])
    return tuple(raw_shape)


# -- cross-validation and search --------------------------------------------------------------
def _parallel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folds", type=_integer(2), default=5)
    parser.add_argument(
        "--jobs", type=_integer(1), default=1, help="processes (joblib) or Dask workers"
    )
    parser.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler, tcp://host:8786")
    parser.add_argument("--epochs", type=_integer(1), help="override [train] epochs")
    parser.add_argument("--seed", type=_integer(0), default=0)
    parser.add_argument("--csv", type=Path, help="also write the table as CSV")


def _engine(args: argparse.Namespace) -> dict[str, Any]:
    return {"n_jobs": args.jobs, "backend": "dask" if args.dask else "loky", "scheduler": args.dask}


def cv_command(args: argparse.Namespace) -> int:
    from lamina import model_selection

    result = model_selection.cross_validate(
        args.config, cv=args.folds, seed=args.seed, epochs=args.epochs, verbose=1, **_engine(args)
    )
    print(result)
    if args.csv:
        result.to_csv(args.csv)
        print(f"wrote {args.csv}")
    return 0


def search_command(args: argparse.Namespace) -> int:
    from lamina import model_selection

    common = {
        "cv": args.folds,
        "metric": args.metric,
        "mode": args.mode,
        "seed": args.seed,
        "epochs": args.epochs,
        "refit": args.refit is not None,
        "verbose": 1,
        **_engine(args),
    }
    if args.random:
        searcher: Any = model_selection.RandomSearch(
            args.config,
            model_selection.parse_distributions(args.grid),
            n_trials=args.random,
            **common,
        )
    else:
        searcher = model_selection.GridSearch(
            args.config, model_selection.parse_grid(args.grid), **common
        )
    result = searcher.fit()
    print(result)
    if args.csv:
        result.to_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.refit is not None and searcher.best_model_ is not None:
        searcher.best_model_.save(args.refit)
        print(f"wrote {args.refit} (the best config, trained on all the data)")
    return 0


# -- export ----------------------------------------------------------------------------------
def export_command(args: argparse.Namespace) -> int:
    import lamina as lm
    from lamina import onnx

    model = lm.load_model(args.model)
    shape = model.metadata.get("input_shape")
    onnx.export(
        model, args.onnx, opset=args.opset, input_shape=None if shape is None else tuple(shape)
    )
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size:,} bytes)")
    return 0


# -- gradcheck -------------------------------------------------------------------------------
def gradcheck_command(args: argparse.Namespace) -> int:
    from lamina.checks import all_cases

    cases = all_cases()
    width = max(len(case.name) for case in cases)
    failures = 0
    print(f"{'component':<{width}}  max relative error  result")
    for case in cases:
        report = case.run()
        failures += not report.passed
        print(
            f"{case.name:<{width}}  {report.max_error:18.2e}  {'ok' if report.passed else 'FAILED'}"
        )
    print(f"{len(cases) - failures} of {len(cases)} checks passed (float64, tolerance 1e-6)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
