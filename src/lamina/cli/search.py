"""``lamina cv`` and ``lamina search``: cross-validate a config, or search over its keys."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lamina import model_selection

# --csv or --refit without a path: a name no user types
DEFAULT_OUTPUT = "runs/<config name>/"


def _output(args: argparse.Namespace, given: Path | str, name: str) -> Path:
    """``given``, or ``runs/<config name>/name`` for a bare ``--csv``/``--refit``; its
    folder is made."""
    default = Path(given) == Path(DEFAULT_OUTPUT)  # argparse may have made it a Path
    path = Path("runs", args.config.stem, name) if default else Path(given)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _engine(args: argparse.Namespace) -> dict[str, Any]:
    return {"n_jobs": args.jobs, "backend": "dask" if args.dask else "loky", "scheduler": args.dask}


def cv_command(args: argparse.Namespace) -> int:
    result = model_selection.cross_validate(
        args.config, cv=args.folds, seed=args.seed, epochs=args.epochs, verbose=1, **_engine(args)
    )
    print(result)
    if args.csv is not None:
        path = _output(args, args.csv, "cv.csv")
        result.to_csv(path)
        print(f"wrote {path}")
    return 0


def search_command(args: argparse.Namespace) -> int:
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
    searcher: model_selection.GridSearch | model_selection.RandomSearch
    if args.random:
        searcher = model_selection.RandomSearch(
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
    if args.csv is not None:
        path = _output(args, args.csv, "trials.csv")
        result.to_csv(path)
        print(f"wrote {path}")
    if args.refit is not None and searcher.best_model_ is not None:
        path = _output(args, args.refit, "best.lamina")
        searcher.best_model_.save(path)
        print(f"wrote {path} (the best config, trained on all the data)")
    return 0
