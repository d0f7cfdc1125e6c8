#!/usr/bin/env bash
# Classic codecs on the 24 Kodak images, one worker (timings are per image on an otherwise shared CPU).
# Usage: bash results/kodak/run_classic.sh [KODAK_DIR]   (default: $FASTLIC_SHARED/data/kodak or ../shared/data/kodak)
set -euo pipefail
cd "$(dirname "$0")/../.."
KODAK=${1:-${FASTLIC_SHARED:-../shared}/data/kodak}
for codec in ${CODECS:-jpeg webp avif jxl jpeg2000}; do
    fastlic eval --codec "$codec" --data "$KODAK" -o "results/kodak/$codec.json" --workers 1 --no-progress
done
# external encoders: used when on PATH, otherwise skipped with the reason
for codec in vtm bpg; do
    fastlic eval --codec "$codec" --data "$KODAK" -o "results/kodak/$codec.json" --workers 1 --no-progress \
        || echo "note: $codec skipped (see the error above)"
done
