"""``python -m nnmargin``: the same command line as the ``nnmargin`` console script."""
from nnmargin.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
