#!/usr/bin/python3
"""Writes the MiniLM-shaped encoder of make_minilm.py as a sentence-transformers model directory.

Same seeded weights as `make_minilm.py --seed N` (the ONNX model is built by that tool's own code and
its initializers are converted), laid out the way Hugging Face and sentence-transformers save a model,
so that `tandem embed --model DIR` (safetensors, graph built from the weights) and
`tandem embed --model DIR/onnx/model.onnx` (ONNX reader) load the same encoder two ways:

  DIR/config.json               BertModel config (hidden, layers, heads, intermediate, gelu, eps)
  DIR/model.safetensors         float32 weights with Hugging Face names; Linear weights [out, in]
                                (--f16 writes float16 instead)
  DIR/vocab.txt, tokenizer*.json, special_tokens_map.json   from ../shared/tokenizers/all-MiniLM-L6-v2
  DIR/modules.json, 1_Pooling/config.json, sentence_bert_config.json   mean pooling, Normalize,
                                max_seq_length 256 (all-MiniLM-L6-v2's pipeline)
  DIR/onnx/model.onnx           the ONNX export of the same weights

safetensors is written with numpy (8-byte little-endian header length, JSON header padded with spaces
to 8 bytes, raw little-endian data), no extra package needed.

Usage: make_minilm_st.py OUT_DIR [--seed N] [--layers 6 --hidden 384 --heads 12 --intermediate 1536]
                         [--like-bert-tiny] [--f16] [--tokenizer DIR]
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_minilm  # noqa: E402


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        dt = {np.float32: "F32", np.float16: "F16"}[arr.dtype.type]
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=1536)
    ap.add_argument("--like-bert-tiny", action="store_true")
    ap.add_argument("--f16", action="store_true", help="store the weights as float16")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--tokenizer", default=os.environ.get(
        "TDM_SHARED_DIR", os.path.join(here, "..", "..", "shared")) + "/tokenizers/all-MiniLM-L6-v2")
    a = ap.parse_args()
    cfg = dict(hidden=a.hidden, layers=a.layers, heads=a.heads, intermediate=a.intermediate,
               vocab=30522, max_pos=512, type_vocab=2)
    if a.like_bert_tiny:
        cfg.update(hidden=96, layers=2, heads=2, intermediate=256)
    if cfg["hidden"] % cfg["heads"]:
        sys.exit("make_minilm_st.py: --hidden must be a multiple of --heads")
    if not os.path.isfile(os.path.join(a.tokenizer, "vocab.txt")):
        sys.exit(f"make_minilm_st.py: no vocab.txt in {a.tokenizer} (--tokenizer DIR)")
    model = make_minilm.build(cfg, a.seed)

    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    tensors = []
    mm_names = [t.name for t in model.graph.initializer if t.name.startswith("onnx::MatMul_")]
    kinds = ["attention.self.query", "attention.self.key", "attention.self.value",
             "attention.output.dense", "intermediate.dense", "output.dense"]
    if len(mm_names) != 6 * cfg["layers"]:
        sys.exit("make_minilm_st.py: unexpected MatMul weights in the ONNX model")
    for name, arr in inits.items():
        if name.startswith("m."):
            tensors.append((name[2:], arr))
    for i, name in enumerate(mm_names):  # in layer order, q k v o i 2 (see make_minilm.build)
        layer, kind = divmod(i, 6)
        tensors.append((f"encoder.layer.{layer}.{kinds[kind]}.weight", inits[name].T))
    tensors.sort(key=lambda t: t[0])
    if a.f16:
        tensors = [(n, t.astype(np.float16)) for n, t in tensors]
    else:
        tensors = [(n, t.astype(np.float32)) for n, t in tensors]

    os.makedirs(os.path.join(a.out, "1_Pooling"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "onnx"), exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), tensors)
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": cfg["hidden"], "num_hidden_layers": cfg["layers"],
        "num_attention_heads": cfg["heads"], "intermediate_size": cfg["intermediate"],
        "max_position_embeddings": cfg["max_pos"], "type_vocab_size": cfg["type_vocab"],
        "vocab_size": cfg["vocab"], "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "torch_dtype": "float16" if a.f16 else "float32",
    }
    files = {
        "config.json": config,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
        "1_Pooling/config.json": {"word_embedding_dimension": cfg["hidden"],
                                  "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                                  "pooling_mode_max_tokens": False,
                                  "pooling_mode_mean_sqrt_len_tokens": False},
        "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": False},
    }
    for name, obj in files.items():
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        src = os.path.join(a.tokenizer, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(a.out, name))
    onnx.save(model, os.path.join(a.out, "onnx", "model.onnx"))
    n = sum(int(t.size) for _, t in tensors)
    print(f"wrote {a.out}: {cfg['layers']} layers, hidden {cfg['hidden']}, {n} parameters "
          f"({'float16' if a.f16 else 'float32'})", file=sys.stderr)


if __name__ == "__main__":
    main()
