"""The 1NN-vs-adversarial-training experiment of the seed paper (Hagai & Weiss), on class pairs.

For each binary problem (a pair of classes of MNIST, Fashion-MNIST or CIFAR-10) and each method
-- the l2 1-nearest-neighbour classifier ("1nn", certified with :func:`nnmargin.certify`, no
training) and networks trained with "standard", "early-stop", "trades" and "trades-l2linf"
(:mod:`nnmargin.train`, attacked with APGD from :mod:`nnmargin.attacks`) -- it measures clean and
robust accuracy on the training and test points, in l∞ and l2, over a sweep of eps. 1NN numbers
are certified lower bounds (or exact); network numbers are attack upper bounds.

Modules: :mod:`.config` (methods, pairs, eps defaults, settings), :mod:`.store` (SQLite results),
:mod:`.onenn` (the 1NN bound switch), :mod:`.runner` (:func:`run_experiment`), :mod:`.tables` and
:mod:`.figures` (read back for :mod:`nnmargin.report`). The ``nnmargin experiment`` command's
options are in :mod:`nnmargin.cli.experiment`.
"""
from .config import DEFAULT_EPS, HEADLINE_EPS, METHODS, Settings, all_pairs, parse_methods, parse_pairs
from .onenn import OneNNResult, one_nn_robust_accuracy
from .runner import NetworkTrainer, RunSummary, run_experiment
from .store import ResultStore, SettingsMismatch

__all__ = ["run_experiment", "RunSummary", "NetworkTrainer", "one_nn_robust_accuracy", "OneNNResult",
           "ResultStore", "SettingsMismatch", "Settings", "METHODS", "DEFAULT_EPS", "HEADLINE_EPS",
           "parse_pairs", "parse_methods", "all_pairs"]
