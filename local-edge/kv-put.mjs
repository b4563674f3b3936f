// Writes keys into the local edge runtime's KV store (the same Miniflare storage server.mjs
// uses), for `nudge rules publish`. Usage:
//   node local-edge/kv-put.mjs --persist-to DIR --binding NUDGE_KV KEY=FILE [KEY=FILE ...]
// Keys are written in the order given, so a pointer can be moved after the value it names.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { KvNamespace } from './kv.mjs';

const { values, positionals } = parseArgs({
  options: { 'persist-to': { type: 'string' }, binding: { type: 'string', default: 'NUDGE_KV' } },
  allowPositionals: true,
});
if (!values['persist-to'] || positionals.length === 0) {
  console.error('usage: kv-put.mjs --persist-to DIR [--binding NAME] KEY=FILE ...');
  process.exit(2);
}
const kv = new KvNamespace(path.join(path.resolve(values['persist-to']), 'kv', values.binding));
for (const pair of positionals) {
  const at = pair.indexOf('=');
  if (at <= 0) {
    console.error(`not KEY=FILE: ${pair}`);
    process.exit(2);
  }
  const key = pair.slice(0, at);
  await kv.put(key, new Uint8Array(readFileSync(pair.slice(at + 1))));
  console.log(`put ${key}`);
}
