// Records a V8 CPU profile of a Worker's isolate through wrangler's inspector proxy (the
// DevTools protocol): `node cpuprofile.mjs PORT OUT.cpuprofile`; prints STARTED once sampling
// runs, stops and writes the profile when its stdin closes. Used by bench/peers/profile.py.
import fs from 'node:fs';

const [port, out] = process.argv.slice(2);
const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
// wrangler's proxy admits DevTools only from a local Origin
const ws = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { Origin: 'http://localhost' } });
const keepAlive = setInterval(() => {}, 1000);
let lastId = 0;
const waiting = new Map();
const call = (method, params = {}) => new Promise((resolve) => {
  const id = ++lastId;
  waiting.set(id, resolve);
  ws.send(JSON.stringify({ id, method, params }));
});
ws.onmessage = (event) => {
  const message = JSON.parse(event.data);
  if (message.id && waiting.has(message.id)) {
    waiting.get(message.id)(message);
    waiting.delete(message.id);
  }
};
ws.onerror = (event) => { console.error('inspector:', event.message); process.exit(1); };
await new Promise((resolve) => { ws.onopen = resolve; });
await call('Profiler.enable');
await call('Profiler.setSamplingInterval', { interval: 50 }); // microseconds
await call('Profiler.start');
console.log('STARTED');
await new Promise((resolve) => { process.stdin.on('end', resolve); process.stdin.resume(); });
const stopped = await call('Profiler.stop');
fs.writeFileSync(out, JSON.stringify(stopped.result.profile));
clearInterval(keepAlive);
ws.close();
process.exit(0);
