#!/usr/bin/python3
"""Writes a BERT encoder ONNX model of all-MiniLM-L6-v2's shape with seeded random weights.

Why a generator: the real all-MiniLM-L6-v2 weights cannot be downloaded here, but the engine's speed
and memory on that architecture can be measured on any weights of the same shape. What matters is
that the graph has the SAME op structure as a Hugging Face transformers export (torch.onnx, opset 14):
the engine's fusion passes pattern-match that structure (decomposed LayerNorm, Erf GELU, the
Shape/Gather/Unsqueeze/Concat chains that feed each Reshape, the (1 - mask) * -10000 attention mask),
so a hand-simplified graph would flatter it. The node sequence below mirrors
../shared/models/bert-tiny/onnx/model.onnx node for node (same names, same order, same constants),
parameterised by the sizes; `--like-bert-tiny` builds bert-tiny's sizes so the structure can be
checked against that file (`--check-against`).

Weights: normal(0, 0.02) like BERT's initialiser; biases and LayerNorm parameters get small random
values too (not 0 and 1) so that a kernel that ignores a bias or a LayerNorm scale fails parity.

Usage: make_minilm.py OUT.onnx [--seed N] [--layers 6 --hidden 384 --heads 12 --intermediate 1536]
       make_minilm.py OUT.onnx --like-bert-tiny --check-against ../shared/models/bert-tiny/onnx/model.onnx
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    """Appends nodes with torch.onnx-style names and keeps per-op-name counters."""

    def __init__(self):
        self.nodes = []
        self.inits = []
        self.count = {}

    def _name(self, scope, op):
        key = scope + "/" + op
        n = self.count.get(key, 0)
        self.count[key] = n + 1
        return f"{scope}/{op}" if n == 0 else f"{scope}/{op}_{n}"

    def node(self, op, inputs, scope="", **attrs):
        name = self._name(scope, op)
        out = name + "_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def const(self, value, dtype, shape_1d=False, scope=""):
        arr = np.array([value] if shape_1d else value, dtype=dtype)
        return self.node("Constant", [], scope=scope, value=numpy_helper.from_array(arr))

    def anon_unsqueeze_axes(self, const_id, out_id):
        """torch's anonymous 'Constant_<n>' node producing 'onnx::Unsqueeze_<m>' = [0]."""
        arr = numpy_helper.from_array(np.array([0], dtype=np.int64))
        out = f"onnx::Unsqueeze_{out_id}"
        self.nodes.append(helper.make_node("Constant", [], [out], name=f"Constant_{const_id}",
                                           value=arr))
        return out

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name


