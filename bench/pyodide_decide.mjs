// Rule decision time inside Pyodide (npm pyodide 0.29, Python 3.13, as on Cloudflare): the same
// generated rule sets and timing code as bench/decide.py, run by this interpreter.
//   node bench/pyodide_decide.mjs [--site-packages .venv/lib/python3.13/site-packages]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPyodide } from 'pyodide';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sitePackages = process.argv.includes('--site-packages')
  ? process.argv[process.argv.indexOf('--site-packages') + 1]
  : path.join(root, '.venv/lib/python3.13/site-packages');

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
sys.path[:0] = ["/repo/src", "/repo"]
from bench.decision_cases import table_row, time_decisions
print(f"Pyodide {sys.version.split()[0]}")
print(f"{'rules':>7} {'decide p50 us':>14} {'p99 us':>8} {'no match p50':>13} {'p99 us':>8}")
rng = random.Random(3)
for n in (10, 100, 1_000, 10_000):
    times, misses, _, _ = time_decisions(n, rng)
    print(table_row(n, times, misses))
`);
