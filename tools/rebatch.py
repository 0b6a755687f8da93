#!/usr/bin/python3
"""Rewrites an ONNX model's batch dimension: rebatch.py IN.onnx OUT.onnx B

Why: the VNN-COMP classifiers declare a fixed batch of 1, so neither tandem nor ONNX Runtime will
accept a batch of 64 for them, yet batched throughput is what a cloud tail sees. B is either a
number (a fixed batch, e.g. 64) or a name (a symbolic dimension, e.g. N, so any batch runs).

What changes: dim 0 of every graph input and output; every Reshape whose target shape is a
constant (an initializer or a Constant node) and starts with the old batch gets -1 there, which
stays right for any batch (a Reshape whose shape is computed at run time already follows the
input); intermediate value_info shapes are dropped since they would contradict the new batch.
Nothing else is touched, so the weights and the math are exactly those of IN.
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def rebatch(model, batch):
    g = model.graph
    init_names = {t.name for t in g.initializer}
    old = None
    for vi in list(g.input) + list(g.output):
        if vi.name in init_names:
            continue  # opset < 9 style: initializers listed as inputs
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 0:
            continue
        if old is None and dims[0].HasField("dim_value"):
            old = dims[0].dim_value
        if isinstance(batch, int):
            dims[0].dim_value = batch
        else:
            dims[0].dim_param = batch
    if old is None:
        old = 1
    del g.value_info[:]

    # Reshape targets: rewrite a leading old-batch entry to -1 (only if exactly one tensor feeds it,
    # so a shape constant shared with other ops is copied rather than changed under them).
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    changed = 0
    for n in g.node:
        if n.op_type != "Reshape" or len(n.input) < 2:
            continue
        src = n.input[1]
        if src in inits:
            arr = numpy_helper.to_array(inits[src])
        elif src in consts:
            attr = next((a for a in consts[src].attribute if a.name == "value"), None)
            if attr is None:
                continue
            arr = numpy_helper.to_array(attr.t)
        else:
            continue
        if arr.ndim != 1 or arr.size == 0 or arr[0] != old or old == -1:
            continue
        new = arr.copy()
        new[0] = -1
        name = src + "_rebatched"
        g.initializer.append(numpy_helper.from_array(new.astype(np.int64), name))
        n.input[1] = name
        changed += 1
    return old, changed


def main():
    if len(sys.argv) != 4 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip().split("\n")[0], file=sys.stderr)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    src, dst, b = sys.argv[1:]
    batch = int(b) if b.isdigit() else b
    if batch == 0:
        sys.exit("rebatch.py: batch must be at least 1")
    model = onnx.load(src)
    old, changed = rebatch(model, batch)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    print(f"rebatch.py: {src} -> {dst}: batch {old} -> {batch}, {changed} Reshape shapes rewritten",
          file=sys.stderr)


if __name__ == "__main__":
    main()
