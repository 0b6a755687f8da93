#!/usr/bin/env node
'use strict';
/*
 * ONNX Runtime check of split models written by `tandem split --verify --save-io`.
 *
 *   node tests/integration/split_ort.js ROOT [--tol 1e-5]
 *
 * For every folder under ROOT that holds a manifest.json: checks the sha256 of head.onnx and
 * tail.onnx against the manifest, runs head.onnx in ONNX Runtime on io/in/*.npy, feeds its outputs
 * (and the graph inputs the manifest marks as passed through) to tail.onnx, and compares the
 * result with io/expected/*.npy (the unsplit model, run by tandem) as compare.js does:
 * max|a - b| / max(max|b|, 1e-12). Prints one line per folder; exits 1 when any exceeds the
 * tolerance or fails to load, 2 on bad usage.
 */
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { readNpy, sanitizeName } = require('../../tools/peer/npy');

function maxRel(a, b) {
    if (a.length !== b.length) return Infinity;
    let diff = 0, scale = 1e-12;
    for (let i = 0; i < b.length; i++) {
        const x = Number(a[i]), y = Number(b[i]);
        if (!Number.isFinite(x) || !Number.isFinite(y)) {
            if (!(Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y)))) return Infinity;
            continue;
        }
        diff = Math.max(diff, Math.abs(x - y));
        scale = Math.max(scale, Math.abs(y));
    }
    return diff / scale;
}

function sha256(file) {
    return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function checkDir(ort, dir) {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    for (const half of [m.head, m.tail]) {
        const got = sha256(path.join(dir, half.file));
        if (got !== half.sha256) throw new Error(`${half.file}: sha256 ${got} != manifest ${half.sha256}`);
    }
    const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
    const head = await ort.InferenceSession.create(path.join(dir, m.head.file), opts);
    const tail = await ort.InferenceSession.create(path.join(dir, m.tail.file), opts);
    const inputs = {};
    for (const t of m.inputs) {
        const a = readNpy(path.join(dir, 'io', 'in', sanitizeName(t.name) + '.npy'));
        inputs[t.name] = new ort.Tensor(a.dtype, a.data, a.shape);
    }
    const headFeeds = {};
    for (const n of head.inputNames) headFeeds[n] = inputs[n];
    const h = await head.run(headFeeds);
    const tailFeeds = {};
    for (const t of m.cut) tailFeeds[t.name] = t.graph_input ? inputs[t.name] : h[t.name];
    const out = await tail.run(tailFeeds);
    let worst = 0;
    for (const t of m.outputs) {
        const e = readNpy(path.join(dir, 'io', 'expected', sanitizeName(t.name) + '.npy'));
        const got = out[t.name];
        if (!got) throw new Error(`tail.onnx did not produce '${t.name}'`);
        if (got.dims.map(Number).join(',') !== e.shape.join(',')) {
            throw new Error(`'${t.name}': shape [${got.dims}] != expected [${e.shape}]`);
        }
        worst = Math.max(worst, maxRel(got.data, e.data));
    }
    return worst;
}

async function main() {
    const argv = process.argv.slice(2);
    let tol = 1e-5, root = null;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--tol') tol = Number(argv[++i]);
        else if (root === null) root = argv[i];
        else { process.stderr.write('usage: split_ort.js ROOT [--tol T]\n'); process.exit(2); }
    }
    if (root === null || !(tol >= 0)) { process.stderr.write('usage: split_ort.js ROOT [--tol T]\n'); process.exit(2); }
    const ort = require(path.join(__dirname, '../../tools/peer/node_modules/onnxruntime-node'));
    const dirs = fs.readdirSync(root).map((d) => path.join(root, d))
        .filter((d) => fs.existsSync(path.join(d, 'manifest.json'))).sort();
    let bad = 0, worst = 0;
    for (const d of dirs) {
        try {
            const r = await checkDir(ort, d);
            worst = Math.max(worst, r);
            const ok = r <= tol;
            if (!ok) bad++;
            process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${d} ort max_rel ${r.toExponential(3)}\n`);
        } catch (e) {
            bad++;
            process.stdout.write(`FAIL ${d}: ${String(e.message || e).split('\n')[0]}\n`);
        }
    }
    process.stdout.write(`ort: ${dirs.length} splits, max_rel ${worst.toExponential(3)}, ${bad} failed\n`);
    process.exit(bad ? 1 : 0);
}

main().catch((e) => {
    process.stderr.write(`split_ort.js: ${String(e.message || e).split('\n')[0]}\n`);
    process.exit(1);
});
