'use strict';
/*
 * A small NumPy .npy reader and writer for the ONNX Runtime peer tools.
 *
 * The peer and tandem exchange tensors only through .npy files, so that neither side needs the
 * other's API and any file can be inspected with numpy. Only what the tools need is supported:
 * versions 1.0-3.0, C order, little-endian (or byte-order-free) float32, float64, int64, int32,
 * int8, uint8 and bool. Anything else is refused with an error naming the file and the field,
 * never read wrongly. Arrays come back as { dtype, shape, data } with data a typed array
 * (BigInt64Array for int64, Uint8Array for bool), the layout onnxruntime-node's Tensor takes.
 */
const fs = require('fs');

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

// dtype name -> [descr, typed array constructor]
const DTYPES = {
    float32: ['<f4', Float32Array],
    float64: ['<f8', Float64Array],
    int64: ['<i8', BigInt64Array],
    int32: ['<i4', Int32Array],
    int8: ['|i1', Int8Array],
    uint8: ['|u1', Uint8Array],
    bool: ['|b1', Uint8Array],
};
const DESCR_TO_DTYPE = {};
for (const [name, [descr]] of Object.entries(DTYPES)) {
    DESCR_TO_DTYPE[descr] = name;
    if (descr[0] === '|') {
        DESCR_TO_DTYPE['<' + descr.slice(1)] = name; // '<u1' is legal too
    }
}
DESCR_TO_DTYPE['<b1'] = 'bool';
DESCR_TO_DTYPE['|b'] = 'bool';

function fail(path, msg) {
    throw new Error(`${path}: ${msg}`);
}

/* Parses the Python-dict header: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
function parseHeader(path, text) {
    const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
    const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
    const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
    if (!descr || !fortran || !shape) {
        fail(path, `malformed .npy header: ${JSON.stringify(text.trim())}`);
    }
    if (fortran[1] === 'True') {
        fail(path, 'Fortran-order arrays are not supported');
    }
    const dtype = DESCR_TO_DTYPE[descr[1]];
    if (!dtype) {
        fail(path, `unsupported dtype '${descr[1]}' (want float32/64, int64/32/8, uint8, bool)`);
    }
    const dims = shape[1]
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
        .map((s) => {
            if (!/^\d+$/.test(s)) {
                fail(path, `bad dimension '${s}' in shape`);
            }
            return Number(s);
        });
    return { dtype, shape: dims };
}

/* Reads a whole .npy file into { dtype, shape, data }. */
function readNpy(path) {
    const buf = fs.readFileSync(path);
    if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) {
        fail(path, 'not a .npy file (bad magic)');
    }
    const major = buf[6];
    let hlen;
    let off;
    if (major === 1) {
        hlen = buf.readUInt16LE(8);
        off = 10;
    } else if (major === 2 || major === 3) {
        if (buf.length < 12) {
            fail(path, 'truncated header');
        }
        hlen = buf.readUInt32LE(8);
        off = 12;
    } else {
        fail(path, `unsupported .npy version ${major}`);
    }
    if (off + hlen > buf.length) {
        fail(path, 'header longer than the file');
    }
    const { dtype, shape } = parseHeader(path, buf.toString('latin1', off, off + hlen));
    const [, Ctor] = DTYPES[dtype];
    const numel = shape.reduce((a, b) => a * b, 1);
    const bytes = numel * Ctor.BYTES_PER_ELEMENT;
    const start = off + hlen;
    if (!Number.isSafeInteger(bytes) || buf.length - start < bytes) {
        fail(path, `data is ${buf.length - start} bytes, shape [${shape}] needs ${bytes}`);
    }
    // Copy into a fresh, aligned buffer: the file buffer's offset may not be a multiple of 8.
    const data = new Ctor(numel);
    Buffer.from(data.buffer).set(buf.subarray(start, start + bytes));
    return { dtype, shape, data };
}

/* Writes { dtype, shape, data } as a version 1.0 .npy file. */
function writeNpy(path, arr) {
    const entry = DTYPES[arr.dtype];
    if (!entry) {
        throw new Error(`${path}: cannot write dtype '${arr.dtype}'`);
    }
    const shapeStr = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
    let header = `{'descr': '${entry[0]}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
    // magic(6) + version(2) + len(2) + header + '\n' padded to a multiple of 64
    const total = Math.ceil((10 + header.length + 1) / 64) * 64;
    header = header.padEnd(total - 10 - 1, ' ') + '\n';
    const head = Buffer.alloc(10);
    MAGIC.copy(head, 0);
    head[6] = 1;
    head[7] = 0;
    head.writeUInt16LE(header.length, 8);
    const d = arr.data;
    const body = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    fs.writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

/* tandem's output naming: every character outside [A-Za-z0-9_.-] becomes '_'. */
function sanitizeName(name) {
    return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

module.exports = { readNpy, writeNpy, sanitizeName, DTYPES };
