#!/usr/bin/env python3
"""Independent reference for the host's embeddings: onnxruntime + the Python
`tokenizers` package on a fixed set of inputs.

Writes models/reference/<model>.json with, per input, the token ids (no
padding, truncation at the manifest's max_tokens) and the embedding (mean
pooling over the attention mask, L2 norm), each text run on its own (batch
of one, no padding), so that nothing about the host's batching is assumed.
The host's test (host/inference/tests/reference.rs) compares token ids
exactly and embeddings at cosine >= 0.9999.

It runs only on files whose SHA-256 matches the manifest.

Usage (from the repository root, in the reference environment, see
models/README.md):
  reference.py [--manifest models/manifest.toml] [--data-dir target/models]
"""

import argparse
import hashlib
import json
import os
import sys
import tomllib

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))

# A long text: well past 256 tokens, to exercise truncation.
LONG = " ".join(
    f"Paragraph {i}: the quarterly report covers revenue, hiring, infrastructure costs and the roadmap for next year."
    for i in range(1, 25)
)

INPUTS = [
    "hey, are we still on for lunch tomorrow?",
    "Running 10 min late 🙏 sorry!!",
    "lol that's hilarious 😂😂😂",
    "Can you send me the link? https://example.com/docs/setup?id=42&lang=en#install",
    "Meeting moved to 3:30pm — room B-204.",
    "Je serai là vers 18h, on se retrouve devant la gare ?",
    "Können wir das Treffen auf nächste Woche verschieben?",
    "明天下午三点开会，请准时参加。",
    "東京は今日とても暑いです。",
    "Привет! Как дела?",
    "مرحبا، كيف حالك اليوم؟",
    "👍",
    "",
    "   ",
    "ok",
    "The quick brown fox jumps over the lazy dog.",
    "email me at jane.doe+test@example.org or call +1 (555) 010-9999",
    "CAPS LOCK IS CRUISE CONTROL FOR COOL",
    "naïve café résumé coöperate façade",
    "<script>alert('x')</script> && rm -rf / ; DROP TABLE users;--",
    "\t tabs\nand\nnewlines\r\n",
    LONG,
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    root = os.path.dirname(HERE)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=os.path.join(HERE, "manifest.toml"))
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("CLOISTER_MODELS_DIR") or os.path.join(root, "target", "models"),
    )
    parser.add_argument("--model", default="all-minilm-l6-v2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    with open(args.manifest, "rb") as f:
        manifest = tomllib.load(f)
    spec = next((m for m in manifest["model"] if m["name"] == args.model), None)
    if spec is None:
        raise SystemExit(f"reference.py: model {args.model} is not in {args.manifest}")
    files = {f["role"]: f for f in spec["file"]}
    model_dir = os.path.join(args.data_dir, args.model)
    paths = {}
    for role in ("onnx", "tokenizer"):
        f = files[role]
        path = os.path.join(model_dir, f["name"])
        if not os.path.exists(path):
            raise SystemExit(f"reference.py: {path} is missing; run `cloister models fetch`")
        actual = sha256_file(path)
        if actual != f["sha256"]:
            raise SystemExit(f"reference.py: {path} has sha256 {actual}, the manifest pins {f['sha256']}")
        paths[role] = path

    tok = Tokenizer.from_file(paths["tokenizer"])
    tok.no_padding()
    tok.enable_truncation(spec["max_tokens"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(paths["onnx"], options, providers=["CPUExecutionProvider"])

    records = []
    for text in INPUTS:
        enc = tok.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        (hidden,) = session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )
        m = mask[0].astype(np.float64)[:, None]
        pooled = (hidden[0].astype(np.float64) * m).sum(0) / m.sum()
        emb = pooled / max(np.linalg.norm(pooled), 1e-12)
        records.append(
            {
                "text": text,
                "ids": list(enc.ids),
                "embedding": [float(f"{x:.8g}") for x in emb],
            }
        )

    out = args.out or os.path.join(HERE, "reference", f"{args.model}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    doc = {
        "model": args.model,
        "onnx_sha256": files["onnx"]["sha256"],
        "tokenizer_sha256": files["tokenizer"]["sha256"],
        "max_tokens": spec["max_tokens"],
        "runtime": f"onnxruntime {ort.__version__}, tokenizers (Python)",
        "pooling": "mean over attention mask, L2 normalised",
        "inputs": records,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    longest = max(len(r["ids"]) for r in records)
    print(f"reference.py: wrote {out} ({len(records)} inputs, longest {longest} tokens)")


if __name__ == "__main__":
    sys.exit(main())
