// Boots Pyodide and loads a Python Worker the way Cloudflare's runtime (workerd)
// does, as far as a Python Worker can observe it. Reference: workerd
// src/pyodide/python-entrypoint-helper.ts and src/pyodide/internal/introspection.py.
//
// What is reproduced:
//  - runtime modules `_pyodide_entrypoint_helper` and `_cloudflare_compat_flags`,
//    which the `workers` SDK imports;
//  - the Worker's files at /session/metadata (on sys.path), main module imported by
//    its name without ".py";
//  - per request: a new instance of the main module's `Default(WorkerEntrypoint)`
//    built with (ctx, env); `fetch` called "relaxed" with the request converted by
//    `workers.python_from_rpc` (so the Worker gets a `workers.Request`), and the
//    result converted back with `workers.python_to_rpc` (a JS Response);
//  - per queue batch: likewise a new instance, its `queue` method called with the
//    batch (the SDK's WorkerEntrypoint wraps it in a `_BindingWrapper`).
// What is not: memory snapshots, the top-level entropy guard, CPU limits, JSPI
// (so `run_sync` and `import_from_javascript` of arbitrary modules fail),
// Pyodide packages (only pure-Python files copied from a CPython venv), the
// legacy `on_fetch` handler style, RPC methods, Durable Objects, Workflows.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadPyodide } from 'pyodide';

// Where workerd puts the Worker's modules.
const WORKER_DIR = '/session/metadata';

// Flags that turn on by compatibility date and that something here reads: the Python
// SDK, or the runtime itself (queues_json_messages: the default content type of queue
// messages). From workerd src/workerd/io/compatibility-date.capnp: [flag, opt-out flag, enable date].
const DATED_FLAGS = [
  ['python_request_headers_preserve_commas', 'disable_python_request_headers_preserve_commas', '2026-02-17'],
  ['python_workflows_implicit_dependencies', 'no_python_workflows_implicit_dependencies', '2026-02-25'],
  ['queues_json_messages', 'no_queues_json_messages', '2024-03-18'],
];

export function compatFlags(date, flags) {
  const result = Object.fromEntries(flags.map((flag) => [flag, true]));
  for (const [flag, optOut, since] of DATED_FLAGS) {
    result[flag] = flags.includes(flag) || (!flags.includes(optOut) && Boolean(date) && date >= since);
  }
  return result;
}

// Python side of the glue. Run once, in its own namespace.
const GLUE = `
import sys, types
from inspect import isawaitable

def install_compat_flags(flags):
    # workerd registers its flag table as a module; unknown flags read as False.
    module = types.ModuleType("_cloudflare_compat_flags")
    module.__dict__.update(flags.to_py())
    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return False
    module.__getattr__ = __getattr__
    sys.modules[module.__name__] = module

def patch_fetch_response():
    # Pyodide 0.29.x builds a js Request from FetchResponse's url, which fails for
    # the "" url of a constructed Response (so workers.Response("hi") raised).
    # Fixed upstream in pyodide#6214; Cloudflare's Pyodide does not have the bug.
    from pyodide.http import FetchResponse
    original = FetchResponse.__init__
    def __init__(self, request, js_response, abort_controller=None, abort_signal=None):
        if request is None or request == "":
            self.js_request, self._url, self.js_response = None, "", js_response
            self.abort_controller, self.abort_signal = abort_controller, abort_signal
            return
        original(self, request, js_response, abort_controller, abort_signal)
    FetchResponse.__init__ = __init__

def default_class(module):
    from workers import WorkerEntrypoint
    cls = getattr(module, "Default", None)
    if not (isinstance(cls, type) and issubclass(cls, WorkerEntrypoint)):
        raise TypeError(
            f"{module.__name__}.py must define 'class Default(WorkerEntrypoint)' "
            "(the only entrypoint local-edge supports)"
        )
    return cls

async def dispatch_fetch(cls, ctx, env, request):
    # As workerd: one instance per request, then introspection.wrapper_func with
    # relaxed=True for "fetch" (extra arguments are dropped if fetch takes fewer).
    from pyodide.code import relaxed_call
    from workers import python_from_rpc, python_to_rpc
    instance = cls(ctx, env)
    result = relaxed_call(instance.fetch, python_from_rpc(request))
    if isawaitable(result):
        result = await result
    return python_to_rpc(result)

async def dispatch_queue(cls, ctx, env, batch):
    # As workerd for a queue event: one instance per batch, its queue method called
    # with the batch (a MessageBatch, which python_from_rpc leaves a JsProxy).
    from pyodide.code import relaxed_call
    from workers import python_from_rpc
    instance = cls(ctx, env)
    if not callable(getattr(instance, "queue", None)):
        raise TypeError("Handler does not export a queue() function.")
    result = relaxed_call(instance.queue, python_from_rpc(batch))
    if isawaitable(result):
        await result
`;

// A Python value handed to a JS function is only borrowed for the call; keep a
// copy until the awaitable settles (what workerd's waitUntil patch does).
function retained(value) {
  const owned = typeof value?.copy === 'function' ? value.copy() : value;
  return (async () => {
    try {
      await owned;
    } finally {
      if (owned !== value) owned.destroy();
    }
  })();
}

const patchedContexts = new WeakSet();

// The SDK calls this from WorkerEntrypoint.__init__ with the ctx.
function patchWaitUntil(ctx) {
  if (Object.prototype.toString.call(ctx) !== '[object ExecutionContext]') return;
  if (patchedContexts.has(ctx)) return;
  const original = ctx.waitUntil.bind(ctx);
  ctx.waitUntil = (promise) => original(retained(promise));
  patchedContexts.add(ctx);
}

