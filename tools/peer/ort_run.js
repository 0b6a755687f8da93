#!/usr/bin/env node
'use strict';
/*
 * ONNX Runtime as tandem's peer: the same command-line contract as `tandem run`.
 *
 *   node tools/peer/ort_run.js MODEL.onnx [--input NAME=FILE.npy]... [--output-dir DIR]
 *        [--threads N] [--repeat N]
 *
 * Because both runners take the same arguments and write DIR/<sanitised name>.npy for every graph
 * output, the parity test and the benchmark treat them as interchangeable commands, and compare.js
 * diffs their output folders. With --repeat N it prints one JSON line timed over N runs after a
 * warm-up of max(3, min(20, N/10)) runs, like `tandem run`:
 * {"p50_ms":…,"p90_ms":…,"mean_ms":…,"runs":N,"batch":B,"items_per_s":…}; items are the first
 * dimension of the first input, and items_per_s is batch / p50.
 *
 * Session options are fixed to what a fair single-request comparison needs: intra-op threads = N,
 * one inter-op thread, sequential execution, all graph optimisations on (ORT at its best).
 * Exit status 0 success, 1 failure, 2 bad usage, with one line on standard error.
 */
const fs = require('fs');
const path = require('path');
const { readNpy, writeNpy, sanitizeName } = require('./npy');

const USAGE = `usage: ort_run.js MODEL.onnx [--input NAME=FILE.npy]... [--output-dir DIR]
                  [--threads N] [--repeat N]
Runs MODEL with ONNX Runtime (CPU) and writes each output to DIR/<name>.npy.
  --input NAME=FILE   graph input NAME from a .npy file (repeatable)
  --output-dir DIR    where outputs go (default: none written)
  --threads N         intra-op threads (default 1)
  --repeat N          time N runs after a warm-up; prints one JSON line`;

function usageError(msg) {
    process.stderr.write(`ort_run.js: ${msg} (try --help)\n`);
    process.exit(2);
}

function parsePositiveInt(flag, v) {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1) {
        usageError(`${flag} needs a positive integer, got '${v}'`);
    }
    return Number(v);
}

function parseArgs(argv) {
    const a = { model: null, inputs: [], outDir: null, threads: 1, repeat: 0 };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const next = () => {
            if (i + 1 >= argv.length) {
                usageError(`${arg} needs a value`);
            }
            return argv[++i];
        };
        if (arg === '--help' || arg === '-h') {
            process.stdout.write(USAGE + '\n');
            process.exit(0);
        } else if (arg === '--input') {
            const v = next();
            const eq = v.indexOf('=');
            if (eq <= 0 || eq === v.length - 1) {
                usageError(`--input wants NAME=FILE.npy, got '${v}'`);
            }
            a.inputs.push([v.slice(0, eq), v.slice(eq + 1)]);
        } else if (arg === '--output-dir') {
            a.outDir = next();
        } else if (arg === '--threads') {
            a.threads = parsePositiveInt(arg, next());
        } else if (arg === '--repeat') {
            a.repeat = parsePositiveInt(arg, next());
        } else if (arg.startsWith('-')) {
            usageError(`unknown option '${arg}'`);
        } else if (a.model === null) {
            a.model = arg;
        } else {
            usageError(`unexpected argument '${arg}'`);
        }
    }
    if (a.model === null) {
        usageError('missing MODEL.onnx');
    }
    return a;
}

/* Nearest-rank percentile of an ascending array. */
function percentile(sorted, p) {
    const k = Math.max(0, Math.ceil(p * sorted.length) - 1);
    return sorted[Math.min(k, sorted.length - 1)];
}

function ortTypeOf(dtype) {
    return dtype; // npy.js dtype names are ORT's type names (float32, int64, bool, ...)
}

function toNpy(t) {
    const shape = t.dims.map(Number);
    switch (t.type) {
        case 'float32':
        case 'float64':
        case 'int64':
        case 'int32':
        case 'int8':
        case 'uint8':
            return { dtype: t.type, shape, data: t.data };
        case 'bool':
            return { dtype: 'bool', shape, data: Uint8Array.from(t.data, (x) => (x ? 1 : 0)) };
        default:
            throw new Error(`output of type ${t.type} cannot be written as .npy`);
    }
}

async function main() {
    const a = parseArgs(process.argv.slice(2));
    let ort;
    try {
        ort = require('onnxruntime-node');
    } catch (e) {
        process.stderr.write(
            'ort_run.js: onnxruntime-node is not installed (run scripts/install-deps.sh)\n'
        );
        process.exit(1);
    }
    if (!fs.existsSync(a.model)) {
        throw new Error(`${a.model}: no such file`);
    }
    const session = await ort.InferenceSession.create(a.model, {
        intraOpNumThreads: a.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const feeds = {};
    let batch = 1;
    for (const [name, file] of a.inputs) {
        if (!session.inputNames.includes(name)) {
            throw new Error(`--input ${name}: the model has no input '${name}' ` +
                `(inputs: ${session.inputNames.join(', ')})`);
        }
        const arr = readNpy(file);
        feeds[name] = new ort.Tensor(ortTypeOf(arr.dtype), arr.data, arr.shape);
        if (Object.keys(feeds).length === 1 && arr.shape.length > 0) {
            batch = arr.shape[0];
        }
    }
    for (const name of session.inputNames) {
        if (!(name in feeds)) {
            throw new Error(`input '${name}' was not given (use --input ${name}=FILE.npy)`);
        }
    }
    let out = await session.run(feeds);
    if (a.repeat > 0) {
        // Warm-up as `tandem run` does: repeat/10 runs, at least 3, at most 20.
        const warm = Math.min(20, Math.max(3, Math.floor(a.repeat / 10)));
        for (let i = 0; i < warm; i++) {
            out = await session.run(feeds);
        }
        const times = [];
        for (let i = 0; i < a.repeat; i++) {
            const t0 = process.hrtime.bigint();
            out = await session.run(feeds);
            times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        const mean = times.reduce((x, y) => x + y, 0) / times.length;
        times.sort((x, y) => x - y);
        const p50 = percentile(times, 0.5);
        const p90 = percentile(times, 0.9);
        const line = {
            p50_ms: +p50.toFixed(4),
            p90_ms: +p90.toFixed(4),
            mean_ms: +mean.toFixed(4),
            runs: a.repeat,
            batch,
            items_per_s: +((batch * 1000) / p50).toFixed(2),
        };
        process.stdout.write(JSON.stringify(line) + '\n');
    }
    if (a.outDir !== null) {
        fs.mkdirSync(a.outDir, { recursive: true });
        for (const name of session.outputNames) {
            writeNpy(path.join(a.outDir, sanitizeName(name) + '.npy'), toNpy(out[name]));
        }
    }
}

main().catch((e) => {
    process.stderr.write(`ort_run.js: ${String(e.message || e).split('\n')[0]}\n`);
    process.exit(1);
});
