"""``python -m instructpt`` is the same as the ``instructpt`` console script."""

from instructpt.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
