"""Every guide's code runs: the ``python`` blocks of docs/guides/*.md (and docs/index.md),
in order, as one script in a fresh process per page, and the ``sh`` blocks marked
``<!-- run -->`` with bash, in a temporary folder holding a link to ``examples/``. A block marked
``<!-- no-run -->`` is shown, not run (docs/about-the-docs.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "docs" / "guides").glob("*.md"))
PAGES = [ROOT / "docs" / "index.md", *GUIDES]  # the pages whose code runs
BLOCK = re.compile(
    r"^(<!-- (?P<mark>no-run|run) -->\n)?```(?P<lang>\w+)[^\n]*\n(?P<code>.*?)^```", re.S | re.M
)
TIME_LIMIT = 240  # seconds per guide; each takes a few seconds to about a minute on 2 cores


def blocks(page: Path) -> list[tuple[str, str | None, str]]:
    """(language, mark, code) of each fenced block of a page, in order."""
    return [(m["lang"], m["mark"], m["code"]) for m in BLOCK.finditer(page.read_text())]


def test_every_guide_is_in_the_menu() -> None:
    menu = (ROOT / "mkdocs.yml").read_text()
    assert GUIDES, "no guides found"
    for page in GUIDES:
        assert f"guides/{page.name}" in menu, f"{page.name} is missing from mkdocs.yml's nav"


def test_every_guide_has_code_that_runs() -> None:
    for page in GUIDES:
        assert any(lang == "python" and mark != "no-run" for lang, mark, _ in blocks(page)), page


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_guide_runs(page: Path, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MPLBACKEND": "Agg",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
    script = "\n".join(
        code for lang, mark, code in blocks(page) if lang == "python" and mark != "no-run"
    )
    commands = [code for lang, mark, code in blocks(page) if lang == "sh" and mark == "run"]
    if script:
        run([sys.executable, "-c", script], page, tmp_path, env)
    for command in commands:
        run(["bash", "-euo", "pipefail", "-c", command], page, tmp_path, env)


def run(argv: list[str], page: Path, cwd: Path, env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIME_LIMIT
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{page.name}: its code took over {TIME_LIMIT} s")
    assert done.returncode == 0, (
        f"{page.name}: {argv[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
