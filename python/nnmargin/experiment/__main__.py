"""``python -m nnmargin.experiment ...``: the same as ``nnmargin experiment ...``."""
import sys

from ..cli import main

sys.exit(main(["experiment", *sys.argv[1:]]))
