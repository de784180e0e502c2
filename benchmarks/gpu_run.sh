#!/usr/bin/env bash
# The lent GPU machine's recipe (see benchmarks/results/DEVICE_RUN.md). That machine has
# python 3.12 with torch and sentence-transformers but nothing else graphmem needs and no
# network, so the calls carry (git-ignored, made here):
#   .devbundle/site.tar.xz             cp312 wheels installed with --target, stripped
#   .devbundle/minilm-int8-all.tar.xz  all-MiniLM-L6-v2 packed by benchmarks/device_weights.py
#   .devbundle/data/<name>.tar.xz      ../shared/data/<name> folders (development sets)
#   .devbundle/scale/scale.tar.xz      ../shared/data/scale with corpus.jsonl unzipped
# Each archive is unpacked once per machine (under /tmp, kept while the machine stays warm),
# and only if it is there: a call may carry some of them and find the others from the last.
# Usage on that machine:
#   bash benchmarks/gpu_run.sh [embed_service.py arguments]
#   bash benchmarks/gpu_run.sh --scale [scale.py arguments]     (benchmarks/scale.py)
#   bash benchmarks/gpu_run.sh --setup                          (unpack only)
set -euo pipefail
mkdir -p /tmp/site /tmp/gm/data
if [ ! -f /tmp/site/.ok ] && [ -f .devbundle/site.tar.xz ]; then
    tar -C /tmp/site -xJf .devbundle/site.tar.xz && touch /tmp/site/.ok
fi
for archive in .devbundle/fix/*.tar.xz; do  # files added to the site after it was packed
    [ -f "$archive" ] && [ ! -f "/tmp/site/.$(basename "$archive")" ] && tar -C /tmp/site -xJf "$archive" && touch "/tmp/site/.$(basename "$archive")"
done
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ ! -d /tmp/gm/model ] && [ -f .devbundle/minilm-int8-all.tar.xz ]; then
    python3 benchmarks/device_weights.py unpack .devbundle/minilm-int8-all.tar.xz /tmp/gm/model
fi
for archive in .devbundle/data/*.tar.xz .devbundle/scale/*.tar.xz; do
    [ -f "$archive" ] || continue
    name=$(basename "$archive" .tar.xz)
    [ -d "/tmp/gm/data/$name" ] || tar -C /tmp/gm/data -xJf "$archive"
done
case "${1:-}" in
    --setup) exit 0 ;;
    --scale) shift; exec python3 benchmarks/scale.py "$@" ;;
esac
python3 benchmarks/embed_service.py --model /tmp/gm/model --ingest-data-dir /tmp/gm/data \
    --model-label "all-MiniLM-L6-v2 (real weights via int8 transport copy)" "$@"
