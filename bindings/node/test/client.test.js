'use strict';
// monitor-client against a real monitor-agent (MONITOR_AGENT names its binary;
// ctest sets it to the build's) listening on UDP: its per-second aggregates
// equal what was sent; bad input is a status; a process that ends delivers
// what it held.
const test = require('node:test');
const assert = require('node:assert');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { Client, Op, Status, nameError } = require('..');

function freeUdpPort() {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(what, timeoutMs, predicate) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what} did not happen within ${timeoutMs / 1000} s`);
}

async function startAgent(t) {
  const binary = process.env.MONITOR_AGENT;
  assert.ok(binary, 'set MONITOR_AGENT to a monitor-agent binary (ctest does)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'monitor-node-'));
  const port = await freeUdpPort();
  const ring = `/mt-node-${process.pid}-${port}`;
  const output = path.join(dir, 'aggregates.jsonl');
  const log = fs.openSync(path.join(dir, 'agent.log'), 'w');
  const agent = spawn(binary, ['--ring', ring, '--socket', '', '--udp', `127.0.0.1:${port}`, '--output', output,
    '--journal', 'none', '--spool-dir', path.join(dir, 'spool'), '--no-self-metrics', '--no-host-metrics'], { stdio: ['ignore', 'ignore', log] });
  t.after(() => {
    agent.kill('SIGTERM');
    try { fs.unlinkSync('/dev/shm' + ring); } catch (e) { /* gone already */ }
  });
  await waitFor("the agent's UDP listener", 10000,
    () => fs.readFileSync(path.join(dir, 'agent.log'), 'utf8').includes('listening for lines on UDP'));
  return {
    address: `127.0.0.1:${port}`,
    totals() {
      const out = new Map();
      if (!fs.existsSync(output)) return out;
      for (const line of fs.readFileSync(output, 'utf8').split('\n')) {
        if (!line) continue;
        const row = JSON.parse(line);
        const key = `${row.attr} ${row.server_id} ${row.op}`;
        out.set(key, (out.get(key) || 0) + (row.op === 'HIST' ? row.count : row.value));
      }
      return out;
    },
  };
}

test('bad input is a status, never an exception', async () => {
  const client = new Client({ address: '127.0.0.1:9' });
  assert.strictEqual(client.report('shop.api', 'Orders.Placed', 1, 1, Op.SUM), Status.BAD_NAME);
  assert.strictEqual(client.report('Shop.Api', 'Orders', 1, 1, Op.SUM), Status.BAD_NAME);
  assert.strictEqual(client.report('A.' + 'B'.repeat(63), 'Orders.Placed', 1, 1, Op.SUM), Status.BAD_NAME);
  assert.strictEqual(client.report('Shop.Api', 'Orders.Placed', 1, 1, 0), Status.BAD_OPS);
  assert.strictEqual(client.report('Shop.Api', 'Orders.Placed', 1, 1, 256), Status.BAD_OPS);
  for (const value of [NaN, Infinity, 2n ** 63n, '3', null, undefined, {}]) {
    assert.strictEqual(client.report('Shop.Api', 'Orders.Placed', 1, value, Op.SUM), Status.BAD_VALUE, String(value));
  }
  for (const server of [-1, 1.5, '7', null]) {
    assert.strictEqual(client.report('Shop.Api', 'Orders.Placed', server, 1, Op.SUM), Status.BAD_VALUE, String(server));
  }
  const handle = client.attr('Shop.Api', 'orders', Op.SUM);
  assert.strictEqual(handle.valid, false);
  assert.strictEqual(handle.error, nameError('attr', 'orders'));
  assert.strictEqual(handle.report(1), Status.BAD_NAME);
  assert.deepStrictEqual([client.stats().badNames, client.stats().badOps, client.stats().badValues], [4, 2, 11]);
  await client.close();
  assert.strictEqual(client.report('Shop.Api', 'Orders.Placed', 1, 1, Op.SUM), Status.CLOSED);
});

test("the agent's aggregates equal what was sent", async (t) => {
  const agent = await startAgent(t);
  const client = new Client({ address: agent.address, serverId: 7, maxDatagram: 4000 });
  const orders = client.attr('Node.Test', 'Orders.Placed', Op.SUM | Op.COUNT | Op.MAX);
  const latency = client.attr('Node.Test', 'Latency.Us', Op.HIST);
  const want = new Map();
  const add = (key, v) => want.set(key, (want.get(key) || 0) + v);
  for (let i = 0; i < 3000; i++) {
    const server = 1 + (i % 3);
    assert.strictEqual(orders.report(i % 11, server), Status.OK);
    add(`Orders.Placed ${server} SUM`, i % 11);
    add(`Orders.Placed ${server} COUNT`, 1);
  }
  for (let i = 0; i < 500; i++) latency.report(100 + i * 3.4);  // rounded
  want.set('Latency.Us 7 HIST', 500);
  client.report('Node.Test', 'Queue.Depth', 2n, -5n, Op.SUM);
  want.set('Queue.Depth 2 SUM', -5);
  await client.flush();
  await waitFor("the agent's aggregates to reach what was sent", 15000, () => {
    const got = agent.totals();
    return [...want].every(([k, v]) => got.get(k) === v);
  });
  const stats = client.stats();
  assert.strictEqual(stats.linesSent, 3501);
  assert.strictEqual(stats.droppedBacklog + stats.droppedError, 0);
  await client.close();
});

test('a process that ends delivers what it held', async (t) => {
  const agent = await startAgent(t);
  const script = `
    const { Client, Op } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const client = new Client({ address: ${JSON.stringify(agent.address)}, flushIntervalMs: 3600000 });
    for (let i = 0; i < 250; i++) client.report('Node.Exit', 'Lines.Count', 1, 1, Op.SUM);
    // no flush, no close: the end of the event loop sends them`;
  const run = spawnSync(process.execPath, ['-e', script], { timeout: 30000 });
  assert.strictEqual(run.status, 0, String(run.stderr));
  await waitFor('the exiting process\'s reports', 15000, () => agent.totals().get('Lines.Count 1 SUM') === 250);
});

test('what a process.exit() cut off is said on stderr', async () => {
  // Issue 23: reports still batched when the process called exit() were lost without a word.
  const port = await freeUdpPort();
  const script = `
    const { Client, Op } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const client = new Client({ address: '127.0.0.1:${port}', flushIntervalMs: 3600000 });
    for (let i = 0; i < 7; i++) client.report('Node.Exit', 'Lines.Count', 1, 1, Op.SUM);
    process.exit(0);`;
  const run = spawnSync(process.execPath, ['-e', script], { timeout: 30000 });
  assert.strictEqual(run.status, 0, String(run.stderr));
  assert.match(String(run.stderr),
    new RegExp(`monitor-client: 7 reports never reached the agent at 127.0.0.1:${port} \\(7 still batched at exit`));
});
