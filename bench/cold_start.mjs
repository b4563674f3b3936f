// Pyodide cold start of the Worker module: loading Pyodide, importing src/entry.py (the workers
// SDK and the nudge package), and the first request (which builds the isolate's app: the bundled
// rule set parsed and compiled). Each trial is a fresh node process, loading the Worker the way
// local-edge does (local-edge/worker.mjs); the origin is an in-process stub.
//
// Cloudflare deploys Python Workers with a memory snapshot taken after the top-level imports, so
// there the import cost is paid at deploy, not per cold start; this is the cost without one.
//
//   node bench/cold_start.mjs [--trials 5]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { KvNamespace } from '../local-edge/kv.mjs';
import { HTMLRewriter } from '../local-edge/rewriter.mjs';
import { loadWorker } from '../local-edge/worker.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { trials: { type: 'string', default: '5' }, once: { type: 'boolean' } } });

async function trial() {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'nudge-cold-'));
  const config = parseToml(fs.readFileSync(path.join(root, 'wrangler.toml'), 'utf8'));
  fs.mkdirSync(path.join(state, 'kv'));
  const env = { ...config.vars, ORIGIN_URL: 'http://origin.bench', NUDGE_SECRET: 'bench-secret', NUDGE_EDGE_CACHE: 'off',
    NUDGE_KV: new KvNamespace(path.join(state, 'kv')) };
  globalThis.HTMLRewriter = HTMLRewriter;
  const worker = await loadWorker({
    mainFile: path.join(root, 'src/entry.py'),
    sitePackages: path.join(root, '.venv/lib/python3.13/site-packages'),
    env, compatibilityDate: config.compatibility_date, compatibilityFlags: config.compatibility_flags ?? [],
    waitUntil: () => {},
  });
  const page = '<!doctype html><html><head><title>t</title></head><body><h1>Shop</h1></body></html>';
  globalThis.fetch = async () => new Response(page, { headers: { 'content-type': 'text/html; charset=utf-8' } });
  const ctx = { waitUntil() {}, passThroughOnException() {}, get [Symbol.toStringTag]() { return 'ExecutionContext'; } };
  const request = async () => {
    const started = performance.now();
    const req = new Request('http://shop.bench/collections/sneakers', { headers: { 'user-agent': 'Mozilla/5.0 Chrome/142' } });
    Object.defineProperty(req, 'cf', { value: null });
    const res = await worker.fetch(ctx, env, req);
    await res.text();
    return performance.now() - started;
  };
  const first = await request();
  const warm = await request();
  worker.pyodide.setStdout({ batched: () => {} });
  // The package alone: dropped from sys.modules and imported again (compiled from source, as
  // at startup: the Worker's folder is not allowed to hold bytecode).
  const nudge = JSON.parse(worker.pyodide.runPython(`
import json, sys, time
names = [m for m in sys.modules if m == "nudge" or m.startswith("nudge.")]
for name in names:
    del sys.modules[name]
started = time.perf_counter()
import nudge.edge
json.dumps({"ms": (time.perf_counter() - started) * 1000, "modules": len(names)})
`));
  fs.rmSync(state, { recursive: true, force: true });
  return { ...worker.startup, first, warm, nudgeMs: nudge.ms, modules: nudge.modules };
}

if (args.once) {
  console.log(JSON.stringify(await trial()));
  process.exit(0);
}

const runs = [];
for (let i = 0; i < Number(args.trials); i++) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--once'], { cwd: root, encoding: 'utf8' });
  runs.push(JSON.parse(out.trim().split('\n').pop()));
}
const median = (key) => {
  const v = runs.map((r) => r[key]).sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
const ms = (x) => `${x.toFixed(0).padStart(6)} ms`;
console.log(`Pyodide cold start of the Worker, median of ${runs.length} fresh processes (npm pyodide, no memory snapshot):`);
console.log(`  load Pyodide                              ${ms(median('pyodide'))}`);
console.log(`  workers SDK, msgpack, runtime glue        ${ms(median('setup'))}`);
console.log(`  import src/entry.py (SDK + nudge)         ${ms(median('import'))}`);
console.log(`    of which the nudge package alone        ${ms(median('nudgeMs'))} (${median('modules')} modules)`);
console.log(`  first request (builds the app: rules)     ${ms(median('first'))}; the next one ${median('warm').toFixed(1)} ms`);
console.log(`  Worker ready and first page served        ${ms(median('import') + median('first'))} after Pyodide is up`);
