#!/usr/bin/env node
// local-edge: runs a Python Cloudflare Worker (wrangler.toml `main`) unchanged in
// Pyodide on Node, behind a small HTTP server, as a stand-in for `wrangler dev`
// (which cannot run Python Workers offline). See local-edge/README.md for what is
// and is not emulated.
//
//   node local-edge/server.mjs [--config wrangler.toml] [--port 8787] [--ip 127.0.0.1]
//     [--var KEY:VALUE ...] [--persist-to .nudge-local] [--kv-delay-ms N]
//     [--kv-fail OPS] [--upstream URL] [--site-packages DIR] [--memory-log-ms N]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import dotenv from 'dotenv';
import { parse as parseToml } from 'smol-toml';
import { AnalyticsEngine } from './analytics.mjs';
import { CacheStorage } from './cache.mjs';
import { KV_OPERATIONS, KvNamespace } from './kv.mjs';
import { Queues } from './queues.mjs';
import { HTMLRewriter, rewriterStats } from './rewriter.mjs';
import { compatFlags, loadWorker } from './worker.mjs';

function fail(message) {
  console.error(`local-edge: ${message}`);
  process.exit(1);
}

// Query parameters that carry credentials (the explain token, offer and preview links) are logged
// without their values: a log is read by more people than the secret is meant for.
const REDACTED_PARAMS = new Set(['token', 't']);

function loggedUrl(url) {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const pairs = url.slice(at + 1).split('&').map((pair) => {
    let name = pair.split('=', 1)[0];
    try {
      name = decodeURIComponent(name.replaceAll('+', ' '));
    } catch {
      // a malformed escape: compare the name as written
    }
    return REDACTED_PARAMS.has(name) ? `${pair.split('=', 1)[0]}=[redacted]` : pair;
  });
  return `${url.slice(0, at)}?${pairs.join('&')}`;
}

function integer(name, text) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) fail(`--${name} must be a non-negative integer, got ${text}`);
  return value;
}

// --kv-fail: a comma-separated list of KV operations, or "all".
function kvOperations(text) {
  if (text === '') return [];
  if (text === 'all') return [...KV_OPERATIONS];
  const names = text.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !KV_OPERATIONS.includes(name));
  if (unknown.length) fail(`--kv-fail: unknown KV operation ${unknown.join(', ')} (use ${KV_OPERATIONS.join(', ')} or all)`);
  return names;
}

// ---------------------------------------------------------------- configuration

function readOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        config: { type: 'string', default: 'wrangler.toml' },
        port: { type: 'string' },
        ip: { type: 'string', default: '127.0.0.1' },
        var: { type: 'string', multiple: true, default: [] },
        'persist-to': { type: 'string' },
        'kv-delay-ms': { type: 'string', default: '0' },
        'kv-fail': { type: 'string', default: '' },
        upstream: { type: 'string' },
        'site-packages': { type: 'string' },
        'memory-log-ms': { type: 'string', default: '0' },
      },
    }));
  } catch (err) {
    fail(err.message);
  }
  const configPath = path.resolve(values.config);
  const configDir = path.dirname(configPath);
  let config;
  try {
    config = parseToml(fs.readFileSync(configPath, 'utf8'));
  } catch (err) {
    fail(`cannot read config ${configPath}: ${err.message}`);
  }
  if (typeof config.main !== 'string') fail(`${configPath} has no "main"`);

  // Bindings as wrangler dev builds them: [vars], then secrets from .dev.vars, then --var.
  const devVarsPath = path.join(configDir, '.dev.vars');
  const secrets = fs.existsSync(devVarsPath) ? dotenv.parse(fs.readFileSync(devVarsPath)) : {};
  const cliVars = {};
  for (const item of values.var) {
    const colon = item.indexOf(':');
    if (colon < 1) fail(`--var expects KEY:VALUE, got ${item}`);
    cliVars[item.slice(0, colon)] = item.slice(colon + 1);
  }
  const vars = { ...(config.vars ?? {}), ...secrets, ...cliVars };

  // [[analytics_engine_datasets]]: `dataset` defaults to the binding name (as wrangler
  // shows it); it names the file <persist-to>/analytics/<dataset>.jsonl.
  const analyticsDatasets = [];
  for (const entry of config.analytics_engine_datasets ?? []) {
    const { binding, dataset = binding } = entry ?? {};
    if (typeof binding !== 'string' || !binding) fail(`[[analytics_engine_datasets]] needs a "binding" string`);
    if (typeof dataset !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(dataset)) {
      fail(`[[analytics_engine_datasets]] ${binding}: dataset ${JSON.stringify(dataset)} is not a usable name`);
    }
    analyticsDatasets.push({ binding, dataset });
  }

  // Like wrangler: --persist-to is relative to the working directory; the default
  // state folder lives beside the config.
  const persistTo = values['persist-to'] ? path.resolve(values['persist-to']) : path.join(configDir, '.nudge-local');
  return {
    configDir,
    config,
    mainFile: path.resolve(configDir, config.main),
    vars,
    analyticsDatasets,
    persistTo,
    kvDelayMs: integer('kv-delay-ms', values['kv-delay-ms']),
    kvFail: kvOperations(values['kv-fail']),
    memoryLogMs: integer('memory-log-ms', values['memory-log-ms']),
    port: integer('port', values.port ?? process.env.PORT ?? '8787'),
    ip: values.ip,
    // The zone's origin, for passThroughOnException (Cloudflare forwards to the origin server).
    upstream: values.upstream ?? (typeof vars.ORIGIN_URL === 'string' ? vars.ORIGIN_URL : undefined),
    sitePackages: values['site-packages']
      ? path.resolve(values['site-packages'])
      : path.join(configDir, '.venv/lib/python3.13/site-packages'),
  };
}

function runBuild({ config, configDir }) {
  const command = config.build?.command;
  if (!command) return;
  const cwd = path.resolve(configDir, config.build.cwd ?? '.');
  console.error(`local-edge: build: ${command}`);
  // Build output goes to stderr so stdout stays the access log.
  const result = spawnSync(command, { cwd, shell: true, stdio: ['ignore', 2, 2] });
  if (result.error) fail(`build command failed to start: ${result.error.message}`);
  if (result.status !== 0) fail(`build command failed (exit ${result.status ?? result.signal}): ${command}`);
}

// ------------------------------------------------------------- execution context

const pendingWaitUntil = new Set();

function track(promise) {
  const tracked = Promise.resolve(promise)
    .catch((err) => console.error(`local-edge: waitUntil promise rejected: ${errorText(err)}`))
    .finally(() => pendingWaitUntil.delete(tracked));
  pendingWaitUntil.add(tracked);
}

const kPassThrough = Symbol('passThroughOnException');

// The `ctx` of a request. The toStringTag matters: the runtime helper only patches
// waitUntil (to keep Python awaitables alive) on an "[object ExecutionContext]".
class ExecutionContext {
  props = {};
  waitUntil(promise) {
    track(promise);
  }
  passThroughOnException() {
    this[kPassThrough] = true;
  }
  get [Symbol.toStringTag]() {
    return 'ExecutionContext';
  }
}

function errorText(err) {
  // A PythonError's message is the Python traceback; its JS stack adds nothing.
  if (err?.name === 'PythonError') return err.message;
  return err?.stack ?? String(err);
}

// -------------------------------------------------------------- HTTP <-> fetch API

// Hop-by-hop headers end at this hop (and Node's fetch rejects several of them).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'expect']);

