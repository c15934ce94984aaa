#!/usr/bin/env python3
"""Converts a BERT-family sentence encoder (safetensors weights + config.json)
into an ONNX graph, deterministically: the same inputs and the same pinned
package versions (requirements.txt) give the same output bytes on every run.

Used by `cloister models fetch` for all-MiniLM-L6-v2; the output's
SHA-256 is pinned in manifest.toml, so any drift is refused at fetch time.

Graph (opset 17, IR 8):
  inputs   input_ids, attention_mask, token_type_ids: int64 [batch, sequence]
  output   last_hidden_state: float32 [batch, sequence, hidden]

  embeddings = word[input_ids] + token_type[token_type_ids] + position[0:sequence]
  x          = LayerNorm(embeddings)
  per layer:   x = LayerNorm(x + SelfAttention(x, mask))
               x = LayerNorm(x + W2 · gelu_erf(W1 · x))

Pooling (mean over the attention mask) and L2 normalisation are done by the
host, not in the graph. No torch is needed: the graph is written with the
`onnx` helper API from the numpy arrays that `safetensors` loads.

Usage: convert.py --safetensors model.safetensors --config config.json --out model.onnx
"""

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17
IR_VERSION = 8
PRODUCER = "cloister-models-convert"
PRODUCER_VERSION = "1"


class Graph:
    """Collects nodes and initializers with deterministic, readable names."""

    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.inits = []
        self.init_names = set()
        self.counter = 0

    def weight(self, key, transpose=False):
        name = key
        if transpose:
            name = key + ".T"
        if name not in self.init_names:
            array = self.weights[key]
            if array.dtype != np.float32:
                raise SystemExit(f"convert.py: weight {key} is {array.dtype}, expected float32")
            if transpose:
                array = np.ascontiguousarray(array.T)
            self.inits.append(numpy_helper.from_array(array, name))
            self.init_names.add(name)
        return name

    def const(self, name, array):
        if name not in self.init_names:
            self.inits.append(numpy_helper.from_array(np.asarray(array), name))
            self.init_names.add(name)
        return name

    def node(self, op, inputs, prefix, **attrs):
        self.counter += 1
        out = f"{prefix}/{op}_{self.counter}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x, key, prefix):
        y = self.node("MatMul", [x, self.weight(key + ".weight", transpose=True)], prefix)
        return self.node("Add", [y, self.weight(key + ".bias")], prefix)

    def layer_norm(self, x, key, eps, prefix):
        return self.node(
            "LayerNormalization",
            [x, self.weight(key + ".weight"), self.weight(key + ".bias")],
            prefix,
            axis=-1,
            epsilon=eps,
        )


def build(weights, config):
    if config.get("model_type") != "bert":
        raise SystemExit("convert.py: only BERT-family models are supported")
    if config.get("hidden_act") != "gelu":
        raise SystemExit("convert.py: only the erf GELU activation is supported")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise SystemExit("convert.py: only absolute position embeddings are supported")
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config["layer_norm_eps"])
    if hidden % heads:
        raise SystemExit("convert.py: hidden_size is not a multiple of num_attention_heads")
    head_dim = hidden // heads

    g = Graph(weights)
    # Embeddings.
    p = "embeddings"
    words = g.node("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"], p, axis=0)
    types = g.node(
        "Gather", [g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids"], p, axis=0
    )
    shape = g.node("Shape", ["input_ids"], p)
    seq_len = g.node(
        "Slice",
        [shape, g.const("const.one_i64", np.array([1], np.int64)), g.const("const.two_i64", np.array([2], np.int64))],
        p,
    )
    positions = g.node(
        "Slice",
        [
            g.weight("embeddings.position_embeddings.weight"),
            g.const("const.zero_i64", np.array([0], np.int64)),
            seq_len,
            g.const("const.zero_i64", np.array([0], np.int64)),
        ],
        p,
    )
    x = g.node("Add", [words, types], p)
    x = g.node("Add", [x, positions], p)
    x = g.layer_norm(x, "embeddings.LayerNorm", eps, p)

    # Additive attention mask: 0 where attended, -10000 at padding; [B,1,1,S].
    p = "mask"
    mask = g.node("Cast", ["attention_mask"], p, to=TensorProto.FLOAT)
    mask = g.node("Unsqueeze", [mask, g.const("const.axes_1_2", np.array([1, 2], np.int64))], p)
    mask = g.node("Sub", [g.const("const.one_f32", np.array(1.0, np.float32)), mask], p)
    mask = g.node("Mul", [mask, g.const("const.mask_value", np.array(-10000.0, np.float32))], p)

    split_heads = g.const("const.split_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge_heads = g.const("const.merge_heads", np.array([0, 0, hidden], np.int64))
    scale = g.const("const.attention_scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    inv_sqrt2 = g.const("const.inv_sqrt2", np.array(1.0 / math.sqrt(2.0), np.float32))
    half = g.const("const.half", np.array(0.5, np.float32))
    one = g.const("const.one_f32", np.array(1.0, np.float32))

    for i in range(layers):
        base = f"encoder.layer.{i}"
        p = f"layer{i}/attention"
        q = g.linear(x, f"{base}.attention.self.query", p)
        k = g.linear(x, f"{base}.attention.self.key", p)
        v = g.linear(x, f"{base}.attention.self.value", p)
        q = g.node("Transpose", [g.node("Reshape", [q, split_heads], p)], p, perm=[0, 2, 1, 3])
        k = g.node("Transpose", [g.node("Reshape", [k, split_heads], p)], p, perm=[0, 2, 3, 1])
        v = g.node("Transpose", [g.node("Reshape", [v, split_heads], p)], p, perm=[0, 2, 1, 3])
        scores = g.node("MatMul", [q, k], p)
        scores = g.node("Mul", [scores, scale], p)
        scores = g.node("Add", [scores, mask], p)
        probs = g.node("Softmax", [scores], p, axis=-1)
        ctx = g.node("MatMul", [probs, v], p)
        ctx = g.node("Transpose", [ctx], p, perm=[0, 2, 1, 3])
        ctx = g.node("Reshape", [ctx, merge_heads], p)
        out = g.linear(ctx, f"{base}.attention.output.dense", p)
        x = g.layer_norm(g.node("Add", [out, x], p), f"{base}.attention.output.LayerNorm", eps, p)

        p = f"layer{i}/ffn"
        h = g.linear(x, f"{base}.intermediate.dense", p)
        erf = g.node("Erf", [g.node("Mul", [h, inv_sqrt2], p)], p)
        h = g.node("Mul", [g.node("Mul", [h, half], p), g.node("Add", [erf, one], p)], p)
        out = g.linear(h, f"{base}.output.dense", p)
        x = g.layer_norm(g.node("Add", [out, x], p), f"{base}.output.LayerNorm", eps, p)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))

    int_input = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        g.nodes,
        "sentence-encoder",
        [int_input("input_ids"), int_input("attention_mask"), int_input("token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        producer_version=PRODUCER_VERSION,
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--safetensors", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    with open(args.config, "rb") as f:
        config = json.load(f)
    weights = load_file(args.safetensors)
    model = build(weights, config)
    data = model.SerializeToString(deterministic=True)

    tmp = args.out + ".partial"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, args.out)
    print(f"convert.py: wrote {args.out} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")


if __name__ == "__main__":
    sys.exit(main())
