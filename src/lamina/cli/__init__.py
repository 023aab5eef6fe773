"""The ``lamina`` command: train, evaluate, predict, info, cv, search, export,
gradcheck, trace, lr-find, system.

Every error prints one line, ``lamina: error: ...``, and exits with status 2 (a run that
diverged: status 1); ``--debug`` shows the traceback instead. Text that comes from a file
(layer and class names, history keys) is printed with its control characters escaped, so a
hostile file cannot send escape sequences to the terminal (:mod:`lamina.cli.output`).

The commands live in :mod:`~lamina.cli.train`, :mod:`~lamina.cli.inspect` (evaluate,
predict, info), :mod:`~lamina.cli.search` (cv, search), :mod:`~lamina.cli.tools`
(export, gradcheck, system) and :mod:`~lamina.cli.diagnose` (trace, lr-find); the parser below
names them through this module, so that one can be replaced here (as the tests do).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from lamina._version import __version__
from lamina.cli.diagnose import lr_find_command, trace_command
from lamina.cli.inspect import evaluate_command, info_command, predict_command, read_image
from lamina.cli.output import error_message, one_line, printable, show_warning
from lamina.cli.search import DEFAULT_OUTPUT, cv_command, search_command
from lamina.cli.tools import export_command, gradcheck_command, system_command
from lamina.cli.train import train_command
from lamina.datasets.images import IMAGE_SUFFIXES
from lamina.threads import blas_threads

__all__ = [
    "IMAGE_SUFFIXES",
    "cv_command",
    "evaluate_command",
    "export_command",
    "gradcheck_command",
    "info_command",
    "lr_find_command",
    "main",
    "predict_command",
    "printable",
    "read_image",
    "search_command",
    "system_command",
    "trace_command",
    "train_command",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help, or a bad argument (one line, see _Parser)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        with warnings.catch_warnings(), blas_threads(getattr(args, "threads", None)):
            warnings.showwarning = show_warning
            return int(args.command(args) or 0)
    except KeyboardInterrupt:
        print("lamina: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output went to a pipe that closed (`lamina ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141
    except Exception as error:  # the last resort too: a user never gets a traceback
        if args.debug:
            raise
        print(f"lamina: error: {error_message(error, args.action)}", file=sys.stderr)
        return 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, as lamina's own errors are."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"lamina: error: {one_line(message)}. Fix: see `{self.prog} --help`.\n")


def _integer(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, received {text!r}")
        return value

    return parse


DESCRIPTION = """\
Train neural networks described by a TOML config, then evaluate, use, inspect and export
the saved models (one .lamina file each). Run `lamina COMMAND --help` for a command's
options."""

EPILOG = """\
a first run (from the repository, after `make run` or `pip install -e .`):
  lamina train examples/fashion_mnist_cnn.toml --epochs 1 --out runs/cnn
  lamina evaluate runs/cnn/model.lamina
  lamina predict runs/cnn/model.lamina shirt.png --json
  lamina info runs/cnn/model.lamina
  lamina export runs/cnn/model.lamina
  lamina train examples/fashion_mnist_cnn.toml --resume runs/cnn/model.lamina --epochs 1

