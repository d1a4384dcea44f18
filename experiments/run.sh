#!/usr/bin/env bash
# The real run described in experiments/README.md: 5 MNIST and 5 Fashion-MNIST class pairs, all
# five methods, CPU settings. Resumable: run it again after an interruption and it continues.
# On a shared machine it first waits (polling every 60 s, at most 15 min) while the 1-minute load
# average is above 1.5. Needs the MNIST / Fashion-MNIST files under $NNMARGIN_DATA (default below)
# or network access to download them.
set -euo pipefail
cd "$(dirname "$0")/.."

wait_quiet() {
    for _ in $(seq 15); do
        load=$(cut -d' ' -f1 /proc/loadavg)
        awk "BEGIN { exit !($load <= 1.5) }" && return 0
        echo "$(date +%T) load $load > 1.5: waiting 60 s" >&2
        sleep 60
    done
}

DATA_DIR=${NNMARGIN_DATA:-/work/shared/data}
COMMON=(--methods 1nn,standard,early-stop,trades,trades-l2linf
        --limit 1000 --eval-limit 200
        --epochs 8 --early-stop-epochs 8 --batch-size 32 --train-steps 5
        --attack-iters 20 --bound exact --data-dir "$DATA_DIR"
        --threads 1)  # one torch thread: on a busy 2-core machine two threads spin-wait (10x slower)

wait_quiet
python -m nnmargin.experiment --dataset mnist --pairs 1-4,1-6,2-7,3-6,4-9 \
    --out experiments/runs/mnist "${COMMON[@]}"
wait_quiet
python -m nnmargin.experiment --dataset fashion-mnist --pairs 0-2,2-5,2-7,4-7,6-9 \
    --out experiments/runs/fashion-mnist "${COMMON[@]}"
python -m nnmargin.report experiments/runs/mnist experiments/runs/fashion-mnist --out experiments
