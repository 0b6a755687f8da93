#!/usr/bin/python3
"""Counts the FLOPs of one inference of an ONNX model: 2 x the multiply-accumulates of every
Conv, ConvTranspose, MatMul and Gemm (the work that dominates; element-wise ops are left out, as
in the usual GFLOP/s figures of inference engines).

Usage: flops.py MODEL.onnx [--dim NAME=VALUE]... [--batch B] [--json]
  --dim batch=32 --dim seq=128  resolves symbolic input dims by name;
  --batch B                     sets every input's first dim (also a fixed one, for rebatched runs)
Prints the total FLOPs (an integer), or a JSON object with per-op-type totals with --json.

Why not onnx.shape_inference alone: in a transformer export the Reshape targets are computed at
run time (Shape -> Gather -> Div -> Unsqueeze -> Concat), which onnx 1.12's data propagation does
not follow through Div, so the attention MatMuls would have no shapes. This tool propagates shapes
itself, together with the values of small integer tensors (shape arithmetic), for the ops these
models use; for any other op it takes the shape that onnx.shape_inference found, and it fails
loudly, naming the node, if a counted op still has an unknown shape.
"""
import argparse
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Where", "Equal", "Less", "Greater", "And",
               "Or", "Max", "Min", "PRelu"}
UNARY = {"Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Softmax",
         "LogSoftmax", "Cast", "Identity", "Dropout", "LeakyRelu", "Clip", "Not", "Gelu",
         "HardSigmoid", "HardSwish", "Reciprocal", "Floor", "Ceil", "BatchNormalization",
         "LayerNormalization", "InstanceNormalization"}
NP_BINOP = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power}


