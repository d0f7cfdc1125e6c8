#!/usr/bin/env bash
# The measurements quoted in docs/results.md that use the bundled default model (run from the repo root,
# with the virtualenv active). Each line writes a committed JSON file.
set -euo pipefail
CK=fastlic/weights/mlicpp-mini-vr.pt
python benchmarks/large_images.py --checkpoint $CK --sizes 3840x2160 8000x6000 --threads 2 \
    -o results/large_images_bundled.json
python benchmarks/large_images.py --checkpoint $CK --sizes 2048x2048 --tile 1024 --compare-untiled --threads 2 \
    -o results/tiling_cost_bundled_2048.json
fastlic eval --model mlicpp-mini-vr --native-quality 0 1 2 3 4 --data ../shared/data/kodak --threads 2 --force \
    -o results/kodak/fastlic-mlicpp-mini-vr.json
