// Local stand-in for a Workers Analytics Engine dataset binding
// (wrangler.toml `[[analytics_engine_datasets]]`).
//
// `writeDataPoint({indexes, blobs, doubles})` validates the point, appends it as one
// JSON line to <persist-to>/analytics/<dataset>.jsonl and returns undefined, as
// Cloudflare's does (fire-and-forget, nothing to await):
//
//   {"timestamp":<unix ms>,"dataset":"...","indexes":[...],"blobs":[...],"doubles":[...]}
//
// Checked here (messages are workerd's where workerd has one), against workerd
// 1.20260426 (node_modules/workerd, src/workerd/api/analytics-engine*.h):
//  - the argument is undefined, null (both: an empty point) or an object;
//  - `indexes`, `blobs`, `doubles` are each absent (undefined) or an Array;
//  - at most 1 index, of at most 96 bytes (UTF-8); at most 20 blobs, 20 doubles;
//    the blobs together at most 16000 bytes (Cloudflare's docs say "16 KB"; workerd
//    compares with 16000);
//  - stricter than Cloudflare, which converts instead of rejecting: an index or blob
//    must be a string, an ArrayBuffer / ArrayBuffer view, or null/undefined (workerd
//    turns other values into strings), a double must be a number (workerd applies
//    ToNumber: "12" -> 12, "abc" / {} -> NaN, null -> 0).
// Every failure throws a TypeError from the call and writes nothing. On Cloudflare
// only the argument/Array/BigInt type errors throw from the call; the count and size
// limits are enforced after it returns: the point is dropped and an uncaught
// TypeError is logged (what workerd does). See local-edge/README.md.
import fs from 'node:fs';
import path from 'node:path';

const MAX_INDEXES = 1;
const MAX_INDEX_BYTES = 96;
const MAX_MEMBERS = 20; // blobs and doubles each
const MAX_BLOB_BYTES = 16000; // all blobs of one point together

const PREFIX = 'writeDataPoint(): ';
const encoder = new TextEncoder();
const decoder = new TextDecoder(); // non-fatal: invalid UTF-8 becomes U+FFFD in the file

// A blob or index value: [stored text or null, size in bytes].
function bytesValue(value, what) {
  if (value === null || value === undefined) return [null, 0];
  if (typeof value === 'string') return [value, encoder.encode(value).byteLength];
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    const bytes =
      value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return [decoder.decode(bytes), bytes.byteLength];
  }
  throw new TypeError(`${PREFIX}${what} must be a string, an ArrayBuffer or null, got ${describe(value)}.`);
}

function describe(value) {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an Array';
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'bigint') return `bigint ${value}n`;
  return `${typeof value} ${String(value)}`;
}

function field(event, name) {
  const value = event[name];
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(`Incorrect type for the '${name}' field on 'AnalyticsEngineEvent': the provided value is not of type 'Array'.`);
  }
  return value;
}

// Validate a data point; returns {indexes, blobs, doubles} as they go in the file.
export function checkDataPoint(event) {
  if (event === undefined || event === null) event = {};
  if (typeof event !== 'object' && typeof event !== 'function') {
    throw new TypeError("Failed to execute 'writeDataPoint' on 'AnalyticsEngine': parameter 1 is not of type 'AnalyticsEngineEvent'.");
  }
  const indexes = field(event, 'indexes');
  const blobs = field(event, 'blobs');
  const doubles = field(event, 'doubles');

  if (indexes.length > MAX_INDEXES) throw new TypeError(`${PREFIX}Maximum of ${MAX_INDEXES} indexes supported.`);
  const storedIndexes = [];
  for (let i = 0; i < indexes.length; i++) {
    const [text, size] = bytesValue(indexes[i], `indexes[${i}]`);
    if (size > MAX_INDEX_BYTES) throw new TypeError(`${PREFIX}Size of indexes[0] exceeds ${MAX_INDEX_BYTES} bytes).`);
    storedIndexes.push(text);
  }

  if (blobs.length > MAX_MEMBERS) throw new TypeError(`${PREFIX}Maximum of ${MAX_MEMBERS} blobs supported.`);
  const storedBlobs = [];
  let total = 0;
  for (let i = 0; i < blobs.length; i++) {
    const [text, size] = bytesValue(blobs[i], `blobs[${i}]`);
    total += size;
    if (total > MAX_BLOB_BYTES) throw new TypeError(`${PREFIX}Cumulative size of blobs exceeds ${MAX_BLOB_BYTES} bytes).`);
    storedBlobs.push(text);
  }

  if (doubles.length > MAX_MEMBERS) throw new TypeError(`${PREFIX}Maximum of ${MAX_MEMBERS} doubles supported.`);
  for (let i = 0; i < doubles.length; i++) {
    if (typeof doubles[i] !== 'number') {
      throw new TypeError(`${PREFIX}doubles[${i}] must be a number, got ${describe(doubles[i])}.`);
    }
  }
  return { indexes: storedIndexes, blobs: storedBlobs, doubles: [...doubles] };
}

// NaN and +-Infinity are valid doubles but not JSON numbers: written as the bare
// tokens NaN / Infinity / -Infinity, which Python's json.loads reads back as floats.
function doubleText(value) {
  if (Number.isFinite(value)) return JSON.stringify(value);
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? 'Infinity' : '-Infinity';
}

// The class name matters: the Python SDK's _EnvWrapper wraps a binding in a
// _BindingWrapper only when its JS constructor name is in _BINDING_TYPES; on
// Cloudflare (workerd) this binding's class is "AnalyticsEngine" (the TypeScript
// type is AnalyticsEngineDataset; wrangler dev's no-op is LocalAnalyticsEngineDataset).
export class AnalyticsEngine {
  #dataset;
  #file;

  constructor(dataset, directory) {
    this.#dataset = dataset;
    this.#file = path.join(directory, `${dataset}.jsonl`);
  }

  writeDataPoint(event) {
    const point = checkDataPoint(event);
    const line =
      `{"timestamp":${Date.now()},"dataset":${JSON.stringify(this.#dataset)},` +
      `"indexes":${JSON.stringify(point.indexes)},"blobs":${JSON.stringify(point.blobs)},` +
      `"doubles":[${point.doubles.map(doubleText).join(',')}]}\n`;
    // One synchronous append per point: lines never interleave (one thread), and the
    // point is on disk when the call returns. Like Cloudflare, no delivery guarantee
    // to the Worker: a failed write is logged, not thrown.
    try {
      fs.mkdirSync(path.dirname(this.#file), { recursive: true });
      fs.appendFileSync(this.#file, line);
    } catch (err) {
      console.error(`local-edge: analytics dataset ${this.#dataset}: cannot write ${this.#file}: ${err.message}`);
    }
    return undefined;
  }

  get [Symbol.toStringTag]() {
    return 'AnalyticsEngine';
  }
}
