// Local stand-in for a Workers KV namespace binding.
//
// Storage and semantics (validation, expirationTtl >= 60 s, metadata, list
// cursors) come from @miniflare/kv over @miniflare/storage-file, persisted under
// <persist-to>/kv/<binding>. Not emulated: eventual consistency between
// locations, cacheTtl, per-account rate limits.
//
// Test-only fault injection (server.mjs --kv-delay-ms, --kv-fail): every
// operation can wait first, and chosen operations reject as an unreachable KV
// would, so tests can check that the Worker fails open.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { KVNamespace } = require('@miniflare/kv');
const { FileStorage } = require('@miniflare/storage-file');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The class name matters: the Python SDK's _EnvWrapper wraps a binding in a
// _BindingWrapper (Python <-> JS value conversion) only when the JS constructor
// name is in its _BINDING_TYPES, and on Cloudflare a KV binding is a "KvNamespace".
export const KV_OPERATIONS = ['get', 'getWithMetadata', 'put', 'delete', 'list'];

export class KvNamespace {
  #inner;
  #delayMs;
  #failing;

  // delayMs: every operation waits this long first; fail: names of operations
  // (from KV_OPERATIONS) that then reject. Both are for tests only.
  constructor(directory, { delayMs = 0, fail = [] } = {}) {
    this.#inner = new KVNamespace(new FileStorage(directory));
    this.#delayMs = delayMs;
    this.#failing = new Set(fail);
  }

  async #fault(operation, key) {
    if (this.#delayMs > 0) await sleep(this.#delayMs);
    if (this.#failing.has(operation)) {
      const what = key === undefined ? operation : `${operation}(${JSON.stringify(key)})`;
      throw new Error(`KV ${what} failed: injected by local-edge --kv-fail`);
    }
  }

  async get(key, typeOrOptions) {
    await this.#fault('get', key);
    return this.#inner.get(key, typeOrOptions);
  }

  async getWithMetadata(key, typeOrOptions) {
    await this.#fault('getWithMetadata', key);
    return this.#inner.getWithMetadata(key, typeOrOptions);
  }

  async put(key, value, options) {
    await this.#fault('put', key);
    return this.#inner.put(key, value, options ?? {});
  }

  async delete(key) {
    await this.#fault('delete', key);
    return this.#inner.delete(key);
  }

  async list(options) {
    await this.#fault('list');
    return this.#inner.list(options ?? {});
  }
}
