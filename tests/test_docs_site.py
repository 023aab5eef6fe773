"""The documentation site builds with no warning, and its API reference is complete.

``mkdocs build --strict`` (mkdocs.yml) fails on a broken link, a page missing from the
menu or a docstring griffe cannot parse; the reference's inventory (objects.inv) must hold
every public name; every public class and function has a docstring. docs/about-the-docs.md
describes the site.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import pytest

import lamina

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIME_LIMIT = 300  # seconds; the build takes ~15 s on 2 cores


def public_modules() -> list[ModuleType]:
    """``lamina`` and the modules it exports, plus ``lamina.sklearn``."""
    names = [n for n in lamina.__all__ if inspect.ismodule(getattr(lamina, n))]
    return [
        lamina,
        *(importlib.import_module(f"lamina.{n}") for n in names),
        importlib.import_module("lamina.sklearn"),
    ]


def public_names(module: ModuleType) -> list[str]:
    """A module's ``__all__``, or, without one, the public names it defines (not imports)."""
    if hasattr(module, "__all__"):
        names = list(module.__all__)
    else:
        names = [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_")
            and not inspect.ismodule(obj)
            and not isinstance(obj, TypeVar)
            and getattr(obj, "__module__", None) == module.__name__
        ]
    return [n for n in names if not (n.startswith("__") or inspect.ismodule(getattr(module, n)))]


def inventory(path: Path) -> dict[str, str]:
    """objects.inv (Sphinx's format, which mkdocstrings writes): {name: page#anchor}."""
    data = path.read_bytes()
    for _ in range(4):  # four header lines, then zlib
        data = data[data.index(b"\n") + 1 :]
    entries = {}
    for line in zlib.decompress(data).decode().splitlines():
        match = re.match(r"(\S+)\s+\S+\s+-?\d+\s+(\S+)", line)
        if match:
            name, uri = match.groups()
            entries[name] = uri.replace("$", name)
    return entries


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.fail('mkdocs is not installed: pip install -e ".[docs]"')
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIME_LIMIT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-6000:]}"
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert not warnings, "\n".join(warnings)
    return out


def test_the_site_builds_strictly(site: Path) -> None:
    for page in (
        "index.html",
        "formulas.html",
        "reference/layers.html",
        "guides/getting-started.html",
    ):
        assert (site / page).is_file(), page
    assert (site / "javascripts/mathjax/tex-svg.js").stat().st_size > 1_000_000  # MathJax, offline


def test_modules_without_all_list_their_names_in_the_reference() -> None:
    """Their pages name the members to show (the rest of such a module is internal)."""
    for module in public_modules():
        if hasattr(module, "__all__") or module is lamina:
            continue
        page = (ROOT / "docs/reference" / (module.__name__.split(".")[-1] + ".md")).read_text()
        listed = re.findall(r"^\s+- (\w+)$", page, re.M)
        assert listed == public_names(module), f"docs/reference/ for {module.__name__}: members"


def test_every_public_name_has_an_entry_in_the_reference(site: Path) -> None:
    entries = inventory(site / "objects.inv")
    missing = []
    for module in public_modules():
        for name in public_names(module):
            path = f"{module.__name__}.{name}"
            uri = entries.get(path)
            if uri is None and importlib.util.find_spec(path) is not None:
                # a function named like its module (lamina.gradcheck): griffe files the
                # function under the module's path
                obj = getattr(module, name)
                uri = entries.get(f"{obj.__module__}.{obj.__qualname__}")
            if uri is None:
                missing.append(path)
                continue
            page, _, anchor = uri.partition("#")
            html = (site / page).read_text()
            assert f'id="{anchor}"' in html, f"{path}: no anchor #{anchor} in {page}"
    assert not missing, f"not in the API reference: {missing}"


def test_every_public_class_and_function_has_a_docstring() -> None:
    undocumented = []
    for module in public_modules():
        assert (module.__doc__ or "").strip(), f"{module.__name__} has no docstring"
        for name in public_names(module):
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and not (
                obj.__doc__ or ""
            ).strip():
                undocumented.append(f"{module.__name__}.{name}")
    assert not undocumented, f"no docstring: {undocumented}"


def test_formulas_render_as_math(site: Path) -> None:
    """The docstrings' formula blocks reach the page as MathJax input (docs/_hooks)."""
    html = (site / "reference/optimizers.html").read_text()
    adam = html[html.index('id="lamina.optimizers.Adam"') :]
    assert '<div class="arithmatex">' in adam[:20_000]
    assert r"\hat{m}_{t}" in adam[:20_000]
    assert "mathjax/tex-svg.js" in html
