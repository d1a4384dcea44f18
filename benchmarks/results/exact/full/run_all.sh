#!/usr/bin/env bash
# Exact radii of the 1NN on the full MNIST / Fashion-MNIST test sets, every norm, with and without the
# [0, 1] pixel box: two worker processes (both cores), resumable (--checkpoint), one JSON + CSV per run.
# Usage: NNMARGIN_DATA=../shared/data bash benchmarks/results/exact/full/run_all.sh [CHECKPOINT_ROOT]
set -euo pipefail
out="$(dirname "$0")"
ck="${1:-${TMPDIR:-/tmp}/nnmargin-exact-checkpoints}"
eps_l2="0.5 1 1.5 2 3"; eps_linf="0.05 0.1 0.2 0.3"; eps_l1="2 5 10 15"
for run in "mnist l1" "fashion-mnist l1" "mnist l2 box" "fashion-mnist l2 box" "mnist linf box" \
           "fashion-mnist linf box" "mnist l1 box" "fashion-mnist l1 box"; do
  set -- $run
  dataset=$1 norm=$2 box=${3:-}
  name="${dataset}_${norm}_exact${box:+_box}"
  [ -e "$out/$name.json" ] && continue
  eps_var="eps_$norm"
  start=$(date +%s)
  nnmargin certify --dataset "$dataset" --no-download --bound exact --norm "$norm" ${box:+--box} --processes 2 \
    --threads 2 --checkpoint "$ck/$name" --eps ${!eps_var} --out "$out/$name.json" --csv "$out/$name.csv" --quiet
  echo "$name: $(( $(date +%s) - start )) s wall" | tee -a "$out/wall_times.txt"
done
