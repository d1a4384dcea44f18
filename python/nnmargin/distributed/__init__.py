"""Exact 1NN certificates over training sets sharded across a Dask cluster.

>>> from dask.distributed import Client                                  # doctest: +SKIP
>>> client = Client()            # a LocalCluster; Client("tcp://scheduler:8786") on a real cluster
>>> train = nnmargin.distributed.TrainSet(x_train, y_train, client=client)   # doctest: +SKIP
>>> cert = nnmargin.distributed.certify(x_test, y_test, train, bound="bisector")  # doctest: +SKIP

The nearest same-class and other-class points, and the bisector bound, are minima over training
points: each shard computes its own with the single-machine kernels, and the minima are merged
with the lowest-index tie rule. Results are identical, index for index, to :func:`nnmargin.certify`
on one machine. Needs ``pip install "nnmargin[distributed]"``.
"""
from __future__ import annotations

from .._errors import InputError
from ..certify import certify as _certify_anywhere
from ..result import CertifyResult
from .trainset import TrainSet

__all__ = ["TrainSet", "certify"]


def certify(x, y, train: TrainSet, **options) -> CertifyResult:
    """:func:`nnmargin.certify` against a sharded training set (same arguments and result).

    ``bound`` may be "margin" or "bisector"; the exact bound needs every training point in one
    process and stays single-machine in this version. ``device="cuda"`` runs each shard's search
    on its worker's GPU (one worker per GPU). ``num_threads`` defaults to each worker's threads.
    """
    if not isinstance(train, TrainSet):
        raise InputError("train must be a nnmargin.distributed.TrainSet (build one from your shards first)")
    if options.get("bound", "margin") == "exact":
        raise InputError("bound='exact' runs on one machine in this version: use nnmargin.certify with a "
                         "nnmargin.TrainSet, or bound='margin' / 'bisector' here")
    result = _certify_anywhere(x, y, train, **options)
    result.info.update(shards=train.n_shards)
    return result
