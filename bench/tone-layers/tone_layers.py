#!/usr/bin/env python3
"""How many of all-MiniLM-L6-v2's layers does the tone classifier need?

For each layer count k, converts the pinned weights with models/convert.py
keeping only the first k encoder layers (a copy of config.json with
num_hidden_layers = k; the graph is otherwise the same), embeds the tone
training set and the held-out tone set with onnxruntime (one text at a time,
mean pooling, L2 norm, as the host does), and trains the same softmax
regression as `cloister_tone_prototypes::classifier::train` (full-batch
Nesterov gradient descent, step 1/L, 800 steps, L2 on the weights only).

Prints, per k and penalty: the stratified 10-fold cross-validated accuracy on
the training set (Wilson 95 % interval), per-tone recall, the share answered
and their accuracy at the shipped "unsure" threshold (0.5), the held-out
accuracy of the classifier trained on the whole training set, and the time of
the tone's embed call for eval/writing-help/hundred-words.txt (its six
sentences, one run each, one thread; median).

k = 6 must reproduce the shipped model's bytes (checked against the manifest's
pinned SHA-256) and the figures in docs/features.md; this is the check that
the numpy trainer here is the Rust one.

Usage (bench/tone-layers/run sets this up):
  tone_layers.py --model-dir DIR --repo ROOT [--layers 2,3,4,6] [--iters 30]
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

TONES = ["formal", "casual", "friendly", "angry"]
PENALTIES = [1e-4, 1e-3, 1e-2]
SHIPPED_PENALTY = 1e-3
FOLDS = 10
STEPS = 800
UNSURE_BELOW = 0.5


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train(x, y, l2):
    """cloister_tone_prototypes::classifier::train, vectorised."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    target = np.eye(len(TONES))[y]
    theta = np.zeros((len(TONES), d + 1))
    previous = theta.copy()
    step = 1.0 / (0.5 * ((x * x).sum(axis=1).max() + 1.0) + l2)
    for t in range(STEPS):
        look = theta + t / (t + 3.0) * (theta - previous)
        grad = (softmax(xb @ look.T) - target).T @ xb / n
        grad[:, :d] += l2 * look[:, :d]
        previous, theta = theta, look - step * grad
    return theta


def predict(theta, x):
    return softmax(np.hstack([x, np.ones((len(x), 1))]) @ theta.T)


def cross_validate(x, y, l2):
    """Stratified: item i of a class goes to fold (its rank in the class) mod FOLDS."""
    seen = [0] * len(TONES)
    fold = []
    for label in y:
        fold.append(seen[label] % FOLDS)
        seen[label] += 1
    fold = np.array(fold)
    p = np.zeros((len(y), len(TONES)))
    for f in range(FOLDS):
        p[fold == f] = predict(train(x[fold != f], y[fold != f], l2), x[fold == f])
    return p


def wilson(k, n, z=1.96):
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


def fmt(k, n):
    lo, hi = wilson(k, n)
    return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]"


