#!/usr/bin/env bash
# The Kodak report (fastlic report) and its headless-Chromium screenshot, into results/report/.
#   bash benchmarks/report_kodak.sh [KODAK_DIR]     (needs the eval extra and Debian's chromium package)
set -euo pipefail
cd "$(dirname "$0")/.."
KODAK=${1:-${FASTLIC_SHARED:-../shared}/data/kodak}
OUT=results/report
mkdir -p "$OUT"
fastlic report results/kodak/{webp,jpeg,avif,jxl,jpeg2000,fastlic-mlicpp-mini-vr,fastlic-econtextformer-small-vr}.json \
  "${FASTLIC_SHARED:-../shared}/anchors/kodak/vtm.json" \
  --anchor webp --images "$KODAK" --image kodim23.png --image kodim19.png \
  --title "fastlic on Kodak (24 images): RD curves, BD-rates vs WebP, crops at equal file size" \
  -o "$OUT/kodak.html" --force
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2400 \
  --screenshot="$OUT/kodak_screenshot.png" "file://$PWD/$OUT/kodak.html" 2>/dev/null
ls -l "$OUT"
