#!/usr/bin/env bash
# The README's main-job command. Today: builds bambo, generates a small Qwen3-shaped model family
# (base, instruct, thinking; deltas growing with depth), profiles it, partitions its layers and makes
# one block-wise merge.
# It grows into the full local study (coordinator + workers on a tiny model family) as the issues land.
#   OUT=dir ./cluster/demo.sh      (default: ./demo-out)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-demo-out}
bash cluster/bootstrap.sh
swift build --product bambo
BAMBO=$(swift build --show-bin-path)/bambo
mkdir -p "$OUT"
if [ ! -f "$OUT/models/thinking/config.json" ]; then
  "$BAMBO" synthesize --out "$OUT/models" --layers 24 --hidden 256
fi
"$BAMBO" partition --model "$OUT/models/instruct" --model "$OUT/models/thinking" \
  --base "$OUT/models/base" --blocks 6 --out "$OUT/partition.json"
# One block-wise merge: instruct in the shallow blocks, thinking in the deep ones.
rm -rf "$OUT/merged"
"$BAMBO" merge --model "$OUT/models/instruct" --model "$OUT/models/thinking" \
  --partition "$OUT/partition.json" --weights 0,0,0.2,0.4,0.6,0.8,1,1 --out "$OUT/merged" --no-fsync
echo "partition: $OUT/partition.json; block-wise merge: $OUT/merged (recipe in bambo-merge.yaml)"
