#!/usr/bin/env node
'use strict';
/*
 * Writes deterministic random inputs for a model, one .npy per graph input.
 *
 *   node tools/peer/make_inputs.js MODEL.onnx --batch B --seq S --out DIR [--seed K]
 *        [--vocab V] [--pad]
 *
 * The model's declared inputs (read through onnxruntime-node's metadata, so no protobuf parser is
 * needed here) decide names, dtypes and shapes. Symbolic dimensions are resolved from --batch
 * (the first dimension) and --seq (any other); fixed ones are kept. Values follow what the model
 * expects so that the outputs are meaningful, not NaN soup: float inputs uniform in [0, 1) (image
 * pixels scaled by 1/255), int64 token ids in [0, vocab) for ids, 1 for attention masks, 0 for
 * token type ids, 0..S-1 for position ids. --pad zeroes the tail of the mask in row b (b tokens)
 * so that batched runs exercise masking. The generator is a seeded xorshift, so the same
 * arguments give the same bytes on every machine.
 *
 * Prints the --input arguments that both `tandem run` and ort_run.js take, on one line.
 */
const fs = require('fs');
const path = require('path');
const { writeNpy, sanitizeName } = require('./npy');

const USAGE = `usage: make_inputs.js MODEL.onnx --batch B --seq S --out DIR [--seed K] [--vocab V] [--pad]`;

function usageError(msg) {
    process.stderr.write(`make_inputs.js: ${msg} (try --help)\n`);
    process.exit(2);
}

/* xorshift32 seeded through a splitmix-style scramble, so seeds 0, 1, 2 differ well. */
function makeRng(seed) {
    let s = (seed ^ 0x9e3779b9) >>> 0;
    s = Math.imul(s ^ (s >>> 16), 0x85ebca6b) >>> 0;
    s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35) >>> 0;
    s = (s ^ (s >>> 16)) >>> 0 || 1;
    return () => {
        s ^= s << 13;
        s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5;
        s >>>= 0;
        return s / 4294967296;
    };
}

function parseArgs(argv) {
    const a = { model: null, batch: 1, seq: 16, out: null, seed: 0, vocab: 30522, pad: false };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const num = () => {
            const v = argv[++i];
            if (v === undefined || !/^\d+$/.test(v)) {
                usageError(`${arg} needs a non-negative integer, got '${v}'`);
            }
            return Number(v);
        };
        if (arg === '--help' || arg === '-h') {
            process.stdout.write(USAGE + '\n');
            process.exit(0);
        } else if (arg === '--batch') {
            a.batch = num();
        } else if (arg === '--seq') {
            a.seq = num();
        } else if (arg === '--seed') {
            a.seed = num();
        } else if (arg === '--vocab') {
            a.vocab = num();
        } else if (arg === '--pad') {
            a.pad = true;
        } else if (arg === '--out') {
            a.out = argv[++i];
        } else if (arg.startsWith('-')) {
            usageError(`unknown option '${arg}'`);
        } else if (a.model === null) {
            a.model = arg;
        } else {
            usageError(`unexpected argument '${arg}'`);
        }
    }
    if (a.model === null || !a.out) {
        usageError('MODEL.onnx and --out DIR are required');
    }
    if (a.batch < 1 || a.seq < 1 || a.vocab < 1) {
        usageError('--batch, --seq and --vocab must be at least 1');
    }
    return a;
}

function fill(meta, shape, a, rng) {
    const n = shape.reduce((x, y) => x * y, 1);
    const name = meta.name.toLowerCase();
    const seqLen = shape.length >= 2 ? shape[shape.length - 1] : n;
    switch (meta.type) {
        case 'float32':
        case 'float64': {
            const data = meta.type === 'float32' ? new Float32Array(n) : new Float64Array(n);
            for (let i = 0; i < n; i++) {
                data[i] = rng();
            }
            return data;
        }
        case 'int64':
        case 'int32': {
            const big = meta.type === 'int64';
            const data = big ? new BigInt64Array(n) : new Int32Array(n);
            for (let i = 0; i < n; i++) {
                let v;
                const pos = i % seqLen;
                const row = Math.floor(i / seqLen);
                if (name.includes('mask')) {
                    v = a.pad && pos >= seqLen - (row % seqLen) ? 0 : 1;
                } else if (name.includes('token_type') || name.includes('segment')) {
                    v = 0;
                } else if (name.includes('position')) {
                    v = pos;
                } else {
                    v = Math.floor(rng() * a.vocab);
                }
                data[i] = big ? BigInt(v) : v;
            }
            return data;
        }
        case 'bool':
        case 'uint8': {
            const data = new Uint8Array(n);
            for (let i = 0; i < n; i++) {
                data[i] = meta.type === 'bool' ? (rng() < 0.5 ? 1 : 0) : Math.floor(rng() * 256);
            }
            return data;
        }
        default:
            throw new Error(`input '${meta.name}' has type ${meta.type}, which is not generated`);
    }
}

async function main() {
    const a = parseArgs(process.argv.slice(2));
    const ort = require('onnxruntime-node');
    const session = await ort.InferenceSession.create(a.model);
    fs.mkdirSync(a.out, { recursive: true });
    const rng = makeRng(a.seed);
    const args = [];
    for (const meta of session.inputMetadata) {
        if (!meta.isTensor) {
            throw new Error(`input '${meta.name}' is not a tensor`);
        }
        const shape = meta.shape.map((d, i) => {
            if (typeof d === 'number' && d >= 0) {
                return d;
            }
            return i === 0 ? a.batch : a.seq;
        });
        if (shape.length > 0 && typeof meta.shape[0] === 'number' && meta.shape[0] !== a.batch) {
            process.stderr.write(`make_inputs.js: note: '${meta.name}' has a fixed batch of ` +
                `${meta.shape[0]}; --batch ${a.batch} ignored for it\n`);
        }
        const file = path.join(a.out, sanitizeName(meta.name) + '.npy');
        writeNpy(file, { dtype: meta.type, shape, data: fill(meta, shape, a, rng) });
        args.push(`--input ${meta.name}=${file}`);
    }
    process.stdout.write(args.join(' ') + '\n');
}

main().catch((e) => {
    process.stderr.write(`make_inputs.js: ${String(e.message || e).split('\n')[0]}\n`);
    process.exit(1);
});
