#!/usr/bin/env python3
"""onnxruntime side of bench/inference/run: embeds the benchmark sentences
with the same model file, the same tokenizer settings (truncation 256, no
built-in padding), mean pooling and L2 norm as the host, and prints one JSON
line with the median time of a whole batch.

Modes: padded (one run, padded to the longest sentence), single (one run per
sentence, no padding), grouped (the host's grouping by length).
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def group_by_length(lengths, max_batch=32, max_batch_tokens=8192):
    """Same rule as host/inference/src/batching.rs."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current, shortest = [], [], 0
    for i in order:
        n = lengths[i]
        if current and (
            len(current) >= max_batch
            or n > shortest + max(shortest // 8, 2)
            or n * (len(current) + 1) > max_batch_tokens
        ):
            batches.append(current)
            current = []
        if not current:
            shortest = n
        current.append(i)
    if current:
        batches.append(current)
    return batches


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", required=True)
    p.add_argument("--sentences", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--mode", choices=["padded", "single", "grouped"], default="padded")
    a = p.parse_args()

    texts = [l.rstrip("\n") for l in open(a.sentences, encoding="utf-8") if l.strip()]
    tok = Tokenizer.from_file(f"{a.model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(256)
    o = ort.SessionOptions()
    o.intra_op_num_threads = a.threads
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(f"{a.model_dir}/model.onnx", o, providers=["CPUExecutionProvider"])

    def run(rows):
        s = max(len(r) for r in rows)
        ids = np.zeros((len(rows), s), np.int64)
        mask = np.zeros((len(rows), s), np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        (h,) = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        m = mask[:, :, None].astype(np.float32)
        e = (h * m).sum(1) / m.sum(1)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def embed():
        rows = [e.ids for e in tok.encode_batch(texts)]
        if a.mode == "padded":
            return run(rows)
        if a.mode == "single":
            return [run([r]) for r in rows]
        out = [None] * len(rows)
        for b in group_by_length([len(r) for r in rows]):
            for i, v in zip(b, run([rows[i] for i in b])):
                out[i] = v
        return out

    for _ in range(5):
        embed()
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        embed()
        times.append((time.perf_counter() - t) * 1e3)
    med = statistics.median(times)
    print(json.dumps({"runtime": "onnxruntime " + ort.__version__, "mode": a.mode, "threads": a.threads,
                      "sentences": len(texts), "median_ms": round(med, 3),
                      "per_sentence_ms": round(med / len(texts), 3)}))


if __name__ == "__main__":
    sys.exit(main())
