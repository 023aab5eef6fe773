"""lamina.system and ``lamina system``: what lamina runs on, and when the environment holds
OpenBLAS below the CPU (checked against the real OpenBLAS and threadpoolctl)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import lamina
from lamina.system import cpu_description, format_system_info, kernel_advice, math_environment

ZEN5 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 avx512f avx512dq avx512bw

processor\t: 1
model name\t: something else
"""
HASWELL_LIBRARY = {"internal_api": "openblas", "architecture": "Haswell", "version": "0.3.31"}


def test_the_first_processor_of_cpuinfo_is_read() -> None:
    assert cpu_description(ZEN5) == {"model": "AMD EPYC", "avx512": True}
    no_avx512 = ZEN5.replace(" avx512f avx512dq avx512bw", "")
    assert cpu_description(no_avx512)["avx512"] is False
    assert cpu_description("model name : X\n")["avx512"] is None  # no flags line: unknown


def test_advice_only_when_the_environment_holds_openblas_below_the_cpu() -> None:
    cpu = {"model": "AMD EPYC", "avx512": True}
    forced = {"OPENBLAS_CORETYPE": "Haswell"}
    [advice] = kernel_advice(cpu, [HASWELL_LIBRARY], forced)
    assert "OPENBLAS_CORETYPE=Haswell" in advice and "unset OPENBLAS_CORETYPE" in advice
    assert kernel_advice(cpu, [HASWELL_LIBRARY], {}) == []  # OpenBLAS's own choice
    assert kernel_advice({**cpu, "avx512": False}, [HASWELL_LIBRARY], forced) == []
    skylakex = {**HASWELL_LIBRARY, "architecture": "SkylakeX"}
    assert kernel_advice(cpu, [skylakex], {"OPENBLAS_CORETYPE": "SKYLAKEX"}) == []
    mkl = {"internal_api": "mkl", "architecture": None, "version": "2024"}
    assert kernel_advice(cpu, [mkl], forced) == []


def test_math_library_variables_are_listed_and_others_not() -> None:
    environ = {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "2", "HOME": "/root"}
    assert math_environment(environ) == {"OMP_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"}


def run_system(coretype: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype is not None:
        env["OPENBLAS_CORETYPE"] = coretype
    command = [sys.executable, "-m", "lamina", "system", "--json"]
    process = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


def test_lamina_system_reports_the_kernels_the_real_openblas_runs() -> None:
    forced = run_system("Haswell")  # an x86-64 kernel every OpenBLAS build has
    openblas = [lib for lib in forced["blas"] if lib["internal_api"] == "openblas"]
    assert openblas, forced["blas"]  # NumPy's wheels bundle OpenBLAS
    assert {lib["architecture"] for lib in openblas} == {"Haswell"}
    assert forced["environment"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert bool(forced["advice"]) == bool(forced["cpu"]["avx512"])  # advice iff AVX-512
    own = run_system(None)
    assert "OPENBLAS_CORETYPE" not in own["environment"] and own["advice"] == []
    assert own["versions"]["lamina"] == lamina.__version__


def test_show_versions_prints_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    lamina.show_versions()
    text = capsys.readouterr().out
    for start in ("versions: lamina", "platform:", "cpu:", "blas:", "math-library variables:"):
        assert start in text
    info = lamina.system_info()
    assert format_system_info(info).splitlines()[0].startswith("versions: lamina ")
    assert info["cores"] >= 1