/**
 * Load Pyodide and the Worker. Returns { fetch(ctx, env, request) -> Promise<JS Response>,
 * queue(ctx, env, batch) -> Promise<undefined>, pyodide } (the interpreter, for benchmarks that
 * profile the Worker in place).
 * `waitUntil` receives promises given to the module-level `workers.waitUntil`.
 */
export async function loadWorker({ mainFile, sitePackages, env, compatibilityDate, compatibilityFlags, waitUntil }) {
  const started = performance.now();
  const pyodide = await loadPyodide();
  const pyodideLoaded = performance.now();
  const sitePy = pyodide.runPython('import site; site.getsitepackages()[0]');

  // The `workers` SDK (pure Python) and msgpack's pure-Python fallback, from a CPython venv.
  copyTree(pyodide.FS, path.join(sitePackages, 'workers'), `${sitePy}/workers`);
  copyFile(pyodide.FS, path.join(sitePackages, 'asgi.py'), `${sitePy}/asgi.py`);
  for (const name of ['__init__.py', 'fallback.py', 'ext.py', 'exceptions.py']) {
    copyFile(pyodide.FS, path.join(sitePackages, 'msgpack', name), `${sitePy}/msgpack/${name}`);
  }

  // `cloudflare:workers` as Python sees it through import_from_javascript. Its env
  // is a copy so that `workers.patch_env` (global here, per async context on
  // Cloudflare) cannot leak into request envs.
  const moduleEnv = { ...env };
  const cloudflareWorkersModule = { env: moduleEnv, waitUntil: (promise) => waitUntil(retained(promise)) };
  const cloudflareSocketsModule = {
    connect() {
      throw new Error('cloudflare:sockets is not emulated by local-edge');
    },
  };
  pyodide.registerJsModule('_pyodide_entrypoint_helper', {
    cloudflareWorkersModule,
    cloudflareSocketsModule,
    patchWaitUntil,
    async doAnImport(name) {
      if (name === 'cloudflare:workers') return cloudflareWorkersModule;
      if (name === 'cloudflare:sockets') return cloudflareSocketsModule;
      // The SDK's own JS helpers (e.g. workflows.js), vendored as python_modules/workers/ on deploy.
      const sdkPrefix = 'python_modules/workers/';
      if (name.startsWith(sdkPrefix)) {
        return import(pathToFileURL(path.join(sitePackages, 'workers', name.slice(sdkPrefix.length))).href);
      }
      throw new Error(`local-edge cannot import JavaScript module '${name}'`);
    },
    // Backs workers.patch_env(): patch the module env for the duration of a `with`.
    *patch_env_helper(patch) {
      const saved = { ...moduleEnv };
      Object.assign(moduleEnv, patch instanceof Map ? Object.fromEntries(patch) : patch);
      try {
        yield;
      } finally {
        for (const key of Object.keys(moduleEnv)) delete moduleEnv[key];
        Object.assign(moduleEnv, saved);
      }
    },
  });

  const glue = pyodide.toPy({}); // a private globals dict
  pyodide.runPython(GLUE, { globals: glue, filename: 'local-edge-glue.py' });
  glue.get('install_compat_flags')(compatFlags(compatibilityDate, compatibilityFlags));
  glue.get('patch_fetch_response')();

  // The Worker's folder (the folder of `main`), read live from the host.
  pyodide.FS.mkdirTree(WORKER_DIR);
  pyodide.mountNodeFS(WORKER_DIR, path.dirname(mainFile));
  pyodide.runPython(`
import os, sys
sys.dont_write_bytecode = True  # the folder is the host's src/
sys.path.insert(0, ${JSON.stringify(WORKER_DIR)})
os.chdir(${JSON.stringify(WORKER_DIR)})
`);
  const moduleName = path.basename(mainFile);
  if (!moduleName.endsWith('.py')) throw new Error(`main must be a .py file, got ${moduleName}`);
  const importStarted = performance.now();
  const mainModule = pyodide.pyimport(moduleName.slice(0, -3));
  const imported = performance.now();
  const Default = glue.get('default_class')(mainModule);
  const dispatch = glue.get('dispatch_fetch');
  const dispatchQueue = glue.get('dispatch_queue');

  return {
    pyodide,
    /** Startup phases in ms: Pyodide itself, the SDK and glue, importing the main module. */
    startup: { pyodide: pyodideLoaded - started, setup: importStarted - pyodideLoaded, import: imported - importStarted },
    /** Bytes of Pyodide's wasm memory (Python's heap lives in it; it grows, never shrinks). */
    wasmBytes: () => pyodide._module.HEAP8.buffer.byteLength,
    async fetch(ctx, requestEnv, request) {
      const pending = dispatch(Default, ctx, requestEnv, request);
      try {
        const result = await pending;
        if (result instanceof pyodide.ffi.PyProxy) {
          const kind = result.type;
          result.destroy();
          throw new TypeError(`Worker's fetch returned a ${kind}, not a Response`);
        }
        return result;
      } finally {
        pending.destroy();
      }
    },
    // Runs `queue(batch)` of a new Default(ctx, env); settles when the handler does.
    async queue(ctx, requestEnv, batch) {
      const pending = dispatchQueue(Default, ctx, requestEnv, batch);
      try {
        await pending;
      } finally {
        pending.destroy();
      }
    },
  };
}

function copyFile(FS, from, to) {
  FS.mkdirTree(path.posix.dirname(to));
  FS.writeFile(to, fs.readFileSync(from));
}

function copyTree(FS, from, to) {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (entry.name === '__pycache__') continue;
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) copyTree(FS, source, `${to}/${entry.name}`);
    else copyFile(FS, source, `${to}/${entry.name}`);
  }
}