function toRequest(req, fallbackHost) {
  const headers = new Headers();
  const cookies = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    if (name === 'cookie') cookies.push(req.rawHeaders[i + 1]);
    else headers.append(name, req.rawHeaders[i + 1]);
  }
  if (cookies.length) headers.set('cookie', cookies.join('; '));
  // Cloudflare tells the Worker who the visitor is; other cf-* headers are not added.
  headers.set('cf-connecting-ip', req.socket.remoteAddress ?? '');
  const url = req.url.startsWith('/') ? `http://${req.headers.host ?? fallbackHost}${req.url}` : req.url;
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const request = new Request(url, {
    method: req.method,
    headers,
    body: hasBody ? Readable.toWeb(req) : undefined,
    duplex: hasBody ? 'half' : undefined,
    redirect: 'manual',
  });
  // No edge metadata locally: request.cf is null, as in the dashboard preview.
  Object.defineProperty(request, 'cf', { value: null });
  return request;
}

function isResponse(value) {
  return value != null && typeof value.status === 'number' && typeof value.headers?.get === 'function' && 'body' in value;
}

function textResponse(status, text) {
  return new Response(text, { status, headers: { 'content-type': 'text/plain;charset=utf-8' } });
}

// passThroughOnException: on Cloudflare the request then goes to the zone's origin.
// Locally the origin is --upstream (default: the ORIGIN_URL var).
async function passThrough(request, upstream) {
  if (!upstream) return textResponse(500, 'passThroughOnException: no --upstream and no ORIGIN_URL var\n');
  if (request.bodyUsed) return textResponse(500, 'passThroughOnException: the Worker already read the request body\n');
  const url = new URL(request.url);
  try {
    return await fetch(new URL(url.pathname + url.search, upstream), {
      method: request.method,
      headers: request.headers,
      body: request.body,
      duplex: request.body ? 'half' : undefined,
      redirect: 'manual',
    });
  } catch (err) {
    console.error(`local-edge: upstream ${upstream} failed: ${err.cause?.message ?? err.message}`);
    return textResponse(502, 'Bad Gateway\n');
  }
}

// Workers encode a returned body to match its Content-Encoding ("encodeBody:
// automatic"). Node's fetch has already decoded upstream bodies but keeps the
// header, so compress on the way out, as the edge would.
const ENCODERS = {
  gzip: () => zlib.createGzip(),
  deflate: () => zlib.createDeflate(),
  br: () => zlib.createBrotliCompress(),
};
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'set-cookie']);

