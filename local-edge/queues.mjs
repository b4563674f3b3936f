// Local stand-in for Cloudflare Queues: producer bindings (wrangler.toml
// `[[queues.producers]]`), a broker per queue, and push-consumer dispatch to the
// Worker's `queue` handler (`[[queues.consumers]]`).
//
// What workerd does is followed where it is known (src/workerd/api/queue.c++ in
// cloudflare/workerd, and the `workerd` binary in node_modules, 1.20260426):
//  - `send(body, {contentType, delaySeconds})` / `sendBatch(messages, {delaySeconds})`
//    serialize the body the way workerd does (v8 structured clone, JSON, text or bytes;
//    the default is "json" from compatibility date 2024-03-18, flag
//    `queues_json_messages`, else "v8"); the TypeErrors it throws itself carry its
//    messages. What Cloudflare's queue broker rejects (sizes, delays) surfaces as workerd
//    shows it, an `Error: Queue send failed: <reason>` (`sendBatch failed`); the reason
//    texts are Miniflare's broker's where it has one, else this module's.
//  - the consumer gets one invocation per batch: explicit `message.ack()` /
//    `message.retry({delaySeconds})` win, then `batch.ackAll()` / `batch.retryAll()`,
//    then the outcome (a handler that returns acks the rest, one that throws, or whose
//    `ctx.waitUntil` work fails, retries the rest); the misuse warnings are workerd's.
//  - a message goes to the consumer's `dead_letter_queue` (or is dropped) after
//    `max_retries` retries.
// Time: a virtual clock (real time plus an offset that only grows) decides when a
// message is due; `POST /__local-edge/queues/advance?seconds=N` moves it forward and
// delivers what falls due on the way. Queue contents and the offset are kept in
// <persist-to>/queues/. See local-edge/README.md for what is not emulated.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';

// Cloudflare's limits (https://developers.cloudflare.com/queues/platform/limits/; 1 KB = 1000 bytes).
const MAX_MESSAGE_BYTES = 128_000;
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 256_000;
const MAX_DELAY_SECONDS = 43_200; // 12 hours, for delaySeconds, retry delays and delivery_delay
const CONTENT_TYPES = ['text', 'bytes', 'json', 'v8'];

// [[queues.consumers]] keys: [default, min, max] (Cloudflare's documented defaults and limits).
const CONSUMER_SETTINGS = {
  max_batch_size: [10, 1, 100],
  max_batch_timeout: [5, 0, 60], // seconds
  max_retries: [3, 0, 100],
  retry_delay: [0, 0, MAX_DELAY_SECONDS], // seconds
};
// A runaway consumer (one that keeps sending itself messages due at once) must not hang /advance.
const MAX_BATCHES_PER_ADVANCE = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's ceiling (about 24.8 days)
const CONTROL_PATH = '/__local-edge/queues';

// ------------------------------------------------------------------ configuration

function settingNumber(where, key, value, min, max) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${where}: ${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function queueName(where, value) {
  // Cloudflare: letters, digits and dashes; here it also names a file, so nothing else.
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/.test(value)) {
    throw new Error(`${where}: queue name ${JSON.stringify(value)} must be 1-63 letters, digits or dashes`);
  }
  return value;
}

