#!/usr/bin/env bash
# The lent GPU machine's recipe for benchmarks/embed_service.py (see benchmarks/README.md).
# It has torch and sentence-transformers but nothing else graphmem needs and no network, so
# the call carries (git-ignored, made here):
#   .devbundle/site.tar.xz             cp312 wheels installed with --target, stripped
#   .devbundle/minilm-int8-all.tar.xz  all-MiniLM-L6-v2 packed by benchmarks/device_weights.py
#   .devbundle/data/musique.tar.xz     ../shared/data/musique
# Usage on that machine: bash benchmarks/gpu_run.sh [embed_service.py arguments]
set -euo pipefail
mkdir -p /tmp/site /tmp/gm/data
[ -f /tmp/site/.ok ] || { tar -C /tmp/site -xJf .devbundle/site.tar.xz && touch /tmp/site/.ok; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
[ -d /tmp/gm/model ] || python3 benchmarks/device_weights.py unpack .devbundle/minilm-int8-all.tar.xz /tmp/gm/model
[ -d /tmp/gm/data/musique ] || tar -C /tmp/gm/data -xJf .devbundle/data/musique.tar.xz
python3 benchmarks/embed_service.py --model /tmp/gm/model --ingest-data-dir /tmp/gm/data \
    --model-label "all-MiniLM-L6-v2 (real weights via int8 transport copy)" "$@"