function send(req, res, response) {
  const headers = {};
  for (const [name, value] of response.headers) {
    if (!NOT_FORWARDED.has(name)) headers[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length) headers['set-cookie'] = cookies; // one header line each
  const noBody = req.method === 'HEAD' || NULL_BODY_STATUS.has(response.status) || response.body == null;
  const encoder = noBody ? undefined : ENCODERS[(response.headers.get('content-encoding') ?? '').trim().toLowerCase()];
  if (encoder) delete headers['content-length'];
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (noBody) {
    response.body?.cancel().catch(() => {});
    res.end();
    return;
  }
  // Streamed, never buffered.
  const stages = [Readable.fromWeb(response.body), ...(encoder ? [encoder()] : []), res];
  pipeline(stages, (err) => {
    if (err && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      console.error(`local-edge: response body for ${req.method} ${loggedUrl(req.url)} failed: ${errorText(err)}`);
    }
  });
}

// ------------------------------------------------------------------------- main

async function main() {
  const options = readOptions(process.argv.slice(2));
  runBuild(options);

  // Workers globals for Python's `js` module: Node already has fetch, Request,
  // Response, Headers; HTMLRewriter comes from Miniflare, counting handler calls
  // (rewriter.mjs).
  globalThis.HTMLRewriter = HTMLRewriter;
  // The Cache API (`caches.default`, `caches.open(name)`) from Miniflare too, kept in
  // <persist-to>/cache; keys and responses are Node's Request/Response (cache.mjs).
  globalThis.caches = new CacheStorage(path.join(options.persistTo, 'cache'));
  const env = { ...options.vars };
  for (const { binding } of options.config.kv_namespaces ?? []) {
    const directory = path.join(options.persistTo, 'kv', binding);
    fs.mkdirSync(directory, { recursive: true });
    env[binding] = new KvNamespace(directory, { delayMs: options.kvDelayMs, fail: options.kvFail });
  }
  // Analytics Engine: each data point is a JSON line in <persist-to>/analytics/<dataset>.jsonl.
  for (const { binding, dataset } of options.analyticsDatasets) {
    env[binding] = new AnalyticsEngine(dataset, path.join(options.persistTo, 'analytics'));
  }
  // Queues (queues.mjs): producer bindings now, consumer dispatch once the Worker is loaded.
  let queues;
  try {
    const { compatibility_date: date, compatibility_flags: flags = [] } = options.config;
    const jsonByDefault = compatFlags(date, flags).queues_json_messages;
    queues = new Queues(options.config, { directory: path.join(options.persistTo, 'queues'), jsonByDefault, waitUntil: track });
  } catch (err) {
    fail(err.message);
  }
  Object.assign(env, queues.bindings);

  let worker;
  try {
    worker = await loadWorker({
      mainFile: options.mainFile,
      sitePackages: options.sitePackages,
      env,
      compatibilityDate: options.config.compatibility_date,
      compatibilityFlags: options.config.compatibility_flags ?? [],
      waitUntil: track,
    });
  } catch (err) {
    fail(`cannot load ${options.mainFile}:\n${errorText(err)}`);
  }
  queues.start((ctx, batch) => worker.queue(ctx, env, batch));

  // --memory-log-ms: a line on stdout every N ms, for load tests that look for leaks.
  if (options.memoryLogMs > 0) {
    setInterval(() => {
      const m = process.memoryUsage();
      console.log(`memory rss=${m.rss} heap_used=${m.heapUsed} external=${m.external} wasm=${worker.wasmBytes()}`);
    }, options.memoryLogMs).unref();
  }

  const fallbackHost = `${options.ip}:${options.port}`;
  const server = http.createServer(async (req, res) => {
    const started = performance.now();
    let rewriter;
    res.on('close', () => {
      const ms = Math.round(performance.now() - started);
      const note = res.writableFinished ? '' : ' (aborted)';
      const handlers = rewriter ? ` handlers=${rewriter.calls} handlers_ms=${rewriter.ms.toFixed(3)}` : '';
      console.log(`${req.method} ${loggedUrl(req.url)} ${res.statusCode} ${ms}ms${handlers}${note}`);
    });
    try {
      const request = toRequest(req, fallbackHost);
      // Local-only control endpoints (GET /__local-edge/queues, POST .../advance), before the Worker.
      const control = await queues.control(request);
      if (control) return send(req, res, control);
      const ctx = new ExecutionContext();
      let response;
      try {
        response = await worker.fetch(ctx, env, request);
        if (!isResponse(response)) throw new TypeError('the Worker did not return a Response');
      } catch (err) {
        if (ctx[kPassThrough]) {
          console.error(`local-edge: Worker threw, passing through to upstream:\n${errorText(err)}`);
          response = await passThrough(request, options.upstream);
        } else {
          console.error(`local-edge: Worker threw exception:\n${errorText(err)}`);
          response = textResponse(500, 'Worker threw exception\n');
        }
      }
      rewriter = rewriterStats.get(response);
      send(req, res, response);
    } catch (err) {
      console.error(`local-edge: ${errorText(err)}`);
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    }
  });
  server.on('error', (err) => fail(`cannot listen on ${options.ip}:${options.port}: ${err.message}`));
  server.listen(options.port, options.ip, () => {
    const { port } = server.address();
    console.log(`ready on http://${options.ip}:${port}`);
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    server.close();
    server.closeIdleConnections();
    // Give pending waitUntil work up to 2 s, then leave.
    const grace = new Promise((resolve) => setTimeout(resolve, 2000));
    await Promise.race([Promise.allSettled([...pendingWaitUntil]), grace]);
    server.closeAllConnections();
    process.exit(0);
  };
  // Like Workers: an unhandled rejection is logged, it does not bring the runtime down.
  process.on('unhandledRejection', (err) => console.error(`local-edge: unhandled rejection: ${errorText(err)}`));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await main();
