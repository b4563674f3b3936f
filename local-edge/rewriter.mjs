// HTMLRewriter for the Worker's `js` globals: Miniflare's (lol-html in wasm, the engine
// Cloudflare runs), with two changes.
//  - transform() returns Node's Response over the same streamed body: Miniflare's own
//    Response class has unimplemented getters (e.g. `type`) that throw when Pyodide
//    converts it.
//  - Every call lol-html makes into the Worker's handlers, end-tag handlers included (for a Python Worker each one
//    crosses into Pyodide) is counted and timed. That is the Worker's own work that runs
//    after fetch has returned, while the body streams; server.mjs adds it to the
//    response's access log line (`handlers=3 handlers_ms=0.412`). transform() itself is
//    timed too: it runs inside the Worker's call, in JavaScript and wasm here, native code
//    in workerd.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { HTMLRewriter: MiniflareHTMLRewriter } = require('@miniflare/html-rewriter');

const ELEMENT_HANDLERS = ['element', 'comments', 'text'];
const DOCUMENT_HANDLERS = ['doctype', 'comments', 'text', 'end'];

/** Transformed Response -> { calls, ms }: the handler calls made while its body streamed, and
 * transformMs: how long transform() itself took (it runs inside the Worker's call). */
export const rewriterStats = new WeakMap();

// A plain object with the handler methods `handlers` has (read once, as lol-html's glue
// does), each counting and timing its call into the original.
function counted(handlers, names, stats) {
  const wrapped = {};
  for (const name of names) {
    const method = handlers?.[name];
    if (typeof method !== 'function') continue;
    wrapped[name] = (arg) => {
      stats.calls += 1;
      const start = performance.now();
      if (name === 'element') countEndTags(arg, stats);
      try {
        return method.call(handlers, arg);
      } finally {
        stats.ms += performance.now() - start;
      }
    };
  }
  return wrapped;
}

// A handler the Worker registers on an element's end tag (element.onEndTag) is a call into the
// Worker too: counted and timed like the others.
function countEndTags(element, stats) {
  const original = element.onEndTag;
  if (typeof original !== 'function') return;
  element.onEndTag = (handler) =>
    original.call(element, (end) => {
      stats.calls += 1;
      const start = performance.now();
      try {
        return handler(end);
      } finally {
        stats.ms += performance.now() - start;
      }
    });
}

export class HTMLRewriter extends MiniflareHTMLRewriter {
  #stats = { calls: 0, ms: 0, transformMs: 0 };

  on(selector, handlers) {
    return super.on(selector, counted(handlers, ELEMENT_HANDLERS, this.#stats));
  }

  onDocument(handlers) {
    return super.onDocument(counted(handlers, DOCUMENT_HANDLERS, this.#stats));
  }

  transform(response) {
    const started = performance.now();
    const out = super.transform(response);
    // The headers as Miniflare passes them on (without Content-Length), copied from the
    // Node Headers we were given: cheaper than from Miniflare's own Headers class.
    const headers = new Headers(response.headers);
    headers.delete('content-length');
    const result = new Response(out.body, { status: response.status, statusText: response.statusText, headers });
    this.#stats.transformMs = performance.now() - started;
    rewriterStats.set(result, this.#stats);
    return result;
  }
}
