#!/usr/bin/env bash
# The measurements of docs/results.md#speed, one after another on an otherwise idle machine (~40 min, 2 cores).
#   BEFORE=/tmp/old16 bash benchmarks/speed_session.sh      # BEFORE: `git worktree add /tmp/old16 d2b8d99`
# The reference: /tmp/mlic-ref/MLIC++ and /tmp/refenv (docs/results.md, "Benchmarking against the MLIC++ reference").
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?set BEFORE to a checkout of the code before the speed work}"
: "${FASTLIC_SHARED:=../shared}"; export FASTLIC_SHARED
OUT=results/speed
mkdir -p "$OUT"
REF=(--reference /tmp/mlic-ref/MLIC++ --reference-python /tmp/refenv/bin/python)
# 1. against the reference, same fixture weights, kodim23 and a 1024x1024 photo: after, then before
python benchmarks/vs_reference.py "${REF[@]}" --repeat 3 --label after -o "$OUT/vs_reference_after.json"
(cd "$BEFORE" && PYTHONPATH="$BEFORE" python benchmarks/vs_reference.py --repeat 3 --label before -o "$OLDPWD/$OUT/vs_reference_before.json")
# 2. bundled models and the fixture MLIC++, kodim23: before/after in alternating processes
python benchmarks/speed_before_after.py --before "$BEFORE" --threads 2 --repeat 3 -o "$OUT/before_after_kodim23.json"
# 3. the cost of the fast path in PSNR: Kodak, bundled default, every quality, exact mode vs auto
for p in fp32 auto; do
  fastlic eval --model mlicpp-mini-vr --native-qualities 0 1 2 3 4 --data "$FASTLIC_SHARED/data/kodak" --precision $p \
    --threads 2 --no-progress --name "mlicpp-mini-vr ($p)" -o "$OUT/kodak_mlicpp-mini-vr_$p.json"
done
fastlic bdrate "$OUT/kodak_mlicpp-mini-vr_fp32.json" "$OUT/kodak_mlicpp-mini-vr_auto.json" > "$OUT/kodak_fast_path_bdrate.txt"
# 4. scaling with the full MLIC++ (fixture weights), 512^2 to 4096^2 and 3840x2160; 3840x2160 before too
python benchmarks/timing.py --models mlicpp --checkpoint /tmp/fastlic-fixture-mlicpp.pt \
  --sizes 512 1024 2048 3840x2160 4096 --repeat 1 --budget 1200 --out-dir "$OUT/scaling_after"
(cd "$BEFORE" && PYTHONPATH="$BEFORE" python benchmarks/timing.py --models mlicpp --checkpoint /tmp/fastlic-fixture-mlicpp.pt \
  --sizes 3840x2160 --repeat 1 --budget 1200 --out-dir "$OLDPWD/$OUT/scaling_before")
# 5. 3840x2160 as one image (no tiles: a 16 GiB ceiling), after and before
python benchmarks/large_images.py --checkpoint /tmp/fastlic-fixture-mlicpp.pt --sizes 3840x2160 --max-memory 16 \
  --threads 2 -o "$OUT/uhd_whole_after.json"
(cd "$BEFORE" && PYTHONPATH="$BEFORE" python benchmarks/large_images.py --checkpoint /tmp/fastlic-fixture-mlicpp.pt \
  --sizes 3840x2160 --max-memory 16 --threads 2 -o "$OLDPWD/$OUT/uhd_whole_before.json")
# 6. eContextformer, paper configuration, 768x512 decode (random weights), after and before
python benchmarks/econtextformer_bench.py decode && cp results/econtextformer/decode.json "$OUT/econtextformer_decode_after.json"
(cd "$BEFORE" && PYTHONPATH="$BEFORE" python benchmarks/econtextformer_bench.py decode && \
  cp results/econtextformer/decode.json "$OLDPWD/$OUT/econtextformer_decode_before.json")
echo done
