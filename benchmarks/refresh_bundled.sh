#!/usr/bin/env bash
# After a stretch of training: bundle a run's weights, measure them on Kodak with real files, record progress.
#   bash benchmarks/refresh_bundled.sh RUNDIR [best|last|state] [THREADS] [NOTE]
# Writes fastlic/weights/<model>.{pt,json} (+ index.json), results/kodak/fastlic-<model>.json and rows of
# results/kodak/training_progress.csv. Re-plot and BD-rates afterwards: benchmarks/plot_kodak.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: refresh_bundled.sh RUNDIR [best|last|state] [THREADS] [NOTE]}; WHICH=${2:-best}; THREADS=${3:-2}; NOTE=${4:-}
[ -f "$RUN/config.json" ] || { echo "refresh_bundled.sh: $RUN is not a run directory (no config.json)" >&2; exit 1; }
KODAK=${FASTLIC_SHARED:-../shared}/data/kodak
MODEL=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['model'])" "$RUN/config.json")
python -m fastlic.training.bundle "$RUN" --which "$WHICH" --check-image "$KODAK/kodim23.png" --note "$NOTE"
fastlic eval --model "$MODEL" --native-quality 0 1 2 3 4 --data "$KODAK" --threads "$THREADS" --no-progress --force \
    -o "results/kodak/fastlic-$MODEL.json"
python benchmarks/training_progress.py "results/kodak/fastlic-$MODEL.json" --card "fastlic/weights/$MODEL.json"
