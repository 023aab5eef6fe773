"""The version of lamina, in one place (pyproject.toml gives the same)."""

__version__ = "0.1.0"
