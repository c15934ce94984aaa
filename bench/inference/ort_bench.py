#!/usr/bin/env python3
"""onnxruntime side of bench/inference/run: embeds the benchmark sentences
with the same model file, the same tokenizer settings (truncation 256, no
built-in padding), mean pooling and L2 norm as the host, and prints one JSON
line with the median time of a whole batch.

Modes: padded (one run, padded to the longest sentence), single (one run per
sentence, no padding), grouped (the host's grouping by length).

--profile-ops (bench/inference/ops): one padded batch per run with
onnxruntime's own profiler on; prints per operator kind (onnxruntime's name
after its graph optimizations) the nodes that run it and its mean kernel time
per run, excluding the warm-up runs.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
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
    p.add_argument("--profile-ops", action="store_true")
    a = p.parse_args()
    if a.iters < 1:
        p.error("--iters must be at least 1")

    texts = [l.rstrip("\n") for l in open(a.sentences, encoding="utf-8") if l.strip()]
    tok = Tokenizer.from_file(f"{a.model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(256)
    o = ort.SessionOptions()
    o.intra_op_num_threads = a.threads
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if a.profile_ops:
        o.enable_profiling = True
        o.profile_file_prefix = tempfile.mkdtemp(prefix="ort-profile-") + "/ort"
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

    if a.profile_ops:
        return profile_ops(a, sess, tok, texts, run)

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


WARMUP = 5


def profile_ops(a, sess, tok, texts, run):
    rows = [e.ids for e in tok.encode_batch(texts)]
    times = []
    for i in range(WARMUP + a.iters):
        t = time.perf_counter()
        run(rows)
        if i >= WARMUP:
            times.append((time.perf_counter() - t) * 1e3)
    path = sess.end_profiling()
    with open(path, encoding="utf-8") as f:
        events = json.load(f)
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    if len(starts) != WARMUP + a.iters:
        sys.exit(f"ort_bench: expected {WARMUP + a.iters} profiled runs, found {len(starts)}")
    cutoff = starts[WARMUP]
    ops, nodes = {}, {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time") or e["ts"] < cutoff:
            continue
        op = e["args"]["op_name"]
        ops[op] = ops.get(op, 0.0) + e["dur"] / 1e3
        nodes.setdefault(op, set()).add(e["name"])
    out = sorted(({"op": k, "nodes": len(nodes[k]), "ms_per_run": round(v / a.iters, 4)} for k, v in ops.items()),
                 key=lambda o: -o["ms_per_run"])
    print(json.dumps({"runtime": "onnxruntime " + ort.__version__, "batch": len(rows),
                      "tokens": max(len(r) for r in rows), "iters": a.iters,
                      "median_run_ms": round(statistics.median(times), 3), "ops": out}))


if __name__ == "__main__":
    sys.exit(main())
