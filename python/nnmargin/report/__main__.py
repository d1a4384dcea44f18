"""``python -m nnmargin.report ...``: the same as ``nnmargin report ...``."""
import sys

from ..cli import main

sys.exit(main(["report", *sys.argv[1:]]))
