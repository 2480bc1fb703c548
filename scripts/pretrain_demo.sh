#!/usr/bin/env bash
# Rebuild the bundled demo package models/skelex-demo from scratch (seeded, resumable):
#   1. pretrain a small ViT-MAE on normal SynthMSK radiographs (Hugging Face folder as output),
#   2. import it through the same path as official weights (ONNX graphs, parity check, sha256),
#      calibrating the hotspot and abnormal thresholds on 200 SynthMSK images.
# Re-running resumes an interrupted pretraining run from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${RUN:-${TMPDIR:-/tmp}/skelex-demo-run}"
CLI="${CLI:-.venv/bin/skelex-desktop}"
MINUTES="${MINUTES:-30}"

nice -n 10 "$CLI" pretrain --out "$RUN" --steps 800 --warmup 40 --minutes "$MINUTES" \
    --pool 4000 --batch 32 --threads "${THREADS:-1}"

card=()
if [[ -f models/skelex-demo/MODEL_CARD.md ]]; then
    card=(--model-card models/skelex-demo/MODEL_CARD.md)
fi
"$CLI" model import "$RUN/hf" --name skelex-demo --models-dir models --replace \
    --version 0.1.0 --licence "Proprietary (SKELEX Desktop); synthetic training data only" \
    --calibrate-synth 200 "${card[@]}"
"$CLI" --data-dir "$RUN/data" model verify skelex-demo
