// Local stand-in for a Workers KV namespace binding.
//
// Storage and semantics (validation, expirationTtl >= 60 s, metadata, list
// cursors) come from @miniflare/kv over @miniflare/storage-file, persisted under
// <persist-to>/kv/<binding>. Not emulated: eventual consistency between
// locations, cacheTtl, per-account rate limits.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { KVNamespace } = require('@miniflare/kv');
const { FileStorage } = require('@miniflare/storage-file');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The class name matters: the Python SDK's _EnvWrapper wraps a binding in a
// _BindingWrapper (Python <-> JS value conversion) only when the JS constructor
// name is in its _BINDING_TYPES, and on Cloudflare a KV binding is a "KvNamespace".
export class KvNamespace {
  #inner;
  #delayMs;

  constructor(directory, { delayMs = 0 } = {}) {
    this.#inner = new KVNamespace(new FileStorage(directory));
    this.#delayMs = delayMs;
  }

  // --kv-delay-ms: fault injection, every operation waits this long first.
  async #delay() {
    if (this.#delayMs > 0) await sleep(this.#delayMs);
  }

  async get(key, typeOrOptions) {
    await this.#delay();
    return this.#inner.get(key, typeOrOptions);
  }

  async getWithMetadata(key, typeOrOptions) {
    await this.#delay();
    return this.#inner.getWithMetadata(key, typeOrOptions);
  }

  async put(key, value, options) {
    await this.#delay();
    return this.#inner.put(key, value, options ?? {});
  }

  async delete(key) {
    await this.#delay();
    return this.#inner.delete(key);
  }

  async list(options) {
    await this.#delay();
    return this.#inner.list(options ?? {});
  }
}
