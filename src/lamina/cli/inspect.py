"""``lamina evaluate``, ``predict`` and ``info``: use and describe a saved model. Text that
comes from the model file (layer and class names, history keys) is printed escaped."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

import lamina
from lamina import config as configs
from lamina import datasets, metrics, preprocessing
from lamina.cli.output import printable
from lamina.config.source import shown
from lamina.datasets.images import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, load_image
from lamina.errors import ConfigError


def evaluate_command(args: argparse.Namespace) -> int:
    model = lamina.load_model(args.model)
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
    record = model.metadata.get("data")
    if args.data is None:
        if not record:
            raise ConfigError(f"{args.model} does not record its data. Fix: pass --data.")
        if not isinstance(record, dict):
            raise configs.ConfigFileError(
                f"{args.model}: [data]: expected a table naming a dataset, received "
                f"{shown(record)}. Fix: pass the data explicitly (--data)."
            )
        # the record comes from a file: checked as strictly as a config's [data] table
        data = configs.read_data(record, configs.Source(args.model, ""))
    elif args.data in configs.DATASETS:
        data = configs.read_data({"dataset": args.data}, configs.Source(Path(args.data), ""))
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
    if data.X_test is not None and data.y_test is not None:
        return data.X_test, data.y_test
    return data.X_train, data.y_train


def _image_input(model: Any, model_path: Path) -> tuple[tuple[int, int], bool]:
    """The (height, width) and grayscale-ness of the images ``model`` takes, from the
    input shape it was trained on ([28, 28, 1] when the file records none)."""
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


def predict_command(args: argparse.Namespace) -> int:
    model = lamina.load_model(args.model)
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


def info_command(args: argparse.Namespace) -> int:
    model = lamina.load_model(args.model)
    shape = model.metadata.get("input_shape")
    table = io.StringIO()
    with contextlib.redirect_stdout(table):  # it prints layer names, which come from the file
        model.summary(input_shape=_model_input_shape(model, shape))
    print("\n".join(printable(line) for line in table.getvalue().splitlines()))
    pipeline: Any = model.preprocessing
    if pipeline is not None:
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
