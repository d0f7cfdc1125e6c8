#!/usr/bin/env bash
# The Kodak RD plot of the classic codecs, the published anchors and every bundled model, and the BD-rates of the
# bundled models against WebP, AVIF and JPEG (PSNR-RGB, then MS-SSIM-RGB in dB; real files), also into results/kodak/bdrate_bundled.txt.
#   bash benchmarks/plot_kodak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ANCHORS=${FASTLIC_SHARED:-../shared}/anchors/kodak
OURS=$(ls results/kodak/fastlic-*.json)
fastlic plot results/kodak/{jpeg,webp,avif,jxl,jpeg2000}.json $OURS --anchor "$ANCHORS" \
    -o results/kodak/rd_kodak.png --title "Kodak (24 images)" --force
for metric in psnr-rgb ms-ssim-rgb; do
  for f in $OURS; do
    for ref in webp avif jpeg; do
      echo "$(basename "$f" .json) vs $ref ($metric): $(fastlic bdrate --metric $metric results/kodak/$ref.json "$f" 2>&1 | tail -n 1 | sed 's/^ *//')"
    done
  done
done | tee results/kodak/bdrate_bundled.txt
