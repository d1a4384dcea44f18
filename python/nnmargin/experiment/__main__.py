"""``python -m nnmargin.experiment ...``: the same as ``nnmargin experiment ...``."""
import sys

from .command import experiment_main

sys.exit(experiment_main())
