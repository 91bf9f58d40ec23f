// hot-shots, as a Node service uses it, for tests/statsd/test_statsd_clients.py:
//   node send.js udp PORT | node send.js uds PATH
// DD_SERVICE, DD_ENV and DD_VERSION come from the environment (hot-shots
// turns them into service:, env: and version: tags).
'use strict';
const StatsD = require('hot-shots');

const [mode, target] = process.argv.slice(2);
const options = mode === 'udp'
  ? { host: '127.0.0.1', port: Number(target), protocol: 'udp' }
  : { protocol: 'uds', path: target };
const client = new StatsD({
  ...options,
  maxBufferSize: 8000,  // batched, as production services configure it
  bufferFlushInterval: 50,
  errorHandler: (err) => { console.error(err); process.exitCode = 1; },
});

for (let i = 0; i < 300; i++) {
  client.increment('orders.placed');
  client.increment('orders.items', 3, 0.5);
  client.increment('http.2xx.requests', 1, 0.25, ['server:3']);
  client.timing('request.latency', 10 + i * 0.5, 0.5);
  client.histogram('payload.bytes', 100 + i, 0.25);
  client.distribution('render.time', i % 50);
}
client.gauge('queue.depth', 10);
client.gaugeDelta('queue.depth', 5);
client.gaugeDelta('queue.depth', -20);
for (const member of ['alice', 'bob', 'alice', 'carol', 'bob']) client.set('users.seen', member);
client.event('deploy', 'version 1.4.2 is out');
client.check('checkout.up', client.CHECKS.OK);
client.close((err) => {
  if (err) {
    console.error(err);
    process.exitCode = 1;
  }
});