def build(cfg, seed):
    rng = np.random.default_rng(seed)
    H, L, NH, I = cfg["hidden"], cfg["layers"], cfg["heads"], cfg["intermediate"]
    V, P, T = cfg["vocab"], cfg["max_pos"], cfg["type_vocab"]
    assert H % NH == 0, "hidden must be a multiple of heads"

    def w(*shape):
        return rng.normal(0.0, 0.02, size=shape).astype(np.float32)

    def ln_scale(n):
        return (1.0 + rng.normal(0.0, 0.02, size=n)).astype(np.float32)

    b = Builder()
    # Initializers in the same order as the export: named parameters first, then the transposed
    # MatMul weights that torch.onnx renames to onnx::MatMul_<n>.
    b.init("m.embeddings.word_embeddings.weight", w(V, H))
    b.init("m.embeddings.position_embeddings.weight", w(P, H))
    b.init("m.embeddings.token_type_embeddings.weight", w(T, H))
    b.init("m.embeddings.LayerNorm.weight", ln_scale(H))
    b.init("m.embeddings.LayerNorm.bias", w(H))
    for l in range(L):
        p = f"m.encoder.layer.{l}."
        for n, size in (("attention.self.query.bias", H), ("attention.self.key.bias", H),
                        ("attention.self.value.bias", H), ("attention.output.dense.bias", H)):
            b.init(p + n, w(size))
        b.init(p + "attention.output.LayerNorm.weight", ln_scale(H))
        b.init(p + "attention.output.LayerNorm.bias", w(H))
        b.init(p + "intermediate.dense.bias", w(I))
        b.init(p + "output.dense.bias", w(H))
        b.init(p + "output.LayerNorm.weight", ln_scale(H))
        b.init(p + "output.LayerNorm.bias", w(H))
    # torch numbers the first weight before its shape helper values: 284, then 291, 292, ...
    mm_ids = iter([284] + list(range(291, 291 + 6 * L)))
    mm = []
    for l in range(L):
        mm.append([b.init(f"onnx::MatMul_{next(mm_ids)}", w(*shape))
                   for shape in ((H, H), (H, H), (H, H), (H, H), (H, I), (I, H))])

    # ---- embeddings --------------------------------------------------------------------------
    shape0 = b.node("Shape", ["input_ids"])
    batch = b.node("Gather", [shape0, b.const(0, np.int64)], axis=0)
    shape1 = b.node("Shape", ["input_ids"])
    seq = b.node("Gather", [shape1, b.const(1, np.int64)], axis=0)
    seq64 = b.node("Cast", [seq], to=TensorProto.INT64)
    pos = b.node("Range", [b.const(0, np.int64), seq64, b.const(1, np.int64)])
    pos_ids = b.node("Unsqueeze", [pos, b.const(0, np.int64, True)])
    we = b.node("Gather", ["m.embeddings.word_embeddings.weight", "input_ids"],
                scope="/word_embeddings")
    te = b.node("Gather", ["m.embeddings.token_type_embeddings.weight", "token_type_ids"],
                scope="/token_type_embeddings")
    x = b.node("Add", [we, te])
    pe = b.node("Gather", ["m.embeddings.position_embeddings.weight", pos_ids],
                scope="/position_embeddings")
    x = b.node("Add", [x, pe])

    ln_count = [0]

    def layer_norm(x_in, weight, bias):
        k = ln_count[0]
        ln_count[0] += 1
        s = "/LayerNorm" if k == 0 else f"/LayerNorm_{k}"
        mean = b.node("ReduceMean", [x_in], scope=s, axes=[-1])
        d = b.node("Sub", [x_in, mean], scope=s)
        sq = b.node("Pow", [d, b.const(2.0, np.float32, scope=s)], scope=s)
        var = b.node("ReduceMean", [sq], scope=s, axes=[-1])
        ve = b.node("Add", [var, b.const(9.999999960041972e-13, np.float32, scope=s)], scope=s)
        sd = b.node("Sqrt", [ve], scope=s)
        nrm = b.node("Div", [d, sd], scope=s)
        sc = b.node("Mul", [nrm, weight], scope=s)
        return b.node("Add", [sc, bias], scope=s)

    x = layer_norm(x, "m.embeddings.LayerNorm.weight", "m.embeddings.LayerNorm.bias")

    # ---- extended attention mask: (1 - mask[:, None, None, :]) * -10000 ------------------------
    m1 = b.node("Unsqueeze", ["attention_mask", b.const(1, np.int64, True)])
    m2 = b.node("Unsqueeze", [m1, b.const(2, np.int64, True)])
    mf = b.node("Cast", [m2], to=TensorProto.FLOAT)
    inv = b.node("Sub", [b.const(1.0, np.float32), mf])
    mask_add = b.node("Mul", [inv, b.const(-10000.0, np.float32)])

    # ---- head size = hidden / heads, computed from the shape like the export ---------------------
    shape2 = b.node("Shape", [x])
    hid = b.node("Gather", [shape2, b.const(2, np.int64)], axis=0)
    hd = b.node("Div", [hid, b.const(NH, np.int64)])
    hd = b.node("Cast", [hd], to=TensorProto.INT64)
    hd = b.node("Cast", [hd], to=TensorProto.INT64)

    dense_count = [0]

    def linear(x_in, weight, bias, base):
        k = dense_count[0] if base == "dense" else None
        if base == "dense":
            dense_count[0] += 1
            s = "/dense" if k == 0 else f"/dense_{k}"
        else:
            s = "/" + base
        y = b.node("MatMul", [x_in, weight], scope=s)
        return b.node("Add", [bias, y], scope=s)

    # Ids of torch's anonymous Unsqueeze-axes constants, in its numbering pattern (only names).
    ids = {"const": 105, "value": 88}

    def anon_unsq(val, dc, dv):
        axes = b.anon_unsqueeze_axes(ids["const"] + dc, ids["value"] + dv)
        return b.node("Unsqueeze", [val, axes])

    def heads_shape():
        """Concat([batch, seq, heads, head_dim]) as the export builds it for every Reshape."""
        ub = anon_unsq(batch, 0, 0)
        us = anon_unsq(seq, 2, 2)
        cn = b.const(NH, np.int64, True)
        uh = anon_unsq(hd, 5, 6)
        ids["const"] += 8
        ids["value"] += 9
        return b.node("Concat", [ub, us, cn, uh], axis=0)

    def merged_shape(hidden):
        """Concat([batch, seq, hidden]) for the Reshape after attention."""
        parts = [anon_unsq(batch, 0, 0), anon_unsq(seq, 2, 2), anon_unsq(hidden, 4, 4)]
        ids["const"] += 7
        ids["value"] += 7
        return b.node("Concat", parts, axis=0)

    # torch hoists the Q/K/V reshape shapes of every layer to the first use, then the first
    # layer's query projection comes before them.
    scale = None
    for l in range(L):
        p = f"m.encoder.layer.{l}."
        sfx = "" if l == 0 else f"_{l}"
        w_q, w_k, w_v, w_o, w_i, w_2 = mm[l]
        q = linear(x, w_q, p + "attention.self.query.bias", "query" + sfx)
        if l == 0:
            shapes = [[heads_shape(), heads_shape(), heads_shape()] for _ in range(L)]
        sq_, sk_, sv_ = shapes[l]
        qh = b.node("Transpose", [b.node("Reshape", [q, sq_], allowzero=0)], perm=[0, 2, 1, 3])
        k_ = linear(x, w_k, p + "attention.self.key.bias", "key" + sfx)
        kr = b.node("Reshape", [k_, sk_], allowzero=0)
        v_ = linear(x, w_v, p + "attention.self.value.bias", "value" + sfx)
        vh = b.node("Transpose", [b.node("Reshape", [v_, sv_], allowzero=0)], perm=[0, 2, 1, 3])
        kt = b.node("Transpose", [kr], perm=[0, 2, 3, 1])
        scores = b.node("MatMul", [qh, kt])
        if l == 0:
            hdf = b.node("Cast", [hd], to=TensorProto.FLOAT)
            scale = b.node("Pow", [hdf, b.const(0.5, np.float32)])
        scores = b.node("Div", [scores, scale])
        scores = b.node("Add", [scores, mask_add])
        probs = b.node("Softmax", [scores], axis=-1)
        ctx = b.node("MatMul", [probs, vh])
        ctx = b.node("Transpose", [ctx], perm=[0, 2, 1, 3])
        if l == 0:
            hidden = b.node("Mul", [hd, b.const(NH, np.int64)])
            ids["const"] += 21  # torch's numbering skips the ids it used in between
            ids["value"] += 23
            out_shapes = [merged_shape(hidden) for _ in range(L)]
        ctx = b.node("Reshape", [ctx, out_shapes[l]], allowzero=0)
        att = linear(ctx, w_o, p + "attention.output.dense.bias", "dense")
        x1 = b.node("Add", [att, x])
        x1 = layer_norm(x1, p + "attention.output.LayerNorm.weight",
                        p + "attention.output.LayerNorm.bias")
        h = linear(x1, w_i, p + "intermediate.dense.bias", "dense")
        g = b.node("Div", [h, b.const(1.4142135381698608, np.float32)])
        g = b.node("Erf", [g])
        g = b.node("Add", [g, b.const(1.0, np.float32)])
        g = b.node("Mul", [h, g])
        g = b.node("Mul", [g, b.const(0.5, np.float32)])
        o = linear(g, w_2, p + "output.dense.bias", "dense")
        x2 = b.node("Add", [o, x1])
        x = layer_norm(x2, p + "output.LayerNorm.weight", p + "output.LayerNorm.bias")

    # The last LayerNorm writes the graph output directly.
    b.nodes[-1].output[0] = "last_hidden_state"

    def io(name, elem, dims):
        return helper.make_tensor_value_info(name, elem, dims)

    inputs = [io(n, TensorProto.INT64, ["batch", "seq"])
              for n in ("input_ids", "attention_mask", "token_type_ids")]
    outputs = [io("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", H])]
    graph = helper.make_graph(b.nodes, "main_graph", inputs, outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)],
                              producer_name="tandem-make_minilm", producer_version="1")
    model.ir_version = 7
    return model


