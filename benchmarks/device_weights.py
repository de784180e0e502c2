"""Carry a sentence-transformers model folder to a machine without network, as small as possible.

``pack`` writes one .tar.xz holding the folder's configuration and tokenizer files (every
file but the weights) and the weights of ``model.safetensors`` in a smaller form:

  fp16      every floating tensor in fp16
  int8      every 2-D weight matrix but the embeddings as int8 with one fp16 scale per output
            row (symmetric: w ~= q * scale, scale = max|row| / 127); embeddings, 1-D tensors
            (biases, LayerNorm) in fp16
  int8-all  as int8, and the embedding tables (one row per token / position) quantized too

Every fp16 tensor is stored byte-shuffled (all low bytes, then all high bytes), which xz
compresses better than interleaved fp16.

``unpack`` rebuilds a sentence-transformers folder from that archive, with the weights
dequantized into an fp16 ``model.safetensors`` (load it in float32 on CPU: fp16 matmuls
crawl there). Non-floating tensors (e.g. ``position_ids``) are kept as they are.

    python benchmarks/device_weights.py pack SRC_MODEL_DIR OUT_FILE [--mode int8]
    python benchmarks/device_weights.py unpack IN_FILE OUT_MODEL_DIR

Needs only numpy and safetensors (and the standard library).
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

WEIGHTS = "model.safetensors"
PACKED = "device_weights.safetensors"  # name of the packed weights inside the archive
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".ckpt")
SCALE = ".__scale__"  # suffix of a quantized tensor's per-row fp16 scales


def _is_embedding(name: str) -> bool:
    """An embedding table, e.g. ``embeddings.word_embeddings.weight``."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2].endswith("embeddings")


def _load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return {k: f.get_tensor(k) for k in f}, dict(f.metadata() or {})


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: (q int8 [rows, cols], scale fp16 [rows]), w ~= q * scale."""
    w = w.astype(np.float32)
    scale = np.abs(w).max(axis=1) / 127.0
    scale = scale.astype(np.float16).astype(np.float32)  # round with the scale that is stored
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float16)


def pack(src: Path, out: Path, mode: str = "int8") -> dict:
    tensors, meta = _load(src / WEIGHTS)
    packed: dict[str, np.ndarray] = {}
    quantized: list[str] = []
    for name, t in tensors.items():
        if not np.issubdtype(t.dtype, np.floating):
            packed[name] = t
        elif mode != "fp16" and t.ndim == 2 and (mode == "int8-all" or not _is_embedding(name)):
            packed[name], packed[name + SCALE] = quantize_rows(t)
            quantized.append(name)
        else:
            packed[name] = t.astype(np.float16)
    shuffled: dict[str, list[int]] = {}
    for name, t in packed.items():
        if t.dtype == np.float16:
            shuffled[name] = list(t.shape)
            packed[name] = np.ascontiguousarray(t.reshape(-1).view(np.uint8).reshape(-1, 2).T)
    from safetensors.numpy import save

    info = {"mode": mode, "quantized": quantized, "shuffled": shuffled, "source_metadata": meta}
    blob = save(packed, metadata={"device_weights": json.dumps(info)})
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:xz", preset=9 | lzma.PRESET_EXTREME) as tar:
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            rel = path.relative_to(src)
            if path.name.endswith(WEIGHT_SUFFIXES) or "__pycache__" in rel.parts:
                continue
            tar.add(str(path), arcname=str(rel))
        entry = tarfile.TarInfo(PACKED)
        entry.size = len(blob)
        tar.addfile(entry, io.BytesIO(blob))
    return {"mode": mode, "tensors": len(tensors), "quantized": len(quantized), "bytes": out.stat().st_size}


def unpack(archive: Path, dest: Path) -> dict:
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive, "r:xz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
        tensors, meta = _load(Path(tmp) / PACKED)
        info = json.loads(meta["device_weights"])
        for name, shape in info.get("shuffled", {}).items():
            tensors[name] = np.ascontiguousarray(tensors[name].T).view(np.float16).reshape(shape)
        out: dict[str, np.ndarray] = {}
        for name, t in tensors.items():
            if name.endswith(SCALE):
                continue
            if name + SCALE in tensors:
                scale = tensors[name + SCALE].astype(np.float32)
                t = (t.astype(np.float32) * scale[:, None]).astype(np.float16)
            out[name] = np.ascontiguousarray(t)
        (Path(tmp) / PACKED).unlink()
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(tmp, dest)
        save_file(out, str(dest / WEIGHTS), metadata=info.get("source_metadata") or {"format": "pt"})
    for path in [dest, *dest.rglob("*")]:  # the temporary folder's 0700 would carry over
        path.chmod(0o755 if path.is_dir() else 0o644)
    return {"mode": info["mode"], "tensors": len(out), "dir": str(dest)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="model folder -> one small .tar.xz")
    pk.add_argument("src", type=Path)
    pk.add_argument("out", type=Path)
    pk.add_argument("--mode", choices=["fp16", "int8", "int8-all"], default="int8")
    up = sub.add_parser("unpack", help=".tar.xz -> sentence-transformers folder (fp16 weights)")
    up.add_argument("archive", type=Path)
    up.add_argument("dest", type=Path)
    args = p.parse_args(argv)
    result = pack(args.src, args.out, args.mode) if args.cmd == "pack" else unpack(args.archive, args.dest)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
