"""The ``lamina`` command (DESIGN §7): train, evaluate, predict, info, cv, search, export,
gradcheck.

Errors in configs, data or model files print one line and exit with status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lamina.errors import ConfigError, LaminaError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.command(args) or 0)
    except (LaminaError, OSError, ImportError) as error:
        if args.debug:
            raise
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"lamina: error: {first_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lamina: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamina", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model from a TOML config")
    train.add_argument("config", type=Path)
    train.add_argument("--epochs", type=int, help="override [train] epochs")
    train.add_argument("--out", type=Path, help="output folder (default runs/<config name>)")
    train.add_argument("--seed", type=int, help="override [model] seed")
    train.add_argument(
        "--resume", type=Path, metavar="CHECKPOINT", help="continue training a saved .lamina model"
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        help="0 quiet, 1 progress bar, 2 a line per epoch (default: [train])",
    )
    train.set_defaults(command=train_command)

    evaluate = commands.add_parser("evaluate", help="loss, accuracy, per-class accuracy")
    evaluate.add_argument("model", type=Path)
    evaluate.add_argument(
        "--data",
        help="a dataset name, an image folder or a CSV file "
        "(default: the test set of the data it was trained on)",
    )
    evaluate.add_argument("--target", help="the target column of a CSV file")
    evaluate.add_argument("--out", type=Path, help="where to write confusion_matrix.png")
    evaluate.set_defaults(command=evaluate_command)

    predict = commands.add_parser("predict", help="classify images or the rows of a CSV")
    predict.add_argument("model", type=Path)
    predict.add_argument("files", nargs="+", type=Path)
    predict.add_argument("--top", type=int, default=3)
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.set_defaults(command=predict_command)

    info = commands.add_parser("info", help="describe a saved model")
    info.add_argument("model", type=Path)
    info.set_defaults(command=info_command)

    cv = commands.add_parser("cv", help="k-fold cross-validation of a config (notes §1.5)")
    cv.add_argument("config", type=Path)
    _parallel_arguments(cv)
    cv.set_defaults(command=cv_command)

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
    search.add_argument("--random", type=int, metavar="N", help="N random trials instead")
    search.add_argument("--metric", default="accuracy")
    search.add_argument("--mode", choices=("max", "min"), default="max")
    search.add_argument(
        "--refit",
        type=Path,
        metavar="OUT.lamina",
        help="train the best config on all the data and save it",
    )
    _parallel_arguments(search)
    search.set_defaults(command=search_command)

    export = commands.add_parser("export", help="export a saved model to ONNX")
    export.add_argument("model", type=Path)
    export.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx")
    export.add_argument("--opset", type=int, default=17)
    export.set_defaults(command=export_command)

    gradcheck = commands.add_parser(
        "gradcheck", help="numerical gradient checks of every registered layer and loss"
    )
    gradcheck.set_defaults(command=gradcheck_command)
    return parser


# -- train --------------------------------------------------------------------------------
def train_command(args: argparse.Namespace) -> int:
    import lamina as lm
    from lamina import config as configs

    run = configs.load_config(args.config)
    data = configs.load_data(run)
    out = args.out or Path("runs") / args.config.stem
    out.mkdir(parents=True, exist_ok=True)
    if args.resume:
        model = lm.load_model(args.resume)
    else:
        model = configs.build_model(run, seed=args.seed)
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
    callbacks = [
        *configs.build_callbacks(run, out),
        lm.callbacks.CSVLogger(out / "history.csv", append=bool(args.resume)),
    ]
    start = time.perf_counter()
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
    model.save(out / "model.lamina")
    written = ["model.lamina", "history.csv"]
    if history.epoch and _plot_history(history, out / "curves.png"):
        written.append("curves.png")
    last = {key: values[-1] for key, values in history.history.items() if values}
    print(
        f"trained {len(history.epoch)} epoch(s) in {seconds:.1f} s: "
        + ", ".join(f"{key} {value:.4f}" for key, value in last.items())
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
    print(", ".join(f"{key} {value:.4f}" for key, value in result.items()))
    names = model.metadata.get("class_names")
    outputs = model.predict(X)
    if outputs.shape[-1] > 1 and y.ndim == 1:
        matrix = metrics.confusion_matrix(y, outputs.argmax(axis=1), outputs.shape[-1])
        per_class = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
        width = max(len(str(n)) for n in (names or range(len(per_class))))
        print("per-class accuracy:")
        for index, accuracy in enumerate(per_class):
            label = names[index] if names else str(index)
            print(f"  {label:<{width}}  {accuracy:.4f}  ({int(matrix[index].sum())} samples)")
        out = args.out or args.model.parent
        try:
            from lamina import plot

            plot.confusion_matrix(matrix, class_names=names, path=out / "confusion_matrix.png")
            print(f"wrote {out / 'confusion_matrix.png'}")
        except ImportError:
            print("matplotlib is not installed: no confusion_matrix.png")
    return 0


def _evaluation_data(model: Any, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    from lamina import config as configs
    from lamina import datasets

    if args.data is None:
        spec = model.metadata.get("data")
        if not spec:
            raise ConfigError(f"{args.model} does not record its data. Fix: pass --data.")
    elif args.data in configs.DATASETS:
        spec = {"dataset": args.data}
    elif Path(args.data).suffix.lower() == ".csv":
        target = args.target or (model.metadata.get("data") or {}).get("target")
        if target is None:
            raise ConfigError("evaluating a CSV needs its target column. Fix: pass --target.")
        table = datasets.load_csv(args.data, target)
        return table.X, table.y
    else:
        shape = model.metadata.get("input_shape") or [28, 28, 1]
        folder = datasets.image_folder(
            args.data,
            size=tuple(shape[:2]),
            grayscale=shape[-1] == 1,
            class_names=model.metadata.get("class_names"),
        )
        return folder.images, folder.labels
    data = configs.load_data(
        configs.RunConfig(
            path=args.model,
            text="",
            data=dict(spec),
            preprocessing=[],
            augmentation=[],
            model={},
            layers=[],
            compile={},
            optimizer={},
            train={},
        )
    )
    if data.X_test is not None and data.y_test is not None:
        return data.X_test, data.y_test
    return data.X_train, data.y_train


# -- predict ---------------------------------------------------------------------------------
def predict_command(args: argparse.Namespace) -> int:
    import lamina as lm

    model = lm.load_model(args.model)
    names = model.metadata.get("class_names")
    rows: list[dict[str, Any]] = []
    for path in args.files:
        labels, inputs = _prediction_inputs(model, path)
        outputs = model.predict(inputs)
        for label, confidences in zip(labels, outputs, strict=True):
            rows.append(_prediction_row(label, confidences, names, args.top))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            top = ", ".join(f"{c['class']} {c['confidence']:.3f}" for c in row["top"])
            print(f"{row['input']}: {row['class']} ({row['confidence']:.3f})  top: {top}")
    return 0


def _prediction_inputs(model: Any, path: Path) -> tuple[list[str], np.ndarray]:
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
    shape = model.metadata.get("input_shape") or [28, 28, 1]
    return [str(path)], read_image(path, (shape[0], shape[1]), grayscale=shape[-1] == 1)


def read_image(path: Path, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    """One image file as a (1, H, W, C) uint8 batch, converted and resized as
    ``lamina.datasets.image_folder`` does for training."""
    from PIL import Image, UnidentifiedImageError

    from lamina.errors import DataIntegrityError

    try:
        with Image.open(path) as image:
            converted = image.convert("L" if grayscale else "RGB")
            if converted.size != (size[1], size[0]):
                converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise DataIntegrityError(f"{path}: not a readable image ({error}).") from None
    return pixels.reshape(1, size[0], size[1], 1 if grayscale else 3)


def _prediction_row(
    label: str, confidences: np.ndarray, names: list[str] | None, top: int
) -> dict[str, Any]:
    def name(index: int) -> str:
        return names[index] if names else str(index)

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
    model.summary(input_shape=_model_input_shape(model, shape))
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
            print(f"  {key}: " + " ".join(f"{v:.4f}" for v in values[-10:]))
    for key in ("class_names", "input_shape", "data"):
        if model.metadata.get(key) is not None:
            print(f"{key}: {json.dumps(model.metadata[key])}")
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
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="processes (joblib) or Dask workers")
    parser.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler, tcp://host:8786")
    parser.add_argument("--epochs", type=int, help="override [train] epochs")
    parser.add_argument("--seed", type=int, default=0)
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
