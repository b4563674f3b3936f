// Rule decision time inside Pyodide: a microbenchmark of nudge's core (no Worker, no workerd), the
// same generated rule sets and timing code as bench/decide.py, run by npm's pyodide in Node 22
// (node_modules/pyodide, 314.x: Python 3.14, the version the Pyodide bundle nudge runs on in
// workerd is built from, scripts/pyodide/build.py). Kept as a Node script rather than replaced by
// a measurement on workerd: decide() alone at 10 to 10,000 rules needs a loop around it inside the
// interpreter, which a request to the Worker cannot give; bench/worker_time.py measures whole pages
// on workerd. msgpack: the pure-Python copy the Worker ships (python_modules/msgpack).
//   node bench/pyodide_decide.mjs [--site-packages python_modules]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPyodide } from 'pyodide';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sitePackages = process.argv.includes('--site-packages')
  ? process.argv[process.argv.indexOf('--site-packages') + 1]
  : path.join(root, 'python_modules');

const load = () => `load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`;
console.log(`at the start: ${load()}`);
const pyodide = await loadPyodide();
const sitePy = pyodide.runPython('import site; site.getsitepackages()[0]');
pyodide.FS.mkdirTree(`${sitePy}/msgpack`);
for (const name of ['__init__.py', 'fallback.py', 'ext.py', 'exceptions.py']) {
  pyodide.FS.writeFile(`${sitePy}/msgpack/${name}`, fs.readFileSync(path.join(sitePackages, 'msgpack', name)));
}
pyodide.FS.mkdirTree('/repo');
pyodide.mountNodeFS('/repo', root);
pyodide.runPython(`
import random, sys
sys.dont_write_bytecode = True
sys.path[:0] = ["/repo/src", "/repo", "/repo/tools"]
from bench.decision_cases import table_row, time_decisions
import pyodide
print(f"Pyodide {pyodide.__version__}, Python {sys.version.split()[0]}")
print(f"{'rules':>7} {'decide p50 us':>14} {'p99 us':>8} {'no match p50':>13} {'p99 us':>8}")
rng = random.Random(3)
for n in (10, 100, 1_000, 10_000):
    times, misses, _, _ = time_decisions(n, rng)
    print(table_row(n, times, misses))
`);
console.log(`at the end: ${load()}`);
