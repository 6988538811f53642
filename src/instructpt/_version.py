"""The package version (also in pyproject.toml), importable without importing the package's stages."""

__version__ = "0.1.0"