/** The `queues` table of a wrangler config as {producers, consumers}; throws on bad entries. */
export function parseQueuesConfig(config) {
  const section = config.queues ?? {};
  const producers = [];
  const bindings = new Set();
  for (const entry of section.producers ?? []) {
    const where = '[[queues.producers]]';
    const { binding, queue, delivery_delay: delay = 0 } = entry ?? {};
    if (typeof binding !== 'string' || !/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(binding)) {
      throw new Error(`${where} needs a "binding" name, got ${JSON.stringify(binding)}`);
    }
    if (bindings.has(binding)) throw new Error(`${where}: binding ${binding} is declared twice`);
    bindings.add(binding);
    producers.push({
      binding,
      queue: queueName(`${where} ${binding}`, queue),
      deliveryDelay: settingNumber(`${where} ${binding}`, 'delivery_delay', delay, 0, MAX_DELAY_SECONDS),
    });
  }
  const consumers = new Map();
  for (const entry of section.consumers ?? []) {
    const queue = queueName('[[queues.consumers]]', entry?.queue);
    const where = `[[queues.consumers]] ${queue}`;
    if (consumers.has(queue)) throw new Error(`${where}: a queue has one consumer, this one is declared twice`);
    const type = entry.type ?? 'worker';
    if (type !== 'worker' && type !== 'http_pull') throw new Error(`${where}: type must be "worker" or "http_pull", got ${JSON.stringify(type)}`);
    const consumer = { queue, type };
    for (const [key, [fallback, min, max]] of Object.entries(CONSUMER_SETTINGS)) {
      consumer[key] = settingNumber(where, key, entry[key] ?? fallback, min, max);
    }
    if (entry.dead_letter_queue !== undefined) {
      consumer.dead_letter_queue = queueName(`${where} dead_letter_queue`, entry.dead_letter_queue);
      if (consumer.dead_letter_queue === queue) throw new Error(`${where}: dead_letter_queue cannot be the queue itself`);
    }
    consumers.set(queue, consumer);
  }
  return { producers, consumers };
}

// ------------------------------------------------------------------ message bodies

function typeOf(value) {
  return value === null ? 'object' : typeof value;
}

function contentTypeOf(value) {
  if (typeof value !== 'string' || !CONTENT_TYPES.includes(value.toLowerCase())) {
    throw new TypeError(`Unsupported queue message content type: ${value}`);
  }
  return value.toLowerCase();
}

// A body as the bytes Cloudflare would store (workerd's serialize()).
function serialize(body, contentType) {
  if (body === undefined) throw new TypeError('Message body cannot be undefined');
  switch (contentType) {
    case 'text':
      if (typeof body !== 'string') {
        throw new TypeError(`Content Type "text" requires a value of type string, but received: ${typeOf(body)}`);
      }
      return Buffer.from(body, 'utf8');
    case 'bytes':
      if (!ArrayBuffer.isView(body)) {
        throw new TypeError(`Content Type "bytes" requires a value of type ArrayBufferView, but received: ${typeOf(body)}`);
      }
      return Buffer.from(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
    case 'json': {
      const text = JSON.stringify(body); // throws TypeError on cycles and BigInt
      if (text === undefined) throw new TypeError(`Queue message body of type ${typeOf(body)} cannot be serialized as JSON`);
      return Buffer.from(text, 'utf8');
    }
    default:
      // V8's serializer is the structured clone algorithm: functions, symbols and
      // other uncloneable values throw a DataCloneError here as on Cloudflare.
      return v8.serialize(body);
  }
}

// A fresh copy of the body for one delivery (workerd's deserialize()).
function deserialize(record) {
  const bytes = Buffer.from(record.body, 'base64');
  switch (record.contentType) {
    case 'text':
      return bytes.toString('utf8');
    case 'bytes':
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength); // an ArrayBuffer
    case 'json':
      return JSON.parse(bytes.toString('utf8'));
    default:
      return v8.deserialize(bytes);
  }
}

// A body for the control endpoint's JSON: bytes as base64, other values JSON-safe.
function displayBody(record) {
  if (record.contentType === 'bytes') return { base64: record.body };
  let value;
  try {
    value = deserialize(record);
  } catch (err) {
    return { undecodable: err.message };
  }
  return JSON.parse(
    JSON.stringify(value, (_key, item) => {
      if (typeof item === 'bigint') return `${item}n`;
      if (ArrayBuffer.isView(item)) return { base64: Buffer.from(item.buffer, item.byteOffset, item.byteLength).toString('base64') };
      if (item instanceof Map) return Object.fromEntries(item);
      if (item instanceof Set) return [...item];
      return item;
    }) ?? 'null',
  );
}

// ------------------------------------------------------------------ delays

function delayError(prefix, value) {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new Error(
    `${prefix}: message delay ${shown} is invalid: delaySeconds must be an integer from 0 to ${MAX_DELAY_SECONDS} (12 hours)`,
  );
}

// A delaySeconds option: undefined when absent, else an integer 0..43200.
function delayOption(value, prefix) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DELAY_SECONDS) {
    throw delayError(prefix, value);
  }
  return value;
}

function optionsObject(options, method, typeName) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') {
    throw new TypeError(`Failed to execute '${method}' on 'WorkerQueue': parameter 2 is not of type '${typeName}'.`);
  }
  return options;
}