class Embedder:
    """One text per run (no padding), mean pooling, L2 norm; the model's
    inputs and output are named as in bench/inference/ort_bench.py."""

    def __init__(self, onnx_path, tokenizer):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer

    def __call__(self, texts):
        out = []
        for text in texts:
            ids = np.array([self.tokenizer.encode(text).ids], dtype=np.int64)
            (hidden,) = self.session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
            v = hidden[0].mean(axis=0)
            out.append(v / np.linalg.norm(v))
        return np.array(out, dtype=np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--layers", default="2,3,4,6")
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    repo = args.repo

    with open(os.path.join(repo, "models/manifest.toml"), "rb") as f:
        manifest = tomllib.load(f)
    spec = next(m for m in manifest["model"] if m["name"] == "all-minilm-l6-v2")
    pinned = next(f["sha256"] for f in spec["file"] if f["name"] == "model.onnx")
    max_tokens = int(spec["max_tokens"])

    tokenizer = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)

    with open(os.path.join(repo, "guest-plugins/writing-help/tone/training.json")) as f:
        training = json.load(f)["sentences"]
    with open(os.path.join(repo, "eval/writing-help/cases.json")) as f:
        held_out = json.load(f)["tone"]
    y_train = np.array([TONES.index(s["tone"]) for s in training])
    y_held = np.array([TONES.index(s["tone"]) for s in held_out])
    # The tone units of the writing-help latency case (harper splits it into
    # the same six sentences).
    with open(os.path.join(repo, "eval/writing-help/hundred-words.txt")) as f:
        text = f.read()
    units = [u.strip() for u in text.replace("? ", "?\n").replace(". ", ".\n").splitlines() if u.strip()]

    with open(os.path.join(args.model_dir, "config.json")) as f:
        config = json.load(f)
    full_layers = int(config["num_hidden_layers"])
    print(f"cpu: {os.cpu_count()} cores; load {open('/proc/loadavg').read().split()[:3]}")
    print(f"training {len(training)} sentences, held-out {len(held_out)}, timing {len(units)} units")
    timings = {}
    for k in [int(a) for a in args.layers.split(",")]:
        if not 1 <= k <= full_layers:
            sys.exit(f"--layers: {k} is not between 1 and {full_layers}")
        with tempfile.TemporaryDirectory() as tmp:
            cfg = dict(config, num_hidden_layers=k)
            cfg_path = os.path.join(tmp, "config.json")
            with open(cfg_path, "w") as f:
                json.dump(cfg, f)
            onnx_path = os.path.join(tmp, "model.onnx")
            subprocess.run(
                [sys.executable, os.path.join(repo, "models/convert.py"),
                 "--safetensors", os.path.join(args.model_dir, "model.safetensors"),
                 "--config", cfg_path, "--out", onnx_path],
                check=True, stdout=subprocess.DEVNULL)
            with open(onnx_path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if k == full_layers and digest != pinned:
                sys.exit(f"the {k}-layer conversion is {digest}, not the pinned {pinned}")
            embed = Embedder(onnx_path, tokenizer)
            x_train = embed([s["text"] for s in training])
            x_held = embed([s["text"] for s in held_out])
            times = []
            for _ in range(args.iters):
                started = time.perf_counter()
                embed(units)
                times.append(time.perf_counter() - started)
        ms = float(np.median(times)) * 1e3
        timings[k] = ms
        print(f"\n== {k} layers (onnx sha256 {digest[:16]}…): tone units {ms:.1f} ms")
        for l2 in PENALTIES:
            p = cross_validate(x_train, y_train, l2)
            right = p.argmax(axis=1) == y_train
            sure = p.max(axis=1) >= UNSURE_BELOW
            recall = " ".join(
                f"{t} {right[y_train == i].mean():.3f}" for i, t in enumerate(TONES))
            held = predict(train(x_train, y_train, l2), x_held)
            held_right = held.argmax(axis=1) == y_held
            held_sure = held.max(axis=1) >= UNSURE_BELOW
            mark = " (shipped penalty)" if l2 == SHIPPED_PENALTY else ""
            print(f"l2 {l2:g}{mark}: CV accuracy {fmt(int(right.sum()), len(right))}; {recall}; "
                  f"answered {sure.mean():.3f}, right {right[sure].mean():.3f} | "
                  f"held-out {fmt(int(held_right.sum()), len(held_right))}, "
                  f"unsure counted wrong {fmt(int((held_right & held_sure).sum()), len(held_right))}")
    full = timings.get(full_layers)
    print("\nthe tone units' embed call, onnxruntime, 1 thread, median:")
    for k, ms in timings.items():
        ratio = f" ({ms / full:.2f} of the full model)" if full else ""
        print(f"  {k} layers: {ms:.1f} ms{ratio}")


if __name__ == "__main__":
    main()
