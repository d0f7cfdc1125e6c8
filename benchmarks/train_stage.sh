#!/usr/bin/env bash
# One warm-started training stage of the bundled default, then everything that follows it: bundle the best
# checkpoint, rerun the Kodak / held-out / crops evaluations, regenerate the BD-rate files and the progress curve.
# Resumable: run it again with the same RUN and it continues from RUN/state.pt (run directories do not survive
# a change of machine; the --init copy of the bundle is kept beside RUN).
#   nohup setsid bash benchmarks/train_stage.sh /work/runs/mini-vr12 5000 "Stage 13 on the stage-12 recipe ..." \
#       >> /work/runs/stage.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1; STEPS=${2:-5000}; NOTE=${3:?a note for the training card}
# the recipe must build the bundle's layout: 96-channel transforms since stage 20 (the narrow preset before it)
CONFIG=${CONFIG:-configs/mlicpp_vr_cpu_clean_wide.toml}
INIT=$RUN.init.pt
[ -f "$INIT" ] || { mkdir -p "$(dirname "$RUN")"; cp fastlic/weights/mlicpp-mini-vr.pt "$INIT"; }
echo "== train $(date)"
if [ -f "$RUN/state.pt" ]; then
  fastlic train --resume --out "$RUN" --steps "$STEPS" --threads 2
else
  fastlic train --config "$CONFIG" --init "$INIT" \
      --out "$RUN" --threads 2 --amp auto --lr 8e-5 --steps "$STEPS" --val-interval 1000
fi
echo "== bundle and Kodak $(date)"
bash benchmarks/refresh_bundled.sh "$RUN" best 2 "$NOTE"   # bundle, Kodak eval, training_progress.csv rows
HO=${HELDOUT:-/tmp/ho}
[ -d "$HO/full" ] || python benchmarks/heldout_sets.py "$HO"
echo "== held-out $(date)"
E="fastlic eval --model mlicpp-mini-vr --native-quality 0 1 2 3 4 --threads 2 --no-progress --force"
$E --data "$HO/full" -o results/heldout/fastlic-mlicpp-mini-vr.json
$E --data "$HO/crops512" -o results/heldout_crops512/fastlic-mlicpp-mini-vr.json
bash benchmarks/plot_kodak.sh; bash benchmarks/bdrate_heldout.sh
python benchmarks/training_progress.py --bdrate-against results/kodak/webp.json > results/kodak/training_progress_bdrate_webp.txt
python benchmarks/training_progress.py --bdrate-against results/kodak/avif.json > results/kodak/training_progress_bdrate_avif.txt
echo "== done $(date)"
