"""``lamina export`` (a saved model to ONNX), ``lamina gradcheck`` (the numerical gradient
checks of every registered layer and loss) and ``lamina system`` (what lamina runs on)."""

from __future__ import annotations

import argparse
import json

import lamina
from lamina import checks, onnx, system


def export_command(args: argparse.Namespace) -> int:
    model = lamina.load_model(args.model)
    shape = model.metadata.get("input_shape")
    target = args.onnx or args.model.with_suffix(".onnx")  # beside the model by default
    onnx.export(
        model, target, opset=args.opset, input_shape=None if shape is None else tuple(shape)
    )
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")
    return 0


def gradcheck_command(args: argparse.Namespace) -> int:
    cases = checks.all_cases()
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


def system_command(args: argparse.Namespace) -> int:
    info = system.system_info()
    print(json.dumps(info, indent=2) if args.json else system.format_system_info(info))
    return 0
