#!/usr/bin/env node
'use strict';
/*
 * ONNX Runtime's half of bench/embed_vs_ort.sh: sentence embeddings from token ids, the same
 * procedure as bench/bench_embed.c so the two figures compare like for like.
 *
 *   node tools/peer/embed_ort.js --model MODEL.onnx --ids FILE.jsonl [--batch B] [--threads T]
 *        [--passes P] [--limit N]
 *
 * FILE.jsonl holds `tandem tokenize` output ({"ids": [...]} per line). Sequences are sorted by
 * length (stable) and cut into batches of B neighbours, padded with 0 to the batch's longest;
 * each batch is one session.run (input_ids, attention_mask, token_type_ids = 0) followed by the
 * same pooling as tandem: mean over the attention mask of last_hidden_state, then L2
 * normalisation (sentence-transformers' Pooling + Normalize). One warm-up pass, then P timed
 * passes; prints one JSON line
 *   {"engine":"ort","batch":B,"threads":T,"sentences":N,"sent_per_s":…,"sent_per_cpu_s":…,
 *    "p50_ms":…,"checksum":…}
 * with sent_per_s = N / the median pass time (wall), sent_per_cpu_s = N / the median pass's
 * process CPU time (user + system, all threads) and p50_ms the median batch time (pooling
 * included). Session options as in ort_run.js: intra-op threads = T, one inter-op thread,
 * sequential execution, all graph optimisations.
 */
const fs = require('fs');

function usageError(msg) {
    process.stderr.write(`embed_ort.js: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const a = { model: null, ids: null, batch: 32, threads: 1, passes: 3, limit: 0 };
    for (let i = 0; i < argv.length; i += 2) {
        const k = argv[i], v = argv[i + 1];
        if (v === undefined) usageError(`${k} needs a value`);
        if (k === '--model') a.model = v;
        else if (k === '--ids') a.ids = v;
        else if (['--batch', '--threads', '--passes', '--limit'].includes(k)) {
            if (!/^\d+$/.test(v)) usageError(`${k} needs an integer, got '${v}'`);
            a[k.slice(2)] = Number(v);
        } else usageError(`unknown option '${k}'`);
    }
    if (!a.model || !a.ids || a.batch < 1 || a.threads < 1 || a.passes < 1) {
        usageError('usage: embed_ort.js --model MODEL.onnx --ids FILE.jsonl [--batch B] ' +
                   '[--threads T] [--passes P] [--limit N]');
    }
    return a;
}

function median(v) {
    const s = [...v].sort((x, y) => x - y);
    return s[Math.floor(s.length / 2)];
}

async function main() {
    const a = parseArgs(process.argv.slice(2));
    let ort;
    try {
        ort = require('onnxruntime-node');
    } catch (e) {
        process.stderr.write('embed_ort.js: onnxruntime-node is not installed ' +
                             '(run scripts/install-deps.sh)\n');
        process.exit(1);
    }
    let seqs = fs.readFileSync(a.ids, 'utf8').split('\n').filter((l) => l.trim() !== '')
        .map((l, i) => {
            const o = JSON.parse(l);
            if (!Array.isArray(o.ids) || o.ids.length === 0) {
                throw new Error(`${a.ids} line ${i + 1}: no "ids" array`);
            }
            return o.ids;
        });
    if (a.limit > 0) seqs = seqs.slice(0, a.limit);
    const n = seqs.length;
    const order = seqs.map((_, i) => i).sort((x, y) => seqs[x].length - seqs[y].length || x - y);
    const session = await ort.InferenceSession.create(a.model, {
        intraOpNumThreads: a.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const outName = session.outputNames.includes('last_hidden_state')
        ? 'last_hidden_state' : session.outputNames[0];
    const wantTypes = session.inputNames.includes('token_type_ids');
    const wantMask = session.inputNames.includes('attention_mask');
    let dim = 0;
    let out = null;
    const lat = [], passes = [], cpus = [];

    async function runBatch(b0, bn) {
        let seq = 0;
        for (let r = 0; r < bn; r++) seq = Math.max(seq, seqs[order[b0 + r]].length);
        const ids = new BigInt64Array(bn * seq), mask = new BigInt64Array(bn * seq);
        for (let r = 0; r < bn; r++) {
            const s = seqs[order[b0 + r]];
            for (let t = 0; t < s.length; t++) {
                ids[r * seq + t] = BigInt(s[t]);
                mask[r * seq + t] = 1n;
            }
        }
        const feeds = { input_ids: new ort.Tensor('int64', ids, [bn, seq]) };
        if (wantMask) feeds.attention_mask = new ort.Tensor('int64', mask, [bn, seq]);
        if (wantTypes) {
            feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(bn * seq), [bn, seq]);
        }
        const res = await session.run(feeds, [outName]);
        const h = res[outName];
        dim = h.dims[2];
        if (out === null) out = new Float32Array(n * dim);
        const hd = h.data;
        const acc = new Float64Array(dim);
        for (let r = 0; r < bn; r++) {
            const len = seqs[order[b0 + r]].length;
            acc.fill(0);
            for (let t = 0; t < len; t++) {
                const base = (r * seq + t) * dim;
                for (let d = 0; d < dim; d++) acc[d] += hd[base + d];
            }
            let ss = 0;
            for (let d = 0; d < dim; d++) {
                acc[d] /= len;
                ss += acc[d] * acc[d];
            }
            const nrm = Math.max(Math.sqrt(ss), 1e-12);
            const o = order[b0 + r] * dim;
            for (let d = 0; d < dim; d++) out[o + d] = acc[d] / nrm;
        }
    }

    for (let p = -1; p < a.passes; p++) {
        const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
        for (let b0 = 0; b0 < n; b0 += a.batch) {
            const bn = Math.min(a.batch, n - b0);
            const t1 = process.hrtime.bigint();
            await runBatch(b0, bn);
            if (p >= 0) lat.push(Number(process.hrtime.bigint() - t1) / 1e6);
        }
        if (p >= 0) {
            passes.push(Number(process.hrtime.bigint() - t0) / 1e9);
            const c = process.cpuUsage(c0);
            cpus.push((c.user + c.system) / 1e6);
        }
    }
    let checksum = 0;
    for (let i = 0; i < n; i++) checksum += out[i * dim];
    process.stdout.write(JSON.stringify({
        engine: 'ort', batch: a.batch, threads: a.threads, sentences: n,
        sent_per_s: Number((n / median(passes)).toFixed(2)),
        sent_per_cpu_s: Number((n / median(cpus)).toFixed(2)),
        p50_ms: Number(median(lat).toFixed(4)), checksum: Number(checksum.toFixed(6)),
    }) + '\n');
}

main().catch((e) => {
    process.stderr.write(`embed_ort.js: ${e.message}\n`);
    process.exit(1);
});
