// Local stand-in for the Workers Cache API: `caches.default` and `caches.open(name)`,
// each a Cache with match / put / delete.
//
// The semantics come from @miniflare/cache (Miniflare's implementation): put
// honours Cache-Control / Expires through http-cache-semantics as a shared cache
// (max-age, s-maxage, no-store, private, no-cache), skips responses with
// Set-Cookie unless Cache-Control has `private=Set-Cookie`, throws on non-GET
// requests, 206 responses and `Vary: *`; match answers conditional (If-None-Match,
// If-Modified-Since -> 304) and Range requests and adds `CF-Cache-Status: HIT`.
// Entries are files under <persist-to>/cache/<cache name>.
//
// What this file adds at the border:
//  - keys and responses: Miniflare only recognises its own (and its undici 5's)
//    Request class, so a Node Request key is rebuilt as a Miniflare one (URL,
//    method, headers); match hands back a Node `Response` over the cached body
//    with immutable headers (as on Cloudflare), not a Miniflare one;
//  - `private=Set-Cookie`: the Set-Cookie headers are dropped before storing, as
//    Cloudflare does (Miniflare would store and replay them);
//  - file names: Miniflare's FileStorage maps a key to a path (so `/a` and `/a/b`
//    cannot both be stored, and `?`/`_` or long URLs collide); here each entry is
//    stored under the SHA-256 of its URL, the URL kept in the entry's .meta.json.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { CacheStorage: MiniflareCacheStorage } = require('@miniflare/cache');
const { FileStorage } = require('@miniflare/storage-file');
// The very modules @miniflare/cache uses (its Request class check is an instanceof).
const requireFromCache = createRequire(require.resolve('@miniflare/cache'));
const { Request: MiniflareRequest } = requireFromCache('@miniflare/core');
const { sanitisePath } = requireFromCache('@miniflare/shared');

// A Miniflare Storage whose keys (cache URLs) become fixed-length file names.
//
// Operations on one key run one after another: FileStorage writes an entry as two
// files (body, then .meta.json), so a match racing a put (e.g. a put in waitUntil and
// the next request's match) could read the body without its metadata and throw
// ERR_DESERIALIZATION. Here it waits for the put and sees the whole entry.
class HashedKeyStorage {
  #inner;
  #last = new Map(); // file name -> the last operation queued on it

  constructor(directory) {
    this.#inner = new FileStorage(directory);
  }

  static #name(key) {
    return createHash('sha256').update(key).digest('hex');
  }

  #serial(name, operation) {
    const result = (this.#last.get(name) ?? Promise.resolve()).then(operation);
    const settled = result.then(
      () => {},
      () => {},
    );
    this.#last.set(name, settled);
    settled.then(() => {
      if (this.#last.get(name) === settled) this.#last.delete(name);
    });
    return result;
  }

  get(key, skipMetadata) {
    const name = HashedKeyStorage.#name(key);
    return this.#serial(name, () => this.#inner.get(name, skipMetadata));
  }

  put(key, { value, expiration, metadata }) {
    const name = HashedKeyStorage.#name(key);
    return this.#serial(name, () => this.#inner.put(name, { value, expiration, metadata: { ...metadata, url: key } }));
  }

  delete(key) {
    const name = HashedKeyStorage.#name(key);
    return this.#serial(name, () => this.#inner.delete(name));
  }
}

// A cache key as Miniflare accepts it: a URL string, or its own Request class.
function cacheKey(input) {
  if (typeof input === 'string' || input instanceof URL) return String(input);
  if (typeof input?.url === 'string' && typeof input.method === 'string') {
    return new MiniflareRequest(input.url, { method: input.method, headers: [...input.headers] });
  }
  throw new TypeError('a cache key must be a URL string or a Request (from Python: request.js_object)');
}

// Miniflare's own test (the quoted form `private="Set-Cookie"` is not recognised).
const PRIVATE_SET_COOKIE = /private=set-cookie/i;

function storedResponse(response) {
  const isResponse = typeof response?.status === 'number' && typeof response.headers?.get === 'function';
  if (!isResponse || typeof response.arrayBuffer !== 'function') {
    throw new TypeError('cache.put expects a Response (from Python: response.js_object)');
  }
  // Cloudflare stores a `Cache-Control: private=Set-Cookie` response without its cookies.
  if (!PRIVATE_SET_COOKIE.test(response.headers.get('cache-control') ?? '') || !response.headers.has('set-cookie')) {
    return response;
  }
  const headers = new Headers(response.headers);
  headers.delete('set-cookie');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

const IMMUTABLE = () => {
  throw new TypeError("Can't modify immutable headers.");
};

// Miniflare's Response -> Node's, over the same body stream.
function nodeResponse(cached) {
  if (cached === undefined) return undefined;
  const headers = new Headers();
  for (const [name, value] of cached.headers) headers.append(name, value);
  const response = new Response(cached.body, { status: cached.status, statusText: cached.statusText, headers });
  for (const method of ['append', 'delete', 'set']) response.headers[method] = IMMUTABLE;
  return response;
}

export class Cache {
  #inner;

  constructor(inner) {
    this.#inner = inner;
  }

  async match(request, options) {
    return nodeResponse(await this.#inner.match(cacheKey(request), options));
  }

  async put(request, response) {
    const key = cacheKey(request);
    await this.#inner.put(key, storedResponse(response));
  }

  async delete(request, options) {
    return this.#inner.delete(cacheKey(request), options);
  }
}

export class CacheStorage {
  #inner;
  #default;

  // directory: <persist-to>/cache; each cache is a folder in it.
  constructor(directory) {
    const factory = { storage: (name) => new HashedKeyStorage(path.join(directory, sanitisePath(name))) };
    this.#inner = new MiniflareCacheStorage({ cache: true, cacheWarnUsage: false }, undefined, factory, {});
  }

  get default() {
    this.#default ??= new Cache(this.#inner.default);
    return this.#default;
  }

  // Rejects "default" (reserved) and names over 1024 characters, as Miniflare does.
  async open(name) {
    return new Cache(await this.#inner.open(String(name)));
  }
}
