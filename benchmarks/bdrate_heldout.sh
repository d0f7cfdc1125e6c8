#!/usr/bin/env bash
# PSNR-RGB and MS-SSIM-RGB BD-rates (real files) on the held-out Wikipedia photos 040-049, whole and as 512^2 centre
# crops, of every fastlic result and classic codec there against WebP (method 6), AVIF (speed 6, 4:4:4), JPEG XL and
# JPEG, and against the strongest AVIF (avif-best) where it was run; into results/heldout*/bdrate.txt.
#   bash benchmarks/bdrate_heldout.sh
# The result JSONs come from `fastlic eval` (commands in docs/results.md#the-bundled-default-on-photos-it-never-saw).
set -euo pipefail
cd "$(dirname "$0")/.."
for set in heldout heldout_crops512; do
  dir=results/$set
  {
    for metric in psnr-rgb ms-ssim-rgb; do
      for ref in webp avif avif-best jxl jpeg; do
        [ -f "$dir/$ref.json" ] || continue
        others=()
        for f in "$dir"/fastlic-*.json "$dir"/{jpeg,webp,avif,avif-best,jxl}.json; do
          [ -f "$f" ] && [ "$f" != "$dir/$ref.json" ] && others+=("$f")
        done
        fastlic bdrate --metric "$metric" "$dir/$ref.json" "${others[@]}"
      done
    done
  } > "$dir/bdrate.txt"
  echo "wrote $dir/bdrate.txt"
done
