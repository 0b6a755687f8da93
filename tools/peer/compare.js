#!/usr/bin/env node
'use strict';
/*
 * Compares two folders of .npy outputs: A (the candidate, e.g. tandem) against B (the reference,
 * e.g. ONNX Runtime).
 *
 *   node tools/peer/compare.js A_DIR B_DIR [--tol 1e-4]
 *
 * For every .npy in B it checks that A has the same file with the same dtype and shape, then
 * measures max|a - b| / max(max|b|, 1e-12): an error relative to the output's scale, not to each
 * element, because near-zero elements of a float32 network carry rounding noise of the size of the
 * large ones. NaN or infinity in one file and not at the same place in the other counts as an
 * infinite error. Prints one line per output and exits 1 when any exceeds the tolerance or is
 * missing; 2 on bad usage.
 */
const fs = require('fs');
const path = require('path');
const { readNpy } = require('./npy');

const USAGE = 'usage: compare.js A_DIR B_DIR [--tol 1e-4]';
const TINY = 1e-12;

function usageError(msg) {
    process.stderr.write(`compare.js: ${msg} (try --help)\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const dirs = [];
    let tol = 1e-4;
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === '--help' || arg === '-h') {
            process.stdout.write(USAGE + '\n');
            process.exit(0);
        } else if (arg === '--tol') {
            tol = Number(argv[++i]);
            if (!(tol >= 0)) {
                usageError(`--tol needs a non-negative number, got '${argv[i]}'`);
            }
        } else if (arg.startsWith('-')) {
            usageError(`unknown option '${arg}'`);
        } else {
            dirs.push(arg);
        }
    }
    if (dirs.length !== 2) {
        usageError('want exactly two folders');
    }
    return { a: dirs[0], b: dirs[1], tol };
}

/* Returns { err, maxAbs, maxRef } for two arrays of equal length. */
function relError(a, b) {
    let maxAbs = 0;
    let maxRef = 0;
    for (let i = 0; i < b.length; i++) {
        const x = Number(a[i]);
        const y = Number(b[i]);
        if (!Number.isFinite(x) || !Number.isFinite(y)) {
            if (Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y))) {
                continue;
            }
            return { err: Infinity, maxAbs: Infinity, maxRef, at: i };
        }
        const d = Math.abs(x - y);
        if (d > maxAbs) {
            maxAbs = d;
        }
        if (Math.abs(y) > maxRef) {
            maxRef = Math.abs(y);
        }
    }
    return { err: maxAbs / Math.max(maxRef, TINY), maxAbs, maxRef };
}

function main() {
    const { a, b, tol } = parseArgs(process.argv.slice(2));
    for (const d of [a, b]) {
        if (!fs.existsSync(d) || !fs.statSync(d).isDirectory()) {
            process.stderr.write(`compare.js: ${d}: not a folder\n`);
            process.exit(1);
        }
    }
    const names = fs.readdirSync(b).filter((f) => f.endsWith('.npy')).sort();
    if (names.length === 0) {
        process.stderr.write(`compare.js: ${b}: no .npy files to compare\n`);
        process.exit(1);
    }
    let bad = 0;
    for (const f of names) {
        const pa = path.join(a, f);
        const label = f.replace(/\.npy$/, '');
        if (!fs.existsSync(pa)) {
            console.log(`FAIL ${label}: missing in ${a}`);
            bad++;
            continue;
        }
        let x;
        let y;
        try {
            x = readNpy(pa);
            y = readNpy(path.join(b, f));
        } catch (e) {
            console.log(`FAIL ${label}: ${e.message}`);
            bad++;
            continue;
        }
        if (x.dtype !== y.dtype || x.shape.join(',') !== y.shape.join(',')) {
            console.log(`FAIL ${label}: ${x.dtype}[${x.shape}] vs ${y.dtype}[${y.shape}]`);
            bad++;
            continue;
        }
        const r = relError(x.data, y.data);
        const ok = r.err <= tol;
        if (!ok) {
            bad++;
        }
        const at = r.at !== undefined ? ` (non-finite mismatch at element ${r.at})` : '';
        console.log(`${ok ? 'ok  ' : 'FAIL'} ${label}: ${y.dtype}[${y.shape}] rel ` +
            `${r.err.toExponential(3)} (max|a-b| ${r.maxAbs.toExponential(3)}, max|b| ` +
            `${r.maxRef.toExponential(3)}, tol ${tol})${at}`);
    }
    if (bad > 0) {
        process.stderr.write(`compare.js: ${bad} of ${names.length} outputs differ beyond ${tol}\n`);
        process.exit(1);
    }
}

main();
