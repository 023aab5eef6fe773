"""A MkDocs hook: MathJax from the django-static-mathjax wheel, so formulas render offline.

The site loads ``javascripts/mathjax/tex-svg.js`` (MathJax 3's TeX-to-SVG component, one
file with its fonts inside); this hook adds that file to the build from the installed
package (the ``docs`` extra installs it), so neither building nor reading the site needs a
CDN. mkdocs.yml loads it under ``hooks:``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

TARGET = "javascripts/mathjax/tex-svg.js"


def mathjax_source() -> Path:
    spec = importlib.util.find_spec("mathjax")  # django-static-mathjax's (empty) package
    if spec is None or not spec.submodule_search_locations:
        raise PluginError('MathJax is missing: pip install -e ".[docs]" (django-static-mathjax)')
    source = Path(next(iter(spec.submodule_search_locations))) / "static/mathjax/es5/tex-svg.js"
    if not source.is_file():
        raise PluginError(f"{source} is missing: reinstall django-static-mathjax")
    return source


def on_files(files: Files, *, config: Any) -> Files:
    files.append(File.generated(config, TARGET, abs_src_path=str(mathjax_source())))
    return files
