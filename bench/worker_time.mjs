// The Worker's own time per page inside Pyodide, and the HTMLRewriter handler calls per page.
//
// src/entry.py runs as local-edge runs it (same loader, same lol-html with handler counting,
// file-backed KV, Analytics Engine), with the origin replaced by an in-process stub that
// answers at once with the bench page (bench/origin.py), so nothing else competes for the
// thread. Visitors walk a 20-page journey (home, categories, products, search, cart) keeping
// their cookies; a warm-up visitor runs first (a warm isolate, as 99.99% of requests are).
//
// The figure is nudge's own account (`OwnTime`, src/nudge/timing.py): the Python between the
// request's awaits (reading the cookie, the decision, rendering, cookie signing, building the
// rewriter) plus every handler call while the body streams, as printed in the page's log line.
// The handler part is checked against the runtime's own timing of the same calls.
//
//   node bench/worker_time.mjs [--visitors 50] [--profile] [--main other/src/entry.py]
// (--main: another copy of the Worker, e.g. an older commit's src/ with its _bundle.py, to compare)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { AnalyticsEngine } from '../local-edge/analytics.mjs';
import { KvNamespace } from '../local-edge/kv.mjs';
import { HTMLRewriter, rewriterStats } from '../local-edge/rewriter.mjs';
import { loadWorker } from '../local-edge/worker.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    visitors: { type: 'string', default: '50' },
    profile: { type: 'boolean', default: false },
    main: { type: 'string', default: path.join(root, 'src/entry.py') },
  },
});
const SECRET = 'bench-secret';
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0 Safari/537.36';
const JOURNEY = [
  '/', '/collections/sneakers', '/collections/sneakers/products/aero-runner',
  '/collections/sneakers/products/court-classic', '/collections/sneakers/products/trail-sprint',
  '/collections/sneakers', '/collections/sneakers/products/cloud-knit', '/search?q=trail+shoes',
  '/collections/boots', '/collections/boots/products/ridge-hiker', '/collections/boots/products/city-chelsea',
  '/collections/accessories', '/collections/accessories/products/merino-crew-socks', '/cart', '/',
  '/collections/sneakers', '/collections/sneakers/products/retro-high',
  '/collections/sneakers/products/aero-runner', '/collections/sneakers/products/court-classic', '/cart',
];

function benchPage(kb, jsonld) {
  const code = `import sys\nfrom bench.origin import page\nh, r = page(${kb}, ${jsonld ? 'True' : 'False'})\nsys.stdout.buffer.write(h + r)`;
  return execFileSync(path.join(root, '.venv/bin/python'), ['-c', code], { cwd: root, env: { ...process.env, PYTHONPATH: root } });
}

function pct(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * (q / 100);
  const lo = Math.floor(pos);
  return sorted[lo] + (sorted[Math.min(lo + 1, sorted.length - 1)] - sorted[lo]) * (pos - lo);
}

class ExecutionContext {
  pending = [];
  waitUntil(promise) {
    this.pending.push(Promise.resolve(promise).catch((err) => console.error(`waitUntil: ${err}`)));
  }
  passThroughOnException() {}
  get [Symbol.toStringTag]() {
    return 'ExecutionContext';
  }
}

const pages = { plain: benchPage(20, false), jsonld: benchPage(20, true) };
const state = fs.mkdtempSync(path.join(os.tmpdir(), 'nudge-bench-'));
const config = parseToml(fs.readFileSync(path.join(root, 'wrangler.toml'), 'utf8'));
const env = {
  ...config.vars,
  ORIGIN_URL: 'http://origin.bench',
  NUDGE_SECRET: SECRET,
  NUDGE_EDGE_CACHE: 'off',
  NUDGE_KV: new KvNamespace(path.join(state, 'kv')),
  NUDGE_EVENTS: new AnalyticsEngine('nudge_events', path.join(state, 'analytics')),
};
fs.mkdirSync(path.join(state, 'kv'), { recursive: true });
globalThis.HTMLRewriter = HTMLRewriter;

const worker = await loadWorker({
  mainFile: path.resolve(args.main),
  sitePackages: path.join(root, '.venv/lib/python3.13/site-packages'),
  env,
  compatibilityDate: config.compatibility_date,
  compatibilityFlags: config.compatibility_flags ?? [],
  waitUntil: () => {},
});
const { pyodide } = worker;
const logLines = [];
pyodide.setStdout({ batched: (line) => (line.startsWith('{"nudge":"page"') ? logLines.push(JSON.parse(line)) : console.log(line)) });