// ------------------------------------------------------------------ the producer binding

// The class name matters: the Python SDK's _EnvWrapper wraps a binding in a
// _BindingWrapper (Python <-> JS conversion of arguments and results) only when its JS
// constructor name is in _BINDING_TYPES, and on Cloudflare a queue binding is a "WorkerQueue".
export class WorkerQueue {
  #broker;
  #deliveryDelay;
  #defaultContentType;

  constructor(broker, { deliveryDelay, defaultContentType }) {
    this.#broker = broker;
    this.#deliveryDelay = deliveryDelay;
    this.#defaultContentType = defaultContentType;
  }

  async send(body, options) {
    if (body === undefined) throw new TypeError('Message body cannot be undefined');
    const { contentType, delaySeconds } = optionsObject(options, 'send', 'QueueSendOptions');
    const type = contentType === undefined ? this.#defaultContentType : contentTypeOf(contentType);
    const bytes = serialize(body, type);
    // What Cloudflare's broker checks (an HTTP error there, "Queue send failed: <status text>" here).
    const prefix = 'Queue send failed';
    if (bytes.byteLength > MAX_MESSAGE_BYTES) {
      throw new Error(`${prefix}: message length of ${bytes.byteLength} bytes exceeds limit of ${MAX_MESSAGE_BYTES}`);
    }
    const delay = delayOption(delaySeconds, prefix) ?? this.#deliveryDelay;
    this.#broker.enqueue([{ contentType: type, bytes, delay }]);
    return { metadata: { metrics: this.#broker.metrics() } };
  }

  async sendBatch(messages, options) {
    const { delaySeconds } = optionsObject(options, 'sendBatch', 'QueueSendBatchOptions');
    if (messages === null || typeof messages?.[Symbol.iterator] !== 'function' || typeof messages === 'string') {
      throw new TypeError("Failed to execute 'sendBatch' on 'WorkerQueue': parameter 1 is not of type 'Sequence'.");
    }
    const requests = Array.from(messages);
    if (requests.length === 0) throw new TypeError('sendBatch() requires at least one message');
    const prefix = 'Queue sendBatch failed';
    const items = requests.map((request) => {
      if (request === null || typeof request !== 'object') {
        throw new TypeError("Failed to execute 'sendBatch' on 'WorkerQueue': a message is not of type 'MessageSendRequest'.");
      }
      if (request.body === undefined) throw new TypeError('Message body cannot be undefined');
      const type = request.contentType === undefined ? this.#defaultContentType : contentTypeOf(request.contentType);
      return { contentType: type, bytes: serialize(request.body, type), delaySeconds: request.delaySeconds };
    });
    if (items.length > MAX_BATCH_MESSAGES) {
      throw new Error(`${prefix}: batch message count of ${items.length} exceeds limit of ${MAX_BATCH_MESSAGES}`);
    }
    const largest = Math.max(...items.map((item) => item.bytes.byteLength));
    if (largest > MAX_MESSAGE_BYTES) {
      throw new Error(
        `${prefix}: message in batch has length ${largest} bytes which exceeds single message size limit of ${MAX_MESSAGE_BYTES}`,
      );
    }
    const total = items.reduce((sum, item) => sum + item.bytes.byteLength, 0);
    if (total > MAX_BATCH_BYTES) throw new Error(`${prefix}: batch size of ${total} bytes exceeds limit of ${MAX_BATCH_BYTES}`);
    const batchDelay = delayOption(delaySeconds, prefix) ?? this.#deliveryDelay;
    for (const item of items) item.delay = delayOption(item.delaySeconds, prefix) ?? batchDelay;
    this.#broker.enqueue(items);
    return { metadata: { metrics: this.#broker.metrics() } };
  }

  async metrics() {
    return this.#broker.metrics();
  }
}

// ------------------------------------------------------------------ consumer-side objects

const warn = (text) => console.error(`local-edge: warning: ${text}`);

// What the handler decided, by workerd's rules (QueueEventResult in queue.c++).
class BatchResult {
  ackAll = false;
  retryAll = false;
  retryAllDelay = undefined;
  acks = new Set();
  retries = new Map(); // id -> delaySeconds or undefined
}

function retryDelayOption(options, method) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object') throw new TypeError(`${method}: options must be an object like {delaySeconds: 60}`);
  const value = options.delaySeconds;
  if (value === undefined) return undefined;
  // Local check (Cloudflare's broker limits retry delays to 12 hours; how it reports a bad one is not known).
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DELAY_SECONDS) {
    throw new TypeError(`${method}: delaySeconds must be an integer from 0 to ${MAX_DELAY_SECONDS} (12 hours), got ${String(value)}`);
  }
  return value;
}

/** One delivered message (TypeScript: `Message`); the class name is workerd's. */
export class QueueMessage {
  #result;

  constructor(record, result) {
    this.id = record.id;
    this.timestamp = new Date(record.timestamp);
    this.body = deserialize(record);
    this.attempts = record.attempts + 1; // this delivery included
    this.#result = result;
  }

  ack() {
    const result = this.#result;
    if (result.ackAll) return;
    if (result.retryAll) {
      warn(`Received a call to ack() on message ${this.id} after retryAll() was already called. Calling ack() on a message after calling retryAll() has no effect.`);
      return;
    }
    if (result.retries.has(this.id)) {
      warn(`Received a call to ack() on message ${this.id} after retry() was already called. Calling ack() on a message after calling retry() has no effect.`);
      return;
    }
    result.acks.add(this.id);
  }

  retry(options) {
    const delay = retryDelayOption(options, 'retry()');
    const result = this.#result;
    if (result.ackAll) {
      warn(`Received a call to retry() on message ${this.id} after ackAll() was already called. Calling retry() on a message after calling ackAll() has no effect.`);
      return;
    }
    if (result.acks.has(this.id)) {
      warn(`Received a call to retry() on message ${this.id} after ack() was already called. Calling retry() on a message after calling ack() has no effect.`);
      return;
    }
    result.retries.set(this.id, delay ?? result.retries.get(this.id));
  }
}

/** The batch handed to `queue(batch)` (TypeScript: `MessageBatch`). */
export class MessageBatch {
  #result;

  constructor(queue, messages, metrics, result) {
    this.queue = queue;
    this.messages = messages;
    this.metadata = { metrics };
    this.#result = result;
  }

  ackAll() {
    if (this.#result.retryAll) {
      warn('Received a call to ackAll() after retryAll() was already called. Calling ackAll() after calling retryAll() has no effect.');
      return;
    }
    this.#result.ackAll = true;
  }

  retryAll(options) {
    const delay = retryDelayOption(options, 'retryAll()');
    if (this.#result.ackAll) {
      warn('Received a call to retryAll() after ackAll() was already called. Calling retryAll() after calling ackAll() has no effect.');
      return;
    }
    this.#result.retryAll = true;
    if (delay !== undefined) this.#result.retryAllDelay = delay;
  }
}

// The `ctx` of a queue invocation. As on workerd, the invocation ends when the handler
// and every waitUntil promise have settled, and a rejected waitUntil promise fails it.
// The toStringTag matters: the runtime helper only patches waitUntil (to keep Python
// awaitables alive) on an "[object ExecutionContext]".
class QueueExecutionContext {
  props = {};
  #promises = [];

  waitUntil(promise) {
    const settled = Promise.resolve(promise);
    settled.catch(() => {}); // judged in settle(), not an unhandled rejection
    this.#promises.push(settled);
  }

  passThroughOnException() {} // only means something for fetch

  // The first rejection among the waitUntil promises, including ones added while waiting.
  async settle() {
    let failure;
    for (let i = 0; i < this.#promises.length; i++) {
      try {
        await this.#promises[i];
      } catch (err) {
        failure ??= err;
      }
    }
    return failure;
  }

  get [Symbol.toStringTag]() {
    return 'ExecutionContext';
  }
}

// ------------------------------------------------------------------ brokers

let sequence = 0; // arrival order, the tie-break between messages due at the same moment

// One queue: its messages (pending, in flight), what was dead-lettered or dropped, counters.
// Persisted as <persist-to>/queues/<queue>.json after every change.
class Broker {
  constructor(name, consumer, file, clock) {
    this.name = name;
    this.consumer = consumer; // undefined: messages are held until something consumes them
    this.file = file;
    this.clock = clock;
    this.messages = []; // {id, timestamp, contentType, body (base64), size, attempts, due, seq}
    this.inFlight = new Set();
    this.deadLettered = []; // {id, attempts, deadLetterQueue, at}
    this.dropped = []; // {id, attempts, contentType, body, at}
    this.counters = { enqueued: 0, delivered: 0, acked: 0, retried: 0, deadLettered: 0, dropped: 0 };
    this.onChange = () => {};
    this.load();
  }

  load() {
    let text;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if (err.code === 'ENOENT') return;
      throw new Error(`queue ${this.name}: cannot read ${this.file}: ${err.message}`);
    }
    let state;
    try {
      state = JSON.parse(text);
      if (!Array.isArray(state.messages)) throw new Error('no "messages" list');
    } catch (err) {
      throw new Error(`queue ${this.name}: ${this.file} is not a queue state file (${err.message}); move it away to start empty`);
    }
    this.messages = state.messages.map((message) => ({ ...message, seq: sequence++ }));
    this.deadLettered = state.deadLettered ?? [];
    this.dropped = state.dropped ?? [];
    Object.assign(this.counters, state.counters ?? {});
  }

  save() {
    const state = {
      queue: this.name,
      messages: this.messages.map(({ seq, ...message }) => message),
      deadLettered: this.deadLettered,
      dropped: this.dropped,
      counters: this.counters,
    };
    // Written whole, then renamed over the old file: a crash leaves the old or the new state.
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const temporary = `${this.file}.tmp`;
    fs.writeFileSync(temporary, JSON.stringify(state, null, 1));
    fs.renameSync(temporary, this.file);
  }

  get pushConsumer() {
    return this.consumer?.type === 'worker' ? this.consumer : undefined;
  }

  // items: [{contentType, bytes, delay}] from a producer.
  enqueue(items) {
    const now = this.clock.now();
    for (const { contentType, bytes, delay } of items) {
      this.messages.push({
        id: randomBytes(16).toString('hex'),
        timestamp: Date.now(), // the Worker's clock at send; only the broker's clock is virtual
        contentType,
        body: bytes.toString('base64'),
        size: bytes.byteLength,
        attempts: 0,
        due: now + delay * 1000,
        seq: sequence++,
      });
    }
    this.counters.enqueued += items.length;
    this.save();
    this.onChange();
  }

  // A message from another queue's consumer that ran out of retries: same id, timestamp, body.
  adoptDeadLetter(message) {
    this.messages.push({ ...message, attempts: 0, due: this.clock.now(), seq: sequence++ });
    this.counters.enqueued += 1;
    this.save();
  }

  waiting() {
    return this.messages.filter((message) => !this.inFlight.has(message.id)).sort((a, b) => a.due - b.due || a.seq - b.seq);
  }

  // When (virtual ms) the next batch goes out; undefined when nothing waits. In real
  // time, as on Cloudflare: once max_batch_size messages are due, or max_batch_timeout
  // after the first became due. Under /advance (`waitForBatch` false): as soon as the
  // first is due. The time may lie in the past: the batch is late and goes now.
  nextFlush({ waitForBatch = true } = {}) {
    const consumer = this.pushConsumer;
    if (!consumer) return undefined;
    const waiting = this.waiting();
    if (waiting.length === 0) return undefined;
    if (!waitForBatch) return waiting[0].due;
    let at = waiting[0].due + consumer.max_batch_timeout * 1000;
    if (waiting.length >= consumer.max_batch_size) at = Math.min(at, waiting[consumer.max_batch_size - 1].due);
    return at;
  }

  // The next batch at virtual time `at`: messages due by then, oldest due first.
  takeBatch(at) {
    const batch = this.waiting()
      .filter((message) => message.due <= at)
      .slice(0, this.pushConsumer.max_batch_size);
    for (const message of batch) this.inFlight.add(message.id);
    return batch;
  }

  metrics() {
    const waiting = this.messages;
    const oldest = waiting.reduce((min, message) => Math.min(min, message.timestamp), Infinity);
    return {
      backlogCount: waiting.length,
      backlogBytes: waiting.reduce((sum, message) => sum + message.size, 0),
      ...(Number.isFinite(oldest) ? { oldestMessageTimestamp: new Date(oldest) } : {}),
    };
  }

  snapshot(now) {
    return {
      consumer: this.consumer ?? null,
      pending: this.waiting().map((message) => ({
        id: message.id,
        attempts: message.attempts,
        dueInSeconds: Math.round(message.due - now) / 1000,
        contentType: message.contentType,
        timestamp: new Date(message.timestamp).toISOString(),
        body: displayBody(message),
      })),
      inFlight: this.inFlight.size,
      deadLettered: this.deadLettered,
      dropped: this.dropped.map(({ body, contentType, ...rest }) => ({ ...rest, contentType, body: displayBody({ body, contentType }) })),
      counters: this.counters,
    };
  }
}

// ------------------------------------------------------------------ the queues of a Worker

function jsonResponse(status, value) {
  return new Response(`${JSON.stringify(value, null, 1)}\n`, {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  });
}

function errorText(err) {
  if (err?.name === 'PythonError') return err.message; // the Python traceback
  return err?.stack ?? String(err);
}

function shortError(err) {
  if (err?.name === 'PythonError') {
    const lines = err.message.trim().split('\n');
    return lines[lines.length - 1];
  }
  return `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}`;
}

/**
 * All queues named in a wrangler config: `bindings` (producer name -> WorkerQueue) go into
 * env; `start(dispatch)` begins delivering to the Worker; `control(request)` answers the
 * local-only /__local-edge/queues endpoints (undefined for any other path).
 */
export class Queues {
  #brokers = new Map();
  #directory;
  #clockFile;
  #offsetMs = 0;
  #dispatch;
  #timer;
  #busy = Promise.resolve();
  #track;
  bindings = {};

