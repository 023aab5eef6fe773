"""What lamina runs on: versions, the CPU, the BLAS libraries and the kernels they chose.

lamina's speed is its BLAS library's for the matrix products (``docs/guides/performance.md``).
OpenBLAS picks its kernels for the CPU when it loads, unless ``OPENBLAS_CORETYPE`` names
them; a shell, a container image or a cluster's modules may set that variable without the
user knowing. On a 2-core AMD Zen 5 with AVX-512, a preset ``OPENBLAS_CORETYPE=Haswell``
(the AVX2 kernels) halved the speed of W1's matrix products and made W2 train 1.3× slower
(``benchmarks/README.md``, 2026-12-02). :func:`system_info` collects what decides this, and
says when an environment variable holds the kernels below what the CPU has; ``lamina
system`` and :func:`show_versions` print it (as scikit-learn's ``show_versions`` does).
Nothing is changed: a variable the user set stays their choice.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MATH_LIBRARY_PREFIXES",
    "format_system_info",
    "kernel_advice",
    "show_versions",
    "system_info",
]

#: environment variables that steer the math libraries' kernels and threads
MATH_LIBRARY_PREFIXES = ("OPENBLAS_", "GOTO", "MKL_", "OMP_", "KMP_", "DNNL_", "ONEDNN_")
#: OpenBLAS kernel families that use AVX-512 (threadpoolctl's ``architecture``, lower case)
AVX512_KERNELS = frozenset({"skylakex", "cooperlake", "sapphirerapids"})
PACKAGES = ("numpy", "scipy", "threadpoolctl", "safetensors", "tqdm", "matplotlib", "torch")
CPUINFO = "/proc/cpuinfo"


def cpu_description(cpuinfo: str | None = None) -> dict[str, Any]:
    """The first processor's model name and whether it has AVX-512 (``avx512f``), from
    ``/proc/cpuinfo`` (or ``cpuinfo``); elsewhere ``platform.processor()`` and None."""
    if cpuinfo is None:
        try:
            with open(CPUINFO, encoding="utf-8", errors="replace") as file:
                cpuinfo = file.read(1 << 16)  # the first processor's block is ~2 KB
        except OSError:  # not Linux
            return {"model": platform.processor() or platform.machine(), "avx512": None}
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip() and fields:
            break  # the end of the first processor's block
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", platform.machine()),
        "avx512": "avx512f" in flags if flags else None,
    }


def math_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every environment variable that steers a math library (:data:`MATH_LIBRARY_PREFIXES`)."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in sorted(environ) if k.startswith(MATH_LIBRARY_PREFIXES)}


def blas_libraries() -> list[dict[str, Any]]:
    """The BLAS libraries loaded in this process (threadpoolctl): API, version, kernels,
    threading layer, threads and file."""
    from threadpoolctl import threadpool_info  # NumPy, loaded with lamina, brought its BLAS

    keys = ("internal_api", "version", "architecture", "threading_layer", "num_threads")
    return [
        {**{k: info.get(k) for k in keys}, "file": os.path.basename(str(info.get("filepath")))}
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]


def kernel_advice(
    cpu: Mapping[str, Any], libraries: list[dict[str, Any]], environment: Mapping[str, str]
) -> list[str]:
    """What to change when an environment variable holds OpenBLAS below the CPU's AVX-512."""
    forced = environment.get("OPENBLAS_CORETYPE")
    if not forced or not cpu.get("avx512"):
        return []
    slow = [
        lib
        for lib in libraries
        if lib["internal_api"] == "openblas"
        and str(lib["architecture"]).lower() not in AVX512_KERNELS
    ]
    if not slow:
        return []
    return [
        f"OPENBLAS_CORETYPE={forced} makes OpenBLAS run its {slow[0]['architecture']} kernels "
        "(no AVX-512) on this CPU, which has AVX-512. Unless you chose that, unset it before "
        "starting Python (`unset OPENBLAS_CORETYPE`) and OpenBLAS picks its kernels itself: "
        "on a 2-core AMD Zen 5 the AVX-512 ones made W1's matrix products twice as fast."
    ]


def system_info() -> dict[str, Any]:
    """Versions, platform, CPU, BLAS libraries, math-library variables and kernel advice."""
    from lamina._version import __version__
    from lamina.threads import usable_cores

    versions = {"lamina": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    environment = math_environment()  # before threadpoolctl sets KMP_DUPLICATE_LIB_OK
    cpu = cpu_description()
    libraries = blas_libraries()
    return {
        "versions": versions,
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": usable_cores(),
        "blas": libraries,
        "environment": environment,
        "advice": kernel_advice(cpu, libraries, environment),
    }


def format_system_info(info: Mapping[str, Any]) -> str:
    """:func:`system_info` as the lines ``lamina system`` prints."""
    cpu = info["cpu"]
    avx512 = {True: "yes", False: "no", None: "unknown"}[cpu["avx512"]]
    lines = [
        "versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"platform: {info['platform']}",
        f"cpu: {cpu['model']} ({info['cores']} usable cores; AVX-512: {avx512})",
        "blas:",
        *(
            f"  {lib['internal_api']} {lib['version']}: {lib['architecture']} kernels, "
            f"{lib['num_threads']} threads ({lib['threading_layer']}), {lib['file']}"
            for lib in info["blas"]
        ),
    ]
    if not info["blas"]:
        lines.append("  (none found)")
    environment = info["environment"]
    lines.append(
        "math-library variables: "
        + (", ".join(f"{k}={v}" for k, v in environment.items()) if environment else "none set")
    )
    lines += [f"advice: {text}" for text in info["advice"]]
    return "\n".join(lines)


def show_versions() -> None:
    """Print :func:`system_info` (the text of ``lamina system``)."""
    print(format_system_info(system_info()))