// The origin: answers at once, like a cache hit next door.
globalThis.fetch = async (request) => {
  const url = new URL(typeof request === 'string' ? request : request.url);
  const body = url.searchParams.has('jsonld') ? pages.jsonld : pages.plain;
  return new Response(body, { status: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' } });
};

// msgpack's share: locally it is the pure-Python fallback (no Pyodide wheel offline); the
// Pyodide distribution Cloudflare runs ships it compiled. Timed per call, printed apart.
pyodide.runPython(`
import time, msgpack
_msgpack_seconds = [0.0]
def _timed(f):
    def call(*args, **kwargs):
        started = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            _msgpack_seconds[0] += time.perf_counter() - started
    return call
msgpack.packb, msgpack.unpackb = _timed(msgpack.packb), _timed(msgpack.unpackb)
`);
const msgpackSeconds = pyodide.globals.get('_msgpack_seconds');

// An offer for sneakers, signed as the Worker would (for the page with prices to rewrite).
pyodide.runPython(`
import time
from nudge.offers import OfferTokens, Redeemed
from nudge.signing import Signer
keys = [${JSON.stringify(SECRET)}.encode()]
offer_cookie = "nudge_offer=" + OfferTokens(Signer(keys, "offer-token"), Signer(keys, "offer-cookie")).cookie(
    Redeemed("sneakers-exit-intent", "SNEAKERS10", 10, "sneakers", int(time.time()) + 3600))
`);
const offerCookie = pyodide.globals.get('offer_cookie');

async function get(pathname, jar) {
  const ctx = new ExecutionContext();
  const msgpackBefore = msgpackSeconds.get(0);
  const cpuBefore = process.cpuUsage();
  const cookie = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');
  const request = new Request(`http://shop.bench${pathname}`, { headers: { cookie, 'user-agent': UA, accept: 'text/html' } });
  Object.defineProperty(request, 'cf', { value: null });
  const response = await worker.fetch(ctx, env, request);
  await response.arrayBuffer(); // the body streams through the handlers
  await Promise.all(ctx.pending); // KV writes land before this visitor's next page
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    jar[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const timing = response.headers.get('server-timing') ?? '';
  return {
    beforeBody: Number((timing.match(/dur=([\d.]+)/) ?? [])[1]),
    rewriter: rewriterStats.get(response),
    msgpackMs: (msgpackSeconds.get(0) - msgpackBefore) * 1000,
    cpuMs: (({ user, system }) => (user + system) / 1000)(process.cpuUsage(cpuBefore)),
  };
}

async function visit(label) {
  const jar = {};
  const results = [];
  for (const pathname of JOURNEY) {
    const before = logLines.length;
    const r = await get(pathname, jar);
    results.push({ ...r, path: pathname, line: logLines[before], label });
  }
  return results;
}

await visit('warm-up');
if (args.profile) pyodide.runPython('import cProfile\n_bench_profile = cProfile.Profile()\n_bench_profile.enable()');
const results = [];
for (let v = 0; v < Number(args.visitors); v++) results.push(...(await visit('journey')));
if (args.profile) {
  pyodide.runPython(`
_bench_profile.disable()
import io, pstats
for key in ("tottime", "cumulative"):
    out = io.StringIO()
    pstats.Stats(_bench_profile, stream=out).sort_stats(key).print_stats(25)
    print("\\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
`);
}

// Pages with prices and JSON-LD: a category-less product URL (nudge reads the facts as they
// pass) for a visitor holding a sneakers offer, so every marked price is rewritten.
const priced = [];
for (let i = 0; i < 50; i++) {
  const jar = { nudge_offer: offerCookie.slice('nudge_offer='.length) };
  await get('/collections/sneakers', jar);
  const before = logLines.length;
  const r = await get(`/products/trail-shoe-${i}?jsonld=1`, jar);
  priced.push({ ...r, line: logLines[before] });
}

const row = (label, values) => `${label.padEnd(44)}${pct(values, 50).toFixed(3).padStart(9)}${pct(values, 99).toFixed(3).padStart(9)}`;
const own = results.map((r) => r.line.ms);
console.log(`Pyodide ${pyodide.version}; ${results.length} pages (${args.visitors} visitors x ${JOURNEY.length}), 20 KB each; ` +
  `load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
console.log(`${''.padEnd(44)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}`);
console.log(row('own time per page (target p50 1, p99 3)', own));
console.log(row('  before the body (Server-Timing)', results.map((r) => r.beforeBody)));
console.log(row('  handler calls, runtime-timed (incl. FFI)', results.map((r) => r.rewriter.ms)));
console.log(row('  in it: HTMLRewriter.transform (local: JS)', results.map((r) => r.rewriter.transformMs)));
console.log(row('  in it: msgpack (local: pure-Python)', results.map((r) => r.msgpackMs)));
console.log(row('own time less those two', results.map((r) => r.line.ms - r.rewriter.transformMs - r.msgpackMs)));
console.log(row('pages with prices + JSON-LD: own time', priced.map((r) => r.line.ms)));
// CPU time barely moves when other jobs compete for the cores, wall time does: this is the
// figure to compare two versions by on a busy machine (it also counts lol-html, the JS glue,
// the stub origin and KV's file I/O, and V8's GC threads).
console.log(row('runtime process CPU per page, everything', results.map((r) => r.cpuMs)));
const calls = results.map((r) => r.rewriter.calls);
const mismatched = [...results, ...priced].filter((r) => r.rewriter.calls !== r.line.handlers).length;
console.log(`handler calls per page: typical journey ${Math.min(...calls)}-${Math.max(...calls)} (median ${pct(calls, 50)}, target <= 5); ` +
  `with ${pages.jsonld.toString().split('data-nudge-price=').length - 1} marked prices + JSON-LD + og meta: ` +
  `${pct(priced.map((r) => r.rewriter.calls), 50)}`);
console.log(`runtime and nudge agree on the handler count for ${results.length + priced.length - mismatched} of ${results.length + priced.length} pages`);
fs.rmSync(state, { recursive: true, force: true });
process.exit(mismatched ? 1 : 0);