  constructor(config, { directory, jsonByDefault = true, waitUntil = () => {} }) {
    const { producers, consumers } = parseQueuesConfig(config);
    this.#directory = directory;
    this.#track = waitUntil;
    this.#clockFile = path.join(directory, 'clock.json');
    this.#offsetMs = this.#readOffset();
    const clock = { now: () => this.now() };
    const names = new Set([
      ...producers.map((producer) => producer.queue),
      ...consumers.keys(),
      ...[...consumers.values()].map((consumer) => consumer.dead_letter_queue).filter(Boolean),
    ]);
    for (const name of names) {
      const broker = new Broker(name, consumers.get(name), path.join(directory, `${name}.json`), clock);
      broker.onChange = () => this.#schedule();
      this.#brokers.set(name, broker);
    }
    const defaultContentType = jsonByDefault ? 'json' : 'v8';
    for (const { binding, queue, deliveryDelay } of producers) {
      this.bindings[binding] = new WorkerQueue(this.#brokers.get(queue), { deliveryDelay, defaultContentType });
    }
  }

  /** The virtual clock (ms): real time plus everything /advance added. */
  now() {
    return Date.now() + this.#offsetMs;
  }

  #readOffset() {
    try {
      const { offsetMs } = JSON.parse(fs.readFileSync(this.#clockFile, 'utf8'));
      if (typeof offsetMs === 'number' && Number.isFinite(offsetMs) && offsetMs >= 0) return offsetMs;
    } catch (err) {
      if (err.code !== 'ENOENT') console.error(`local-edge: ignoring ${this.#clockFile}: ${err.message}`);
    }
    return 0;
  }

  #moveClockTo(at) {
    const ahead = at - this.now();
    if (ahead <= 0) return;
    this.#offsetMs += ahead;
    fs.mkdirSync(this.#directory, { recursive: true });
    fs.writeFileSync(this.#clockFile, `${JSON.stringify({ offsetMs: this.#offsetMs })}\n`);
  }

  /** Begin push delivery: `dispatch(ctx, batch)` runs the Worker's queue handler. */
  start(dispatch) {
    this.#dispatch = dispatch;
    this.#schedule();
  }

  // One delivery at a time across all queues (consumer concurrency 1).
  #exclusive(task) {
    const run = this.#busy.then(task);
    this.#busy = run.catch(() => {});
    this.#track(run);
    return run;
  }

  // Real-time delivery (`make dev`): wake up when the next batch is due by
  // max_batch_size / max_batch_timeout or when a delayed message becomes due.
  #schedule() {
    if (!this.#dispatch) return;
    clearTimeout(this.#timer);
    const now = this.now();
    let wake = Infinity;
    for (const broker of this.#brokers.values()) {
      const at = broker.nextFlush();
      if (at !== undefined) wake = Math.min(wake, at);
    }
    if (wake === Infinity) return;
    this.#timer = setTimeout(() => this.#exclusive(() => this.#tick()), Math.min(Math.max(0, wake - now), MAX_TIMER_MS));
    this.#timer.unref();
  }

  async #tick() {
    for (;;) {
      const now = this.now();
      const broker = [...this.#brokers.values()].find((candidate) => (candidate.nextFlush() ?? Infinity) <= now);
      if (!broker) break;
      await this.#deliver(broker, now);
    }
    this.#schedule();
  }

  /**
   * Move the clock `seconds` ahead, delivering on the way, in due order, every message that
   * falls due (retries included): a batch goes as soon as its first message is due, with
   * the messages due by then (up to max_batch_size); max_batch_timeout is not waited for.
   */
  advance(seconds) {
    return this.#exclusive(async () => {
      const target = this.now() + seconds * 1000;
      const deliveries = [];
      let truncated = false;
      for (;;) {
        let next;
        for (const broker of this.#brokers.values()) {
          const at = broker.nextFlush({ waitForBatch: false });
          if (at !== undefined && at <= target && (next === undefined || at < next.at)) next = { broker, at };
        }
        if (!next) break;
        if (deliveries.length >= MAX_BATCHES_PER_ADVANCE) {
          truncated = true;
          break;
        }
        this.#moveClockTo(next.at);
        deliveries.push(await this.#deliver(next.broker, Math.max(next.at, this.now())));
      }
      this.#moveClockTo(target);
      this.#schedule();
      return { advancedSeconds: seconds, now: new Date(this.now()).toISOString(), deliveries, truncated };
    });
  }

  // Deliver one batch of `broker` (messages due by `at`) and apply the outcome.
  async #deliver(broker, at) {
    const consumer = broker.pushConsumer;
    const records = broker.takeBatch(at);
    const result = new BatchResult();
    const started = performance.now();
    let failure;
    try {
      const messages = records.map((record) => new QueueMessage(record, result));
      const backlog = broker.messages.filter((message) => !broker.inFlight.has(message.id));
      const metrics = {
        backlogCount: backlog.length,
        backlogBytes: backlog.reduce((sum, message) => sum + message.size, 0),
      };
      const ctx = new QueueExecutionContext();
      try {
        await this.#dispatch(ctx, new MessageBatch(broker.name, messages, metrics, result));
      } catch (err) {
        failure = err;
      }
      const waitFailure = await ctx.settle();
      if (waitFailure && !failure) {
        failure = waitFailure;
        console.error(`local-edge: queue ${broker.name}: a waitUntil promise rejected, the batch failed:\n${errorText(waitFailure)}`);
      } else if (failure) {
        console.error(`local-edge: queue ${broker.name}: the queue handler threw:\n${errorText(failure)}`);
      }
    } catch (err) {
      failure = err; // e.g. a stored body that no longer deserializes
      console.error(`local-edge: queue ${broker.name}: cannot deliver:\n${errorText(err)}`);
    }

    const report = {
      queue: broker.name,
      at: new Date(at).toISOString(),
      messages: records.map((record) => ({ id: record.id, attempts: record.attempts + 1 })),
      outcome: failure ? 'exception' : 'ok',
      ...(failure ? { error: shortError(failure) } : {}),
      acked: [],
      retried: [],
      deadLettered: [],
      dropped: [],
    };
    const retryDelay = (id) =>
      (result.retries.has(id) ? result.retries.get(id) : undefined) ?? result.retryAllDelay ?? consumer.retry_delay;
    const finished = new Set();
    for (const record of records) {
      broker.inFlight.delete(record.id);
      record.attempts += 1;
      broker.counters.delivered += 1;
      const { id } = record;
      const ack =
        result.acks.has(id) || (!result.retries.has(id) && (result.ackAll || (!result.retryAll && !failure)));
      if (ack) {
        report.acked.push(id);
        broker.counters.acked += 1;
        finished.add(record);
      } else if (record.attempts <= consumer.max_retries) {
        const delaySeconds = retryDelay(id);
        record.due = this.now() + delaySeconds * 1000;
        report.retried.push({ id, delaySeconds });
        broker.counters.retried += 1;
      } else if (consumer.dead_letter_queue) {
        const target = this.#brokers.get(consumer.dead_letter_queue);
        target.adoptDeadLetter(record);
        broker.deadLettered.push({ id, attempts: record.attempts, deadLetterQueue: target.name, at: new Date(this.now()).toISOString() });
        report.deadLettered.push(id);
        broker.counters.deadLettered += 1;
        finished.add(record);
        console.error(
          `local-edge: queue ${broker.name}: moved message ${id} to dead letter queue ${target.name} after ${record.attempts} failed attempts`,
        );
      } else {
        const { contentType, body } = record;
        broker.dropped.push({ id, attempts: record.attempts, contentType, body, at: new Date(this.now()).toISOString() });
        report.dropped.push(id);
        broker.counters.dropped += 1;
        finished.add(record);
        console.error(
          `local-edge: queue ${broker.name}: dropped message ${id} after ${record.attempts} failed attempts (no dead_letter_queue)`,
        );
      }
    }
    broker.messages = broker.messages.filter((message) => !finished.has(message));
    broker.save();
    const ms = Math.round(performance.now() - started);
    console.log(
      `QUEUE ${broker.name} ${records.length} message(s): ${report.acked.length} acked, ${report.retried.length} retried, ` +
        `${report.deadLettered.length + report.dropped.length} given up ${ms}ms`,
    );
    return report;
  }

  snapshot() {
    const now = this.now();
    const queues = {};
    for (const [name, broker] of this.#brokers) queues[name] = broker.snapshot(now);
    return { now: new Date(now).toISOString(), offsetSeconds: this.#offsetMs / 1000, queues };
  }

  /** The local-only control endpoints; undefined when `request` is not for one of them. */
  async control(request) {
    const url = new URL(request.url);
    if (url.pathname !== CONTROL_PATH && !url.pathname.startsWith(`${CONTROL_PATH}/`)) return undefined;
    if (url.pathname === CONTROL_PATH) {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return jsonResponse(405, { error: `${CONTROL_PATH} answers GET, not ${request.method}` });
      }
      return jsonResponse(200, this.snapshot());
    }
    if (url.pathname === `${CONTROL_PATH}/advance`) {
      if (request.method !== 'POST') {
        return jsonResponse(405, { error: `${CONTROL_PATH}/advance answers POST, not ${request.method}` });
      }
      const text = url.searchParams.get('seconds');
      const seconds = /^\d+(\.\d+)?$/.test(text ?? '') ? Number(text) : NaN;
      if (!Number.isFinite(seconds)) {
        return jsonResponse(400, {
          error: `seconds must be a non-negative number of seconds, e.g. ?seconds=900, got ${text === null ? 'nothing' : JSON.stringify(text)}`,
        });
      }
      if (!this.#dispatch) return jsonResponse(503, { error: 'the Worker is not loaded yet' });
      return jsonResponse(200, await this.advance(seconds));
    }
    if (url.pathname === `${CONTROL_PATH}/send`) {
      // Queues deliver at least once: tests enqueue a message again (a duplicate) through here.
      if (request.method !== 'POST') {
        return jsonResponse(405, { error: `${CONTROL_PATH}/send answers POST, not ${request.method}` });
      }
      const broker = this.#brokers.get(url.searchParams.get('queue') ?? '');
      if (!broker) {
        return jsonResponse(404, { error: `no queue ${JSON.stringify(url.searchParams.get('queue'))}; known: ${[...this.#brokers.keys()].join(', ')}` });
      }
      let body;
      try {
        body = JSON.parse(await request.text());
      } catch (err) {
        return jsonResponse(400, { error: `the request body must be the message as JSON: ${err.message}` });
      }
      const bytes = serialize(body, 'json');
      broker.enqueue([{ contentType: 'json', bytes, delay: 0 }]);
      return jsonResponse(200, { queued: broker.name });
    }
    return jsonResponse(404, { error: `no such local-edge endpoint: ${url.pathname} (try GET ${CONTROL_PATH})` });
  }
}