A mistake in a config stops before training with one line naming the file and line, and
exit status 2; --debug shows the traceback instead."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The help of each command on its name's line: argparse measures the names of
    sub-commands without the indent it then prints them with."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        for command in self._iter_indented_subactions(action):  # indents while iterating
            width = len(command.metavar or command.dest) + self._current_indent
            self._action_max_length = max(self._action_max_length, width)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lamina",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lamina {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", title="commands")

    train = commands.add_parser("train", help="train a model from a TOML config")
    train.add_argument("config", type=Path, help="a TOML run config, e.g. examples/spiral.toml")
    train.add_argument(
        "--epochs",
        type=_integer(1),
        help="override [train] epochs (with --resume: the epochs to add); a cosine_decay "
        "that spans [train] epochs spans these",
    )
    train.add_argument(
        "--out",
        type=Path,
        help="output folder (default runs/<config name>; with --resume, the model's folder)",
    )
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
    train.add_argument(
        "--tensorboard",
        type=Path,
        metavar="DIR",
        help="write TensorBoard event files into DIR (watch: tensorboard --logdir DIR)",
    )
    _threads_argument(train)
    train.set_defaults(command=train_command, action="train the model")

    evaluate = commands.add_parser(
        "evaluate", help="loss, accuracy and per-class accuracy of a saved model"
    )
    evaluate.add_argument("model", type=Path)
    evaluate.add_argument(
        "--data",
        help="a dataset name, an image folder or a CSV file "
        "(default: the test set of the data it was trained on)",
    )
    evaluate.add_argument("--target", help="the target column of a CSV file")
    evaluate.add_argument("--out", type=Path, help="where to write confusion_matrix.png")
    _threads_argument(evaluate)
    evaluate.set_defaults(command=evaluate_command, action="evaluate the model")

    predict = commands.add_parser(
        "predict", help="classify image files or the rows of a CSV with a saved model"
    )
    predict.add_argument("model", type=Path)
    predict.add_argument("files", nargs="+", type=Path)
    predict.add_argument("--top", type=_integer(1), default=3)
    predict.add_argument("--json", action="store_true", help="print JSON")
    _threads_argument(predict)
    predict.set_defaults(command=predict_command, action="predict")

    info = commands.add_parser(
        "info", help="describe a saved model: layers, shapes, preprocessing, history"
    )
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
    search.add_argument("--random", type=_integer(1), metavar="N", help="N random trials instead")
    search.add_argument("--metric", default="accuracy")
    search.add_argument("--mode", choices=("max", "min"), default="max")
    search.add_argument(
        "--refit",
        type=Path,
        nargs="?",
        const=DEFAULT_OUTPUT,
        metavar="OUT.lamina",
        help="train the best config on all the data and save it "
        "(default: runs/<config name>/best.lamina)",
    )
    _parallel_arguments(search)
    search.set_defaults(command=search_command, action="search")

    export = commands.add_parser("export", help="export a saved model to ONNX")
    export.add_argument("model", type=Path)
    export.add_argument(
        "--onnx", type=Path, metavar="OUT.onnx", help="default: beside the model, <model>.onnx"
    )
    export.add_argument("--opset", type=_integer(1), default=17)
    export.set_defaults(command=export_command, action="export the model")

    gradcheck = commands.add_parser(
        "gradcheck", help="numerical gradient checks of every registered layer and loss"
    )
    gradcheck.set_defaults(command=gradcheck_command, action="check the gradients")

    trace = commands.add_parser(
        "trace", help="one training step layer by layer, with formulas (the model is unchanged)"
    )
    trace.add_argument("source", type=Path, metavar="CONFIG|MODEL")
    trace.add_argument("--samples", type=_integer(1), default=2, help="batch size (default 2)")
    trace.add_argument("--values", type=_integer(1), default=4, help="values shown per array")
    trace.set_defaults(command=trace_command, action="trace a training step")

    lr_find = commands.add_parser("lr-find", help="learning-rate range test (Smith 2017)")
    lr_find.add_argument("config", type=Path)
    lr_find.add_argument("--steps", type=_integer(2), default=100)
    lr_find.add_argument("--start", type=float, default=1e-7, help="first learning rate")
    lr_find.add_argument("--stop", type=float, default=10.0, help="last learning rate")
    lr_find.add_argument("--batch-size", type=_integer(1), help="default: [train] batch_size")
    lr_find.add_argument("--out", type=Path, help="where to write lr_find.png")
    lr_find.set_defaults(command=lr_find_command, action="run the learning-rate range test")

    system = commands.add_parser(
        "system", help="versions, CPU, BLAS libraries and the kernels they run (for speed)"
    )
    system.add_argument("--json", action="store_true", help="print one JSON object")
    system.set_defaults(command=system_command, action="describe the system")
    return parser


def _threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=_integer(1),
        metavar="N",
        help="BLAS threads for the matrix products (default: as many as the BLAS library "
        "chooses); 1 is faster beside another busy process. The same N, seed and data give "
        "bit-identical weights; a different N differs in the last bits",
    )


def _parallel_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments ``cv`` and ``search`` share: folds, where they run, the CSV table."""
    parser.add_argument("--folds", type=_integer(2), default=5)
    parser.add_argument(
        "--jobs", type=_integer(1), default=1, help="processes (joblib) or Dask workers"
    )
    parser.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler, tcp://host:8786")
    parser.add_argument("--epochs", type=_integer(1), help="override [train] epochs")
    parser.add_argument("--seed", type=_integer(0), default=0)
    parser.add_argument(
        "--csv",
        type=Path,
        nargs="?",
        const=DEFAULT_OUTPUT,
        metavar="OUT.csv",
        help="also write the table as CSV (default: runs/<config name>/{cv,trials}.csv)",
    )