def attrs_of(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def broadcast(a, b):
    return list(np.broadcast_shapes(tuple(a), tuple(b)))


def conv_out(x, w, at):
    n_sp = len(x) - 2
    ks = list(w[2:])
    strides = at.get("strides", [1] * n_sp)
    dil = at.get("dilations", [1] * n_sp)
    pads = at.get("pads", [0] * (2 * n_sp))
    ap = at.get("auto_pad", b"NOTSET")
    ap = ap.decode() if isinstance(ap, bytes) else ap
    out = [x[0], w[0]]
    for i in range(n_sp):
        if ap in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-x[2 + i] // strides[i]))
        elif ap == "VALID":
            out.append((x[2 + i] - ((ks[i] - 1) * dil[i] + 1)) // strides[i] + 1)
        else:
            eff = (ks[i] - 1) * dil[i] + 1
            out.append((x[2 + i] + pads[i] + pads[i + n_sp] - eff) // strides[i] + 1)
    return out


def pool_out(x, at):
    ks = at["kernel_shape"]
    n_sp = len(ks)
    w = [x[1], x[1]] + list(ks)
    o = conv_out(x, w, at)
    if at.get("ceil_mode", 0):
        strides = at.get("strides", [1] * n_sp)
        pads = at.get("pads", [0] * (2 * n_sp))
        for i in range(n_sp):
            num = x[2 + i] + pads[i] + pads[i + n_sp] - ks[i]
            o[2 + i] = -(-num // strides[i]) + 1
    return o


def count(model, dims_by_name, batch):
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    shapes = {k: list(v.shape) for k, v in inits.items()}
    values = dict(inits)
    for vi in g.input:
        if vi.name in inits:
            continue
        dims = []
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if i == 0 and batch is not None:
                dims.append(batch)
            elif d.HasField("dim_value"):
                dims.append(d.dim_value)
            elif d.dim_param in dims_by_name:
                dims.append(dims_by_name[d.dim_param])
            else:
                raise SystemExit(f"flops.py: input '{vi.name}' dim {i} is symbolic "
                                 f"('{d.dim_param}'): give --dim {d.dim_param}=N")
        shapes[vi.name] = dims
    # onnx's own inference with concrete inputs, as the fallback for ops not handled below
    m2 = onnx.ModelProto()
    m2.CopyFrom(model)
    for vi in m2.graph.input:
        if vi.name in shapes and vi.name not in inits:
            for i, d in enumerate(vi.type.tensor_type.shape.dim):
                d.dim_value = shapes[vi.name][i]
    try:
        inferred = shape_inference.infer_shapes(m2).graph.value_info
    except Exception:  # noqa: BLE001 - the fallback is best-effort
        inferred = []
    fallback = {}
    for vi in inferred:
        dd = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dd):
            fallback[vi.name] = [d.dim_value for d in dd]

    totals = {}
    for node in g.node:
        op, at = node.op_type, attrs_of(node)
        ins = [shapes.get(i) if i else None for i in node.input]
        vals = [values.get(i) if i else None for i in node.input]
        out = None
        val = None
        flops = 0
        try:
            if op == "Constant":
                val = numpy_helper.to_array(at["value"])
                out = list(val.shape)
            elif op == "Shape":
                val = np.array(ins[0], dtype=np.int64)
                out = [len(ins[0])]
            elif op == "Gather":
                axis = at.get("axis", 0)
                idx_shape = ins[1]
                out = ins[0][:axis % len(ins[0])] + idx_shape + ins[0][axis % len(ins[0]) + 1:]
                if vals[0] is not None and vals[1] is not None and vals[0].size <= 64:
                    val = np.take(vals[0], vals[1], axis=axis)
            elif op in ("Unsqueeze", "Squeeze"):
                axes = at.get("axes")
                if axes is None and len(node.input) > 1:
                    axes = [int(a) for a in vals[1]]
                if op == "Unsqueeze":
                    r = len(ins[0]) + len(axes)
                    axes = sorted(a % r for a in axes)
                    out = list(ins[0])
                    for a in axes:
                        out.insert(a, 1)
                else:
                    axes = [a % len(ins[0]) for a in axes] if axes else \
                        [i for i, d in enumerate(ins[0]) if d == 1]
                    out = [d for i, d in enumerate(ins[0]) if i not in axes]
                if vals[0] is not None:
                    val = vals[0].reshape(out)
            elif op == "Concat":
                axis = at["axis"] % len(ins[0])
                out = list(ins[0])
                out[axis] = sum(s[axis] for s in ins)
                if all(v is not None for v in vals):
                    val = np.concatenate(vals, axis=axis)
            elif op == "Range":
                start, limit, delta = (v.item() for v in vals)
                out = [max(0, int(np.ceil((limit - start) / delta)))]
            elif op == "Reshape":
                tgt = [int(v) for v in vals[1]]
                src_n = int(np.prod(ins[0]))
                tgt = [ins[0][i] if (d == 0 and not at.get("allowzero", 0)) else d
                       for i, d in enumerate(tgt)]
                if -1 in tgt:
                    known = int(np.prod([d for d in tgt if d != -1]))
                    tgt[tgt.index(-1)] = src_n // known
                out = tgt
                if vals[0] is not None:
                    val = vals[0].reshape(out)
            elif op == "Flatten":
                axis = at.get("axis", 1) % (len(ins[0]) + 1)
                out = [int(np.prod(ins[0][:axis])), int(np.prod(ins[0][axis:]))]
            elif op == "Transpose":
                perm = at.get("perm", list(range(len(ins[0])))[::-1])
                out = [ins[0][p] for p in perm]
            elif op == "MatMul":
                a, b = ins[0], ins[1]
                a2 = a if len(a) > 1 else [1] + a
                b2 = b if len(b) > 1 else b + [1]
                batch_dims = broadcast(a2[:-2], b2[:-2])
                out = batch_dims + [a2[-2], b2[-1]]
                flops = 2 * int(np.prod(out)) * a2[-1]
                if len(a) == 1:
                    out.pop(-2)
                if len(b) == 1:
                    out.pop(-1)
            elif op == "Gemm":
                a, b = ins[0], ins[1]
                m, k = (a[1], a[0]) if at.get("transA", 0) else (a[0], a[1])
                n = b[0] if at.get("transB", 0) else b[1]
                out = [m, n]
                flops = 2 * m * n * k
            elif op in ("Conv", "ConvTranspose"):
                x, w = ins[0], ins[1]
                if op == "Conv":
                    out = conv_out(x, w, at)
                    flops = 2 * int(np.prod(out)) * int(np.prod(w[1:]))
                else:
                    out = fallback.get(node.output[0])
                    flops = 2 * int(np.prod(x)) * int(np.prod(w[1:]))
            elif op in ("MaxPool", "AveragePool"):
                out = pool_out(ins[0], at)
            elif op in ("GlobalAveragePool", "GlobalMaxPool"):
                out = ins[0][:2] + [1] * (len(ins[0]) - 2)
            elif op in ("ReduceMean", "ReduceSum", "ReduceMax"):
                axes = at.get("axes")
                if axes is None and len(node.input) > 1:
                    axes = [int(a) for a in vals[1]]
                r = len(ins[0])
                axes = [a % r for a in axes] if axes else list(range(r))
                if at.get("keepdims", 1):
                    out = [1 if i in axes else d for i, d in enumerate(ins[0])]
                else:
                    out = [d for i, d in enumerate(ins[0]) if i not in axes]
            elif op in ELEMENTWISE:
                out = ins[0]
                for s in ins[1:]:
                    out = broadcast(out, s)
                if op in NP_BINOP and all(v is not None for v in vals) and len(vals) == 2 \
                        and vals[0].size <= 64 and vals[1].size <= 64:
                    val = NP_BINOP[op](vals[0], vals[1])
                elif op == "Div" and all(v is not None for v in vals) and vals[0].size <= 64:
                    if np.issubdtype(vals[0].dtype, np.integer):
                        val = vals[0] // vals[1]
                    else:
                        val = vals[0] / vals[1]
            elif op in UNARY:
                out = list(ins[0])
                if op in ("Cast", "Identity") and vals[0] is not None:
                    val = vals[0]
            elif op == "Pad":
                pads = at.get("pads")
                if pads is None:
                    pads = [int(p) for p in vals[1]]
                r = len(ins[0])
                out = [d + pads[i] + pads[i + r] for i, d in enumerate(ins[0])]
        except (TypeError, KeyError, IndexError, ValueError):
            out = None
        if out is None:
            out = fallback.get(node.output[0])
        if out is None and op in ("MatMul", "Gemm", "Conv", "ConvTranspose"):
            raise SystemExit(f"flops.py: cannot find the shapes of {op} '{node.name}'")
        if out is not None:
            shapes[node.output[0]] = [int(d) for d in out]
        if val is not None:
            values[node.output[0]] = np.asarray(val)
        if flops:
            totals[op] = totals.get(op, 0) + int(flops)
    return totals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    dims = {}
    for d in a.dim:
        k, _, v = d.partition("=")
        if not v.isdigit():
            ap.error(f"--dim wants NAME=VALUE, got '{d}'")
        dims[k] = int(v)
    totals = count(onnx.load(a.model), dims, a.batch)
    total = sum(totals.values())
    if a.json:
        print(json.dumps({"flops": total, "by_op": totals}))
    else:
        print(total)


if __name__ == "__main__":
    main()
