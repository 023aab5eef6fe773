"""Smoke test of benchmarks/peers.py: one tiny run end to end, parent and worker processes.

It checks that the script runs and reports, not how fast anything is (DESIGN §8: performance
is measured in benchmarks/, never by timed unit tests).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PEERS = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"


def run_peers(systems: str, results_dir: Path) -> tuple[str, dict[str, Any]]:
    """Run a tiny benchmark; return its printed report and its results JSON."""
    command = [
        sys.executable, str(PEERS),
        "--systems", systems, "--limit", "2000", "--epochs", "1", "--repeats", "1",
        "--batch-sizes", "128", "--results-dir", str(results_dir),
        # One thread: a multi-threaded OpenBLAS slows down many-fold when other jobs
        # (parallel test runs) hold the cores, and this test only checks the plumbing.
        "--threads", "1", "--env", "LAMINA_BENCH_SMOKE=1",
        "--env", "OPENBLAS_CORETYPE=",  # removed: OpenBLAS chooses its kernels itself
    ]  # fmt: skip
    # an inherited math-library variable, which the report must name
    env = {**os.environ, "OPENBLAS_VERBOSE": "0"}
    process = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert process.returncode == 0, process.stderr
    [path] = results_dir.glob("w1-*.json")
    return process.stdout, json.loads(path.read_text())


def check_run(report: str, results: dict[str, Any], system: str) -> None:
    assert any(line.startswith(f"| {system} |") for line in report.splitlines()), report
    [run] = [r for r in results["runs"] if r["system"] == system]
    assert run["n_train"] == 2000
    assert run["n_test"] == 10_000
    assert run["train_samples_per_s"] > 0
    assert run["inference_samples_per_s"] > 0
    assert 0.0 <= run["test_accuracy"] <= 1.0
    summary = results["summary"]["128"][system]
    assert summary["train_samples_per_s"] == run["train_samples_per_s"]


def test_lamina_run_prints_a_table_and_writes_results(tmp_path: Path) -> None:
    report, results = run_peers("lamina", tmp_path)

    assert "### w1 — batch size 128" in report
    check_run(report, results, "lamina")
    assert results["meta"]["threads"] == 1
    assert results["meta"]["env"]["OPENBLAS_NUM_THREADS"] == "1"
    assert results["meta"]["env"]["LAMINA_BENCH_SMOKE"] == "1"
    assert results["meta"]["env"]["OPENBLAS_CORETYPE"] == "(removed)"
    assert results["meta"]["env"]["OPENBLAS_VERBOSE"] == "0"
    assert "OPENBLAS_CORETYPE=(removed)" in report and "OPENBLAS_VERBOSE=0" in report
    assert set(results["meta"]["versions"]) >= {"python", "numpy", "lamina"}
    # lamina's matrix-product limit (step_profile.limits), and its fraction, per workload
    [run] = results["runs"]
    assert run["limit_train_samples_per_s"] > 0 and run["limit_inference_samples_per_s"] > 0
    assert "lamina's fraction of its matrix-product limit" in report


def test_step_profile_prints_the_tables_of_a_step(tmp_path: Path) -> None:
    # benchmarks/step_profile.py: per-operation times of a W1 step and an inference batch
    command = [
        sys.executable, str(PEERS.parent / "step_profile.py"),
        "--workloads", "w1", "--batch-sizes", "64", "--steps", "3", "--threads", "1",
    ]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    report = process.stdout
    assert "### w1, batch 64, 1 BLAS thread(s)" in report
    for row in ("| dense forward |", "| dense backward |", "| optimizer step |"):
        assert row in report
    fractions = [
        float(line.rsplit("**", 2)[-2]) for line in report.splitlines() if "fraction" in line
    ]
    assert len(fractions) == 2 and all(0 < fraction < 1.5 for fraction in fractions)


def test_w3_gru_and_lstm_runs_report_both_cells(tmp_path: Path) -> None:
    # W3's generated sequences, 2 training steps and 2 test batches per cell
    command = [
        sys.executable, str(PEERS), "--workloads", "w3,w3-lstm", "--systems", "lamina",
        "--limit", "256", "--test-limit", "256", "--epochs", "1", "--repeats", "1",
        "--batch-sizes", "128", "--threads", "1", "--results-dir", str(tmp_path),
    ]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    for name, cell in (("w3", "GRU"), ("w3-lstm", "LSTM")):
        assert f"### {name} — batch size 128" in process.stdout
        assert f"→ {cell} 128 (last state)" in process.stdout
        [path] = tmp_path.glob(f"{name}-2*.json")
        [run] = json.loads(path.read_text())["runs"]
        assert (run["n_train"], run["n_test"]) == (256, 256)
        assert run["train_samples_per_s"] > 0
        assert run["inference_samples_per_s"] > 0


ACCURACY = PEERS.parent / "accuracy.py"


def test_accuracy_quick_run_prints_the_table(tmp_path: Path) -> None:
    # benchmarks/accuracy.py --quick: every problem and initialisation on tiny subsets for
    # one epoch, torch too where it is installed; checks the plumbing, not the figures
    with_torch = importlib.util.find_spec("torch") is not None
    command = [
        sys.executable, str(ACCURACY), "--quick", "--threads", "1",
        "--results-dir", str(tmp_path), *([] if with_torch else ["--no-torch"]),
    ]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    report = process.stdout
    assert "| problem | system / init |" in report, report
    rows = [line for line in report.splitlines() if line.startswith(("| w1 ", "| w2 ", "| waves "))]
    problems = {row.split("|")[1].strip() for row in rows}
    assert problems == {"w1", "w2", "waves"}, report
    assert sum("(lamina's defaults)" in row for row in rows) == 3, report
    assert all(" ± " in row for row in rows), report
    assert any("torch (its defaults)" in row for row in rows) is with_torch, report
    [path] = tmp_path.glob("accuracy-*.json")
    results = json.loads(path.read_text())
    assert results["meta"]["seeds"] == [0, 1]
    for run in results["runs"]:
        assert len(run["test_accuracy"]) == 2
        assert all(0.0 <= accuracy <= 1.0 for accuracy in run["test_accuracy"])


def load_peers() -> Any:
    spec = importlib.util.spec_from_file_location("peers_under_test", PEERS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_paired_ratios_divide_the_runs_of_each_repeat() -> None:
    # the machine slows down by 2× in repeat 1: the pairs keep lamina ÷ torch at 2 and 3
    peers = load_peers()

    def run(system: str, repeat: int, train: float, inference: float) -> dict[str, Any]:
        return {
            "kind": "throughput", "workload": "w1", "batch_size": 32, "system": system,
            "repeat": repeat, "train_samples_per_s": train, "inference_samples_per_s": inference,
        }  # fmt: skip

    runs = [
        run("lamina", 0, 200.0, 300.0), run("torch", 0, 100.0, 100.0),
        run("lamina", 1, 100.0, 150.0), run("torch", 1, 50.0, 50.0),
        run("lamina", 2, 999.0, 999.0),  # its torch run failed: no pair
        {"kind": "throughput", "workload": "w1", "batch_size": 32, "system": "torch",
         "repeat": 2, "error": "exit code 1"},
    ]  # fmt: skip
    ratios = peers.paired_ratios(runs, "w1", 32, "torch")
    assert ratios == {"train": [2.0, 2.0], "inference": [3.0, 3.0]}
    [_, line] = peers.paired_line(runs, "w1", 32, ["torch"])
    assert line.endswith("torch train 2.00× (2.00–2.00), inference 3.00× (3.00–3.00)")
    assert peers.paired_line(runs, "w1", 32, ["sklearn"]) == []


def test_a_worker_environment_that_breaks_numpy_stops_the_run_naming_it(tmp_path: Path) -> None:
    # what OPENBLAS_CORETYPE=SKYLAKEX does on a CPU without AVX-512: every product dies of
    # SIGILL. A NumPy that kills itself the same way stands in for it on any machine.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "numpy.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    command = [
        sys.executable, str(PEERS), "--systems", "lamina", "--limit", "256", "--repeats", "1",
        "--results-dir", str(tmp_path / "results"), "--env", f"PYTHONPATH={fake}",
    ]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 2
    assert "died of SIGILL" in process.stderr and "Fix:" in process.stderr
    assert "Traceback" not in process.stderr and not (tmp_path / "results").exists()
    assert load_peers().blas_problem(dict(os.environ)) is None  # this environment works
