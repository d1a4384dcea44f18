#!/usr/bin/env bash
# r-separation of MNIST and Fashion-MNIST in l-inf, l2 and l1 (train-train and test-train), 2 threads.
# Run on a quiet machine: the JSON files record each command's search wall times.
# Usage: NNMARGIN_DATA=../shared/data bash benchmarks/results/separation/run.sh
set -euo pipefail
out="$(dirname "$0")"
for dataset in mnist fashion-mnist; do
  for metric in linf l2 l1; do
    nnmargin separation --dataset "$dataset" --metric "$metric" --no-download --threads 2 \
      --out "$out/separation_${dataset}_${metric}.json" --plot "$out" --quiet
  done
done