def structure(model):
    """(op_type, attributes without tensor values) per node: what must match an HF export."""
    out = []
    for n in model.graph.node:
        attrs = []
        for a in n.attribute:
            v = helper.get_attribute_value(a)
            if isinstance(v, TensorProto):
                v = (v.data_type, tuple(v.dims))
            elif isinstance(v, list):
                v = tuple(v)
            attrs.append((a.name, v))
        out.append((n.op_type, tuple(sorted(attrs))))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=1536)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--like-bert-tiny", action="store_true",
                    help="use bert-tiny's sizes (hidden 96, 2 layers, 2 heads, intermediate 256)")
    ap.add_argument("--check-against", metavar="MODEL.onnx",
                    help="fail unless the op structure equals that model's")
    a = ap.parse_args()
    cfg = dict(hidden=a.hidden, layers=a.layers, heads=a.heads, intermediate=a.intermediate,
               vocab=a.vocab, max_pos=a.max_pos, type_vocab=2)
    if a.like_bert_tiny:
        cfg.update(hidden=96, layers=2, heads=2, intermediate=256)
    if cfg["hidden"] % cfg["heads"]:
        sys.exit("make_minilm.py: --hidden must be a multiple of --heads")
    model = build(cfg, a.seed)
    onnx.checker.check_model(model)
    if a.check_against:
        ref = onnx.load(a.check_against)
        s_ref, s_new = structure(ref), structure(model)
        names_ref = [n.name for n in ref.graph.node]
        names_new = [n.name for n in model.graph.node]
        if s_ref != s_new or names_ref != names_new:
            for i, (x, y) in enumerate(zip(s_ref, s_new)):
                if x != y or names_ref[i] != names_new[i]:
                    sys.exit(f"make_minilm.py: node {i} differs: {names_ref[i]} {x} vs "
                             f"{names_new[i]} {y}")
            sys.exit(f"make_minilm.py: node counts differ: {len(s_ref)} vs {len(s_new)}")
        inits = [(t.name, tuple(t.dims)) for t in model.graph.initializer]
        if inits != [(t.name, tuple(t.dims)) for t in ref.graph.initializer]:
            sys.exit("make_minilm.py: initializer names or shapes differ")
        if [list(n.input) for n in model.graph.node] != [list(n.input) for n in ref.graph.node]:
            sys.exit("make_minilm.py: node inputs (the wiring) differ")
        print(f"structure matches {a.check_against} ({len(s_new)} nodes)", file=sys.stderr)
    onnx.save(model, a.out)
    n_params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print(f"wrote {a.out}: {cfg['layers']} layers, hidden {cfg['hidden']}, {cfg['heads']} heads, "
          f"{len(model.graph.node)} nodes, {n_params} parameters ({n_params * 4} bytes)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
