#!/usr/bin/env node
'use strict';
// Issue 11's Node.js figure: reports per second from one event loop, with
// bindings/node into a real monitor-agent (--udp) that drains them, beside
// hot-shots (npm, Node's popular statsd client, its default: a datagram per
// metric) sending the same reports to a UDP socket another process drains.
// Each timed to the last datagram handed to the kernel (close()).
//
//   cd bench/node && npm ci && node binding_node_bench.js [BUILD_DIR] [REPORTS]
const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const StatsD = require('hot-shots');
const { Client, Op } = require('../../bindings/node');

const build = path.resolve(process.argv[2] || '../../build');
const reports = Number(process.argv[3] || 500000);

function freePort() {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'monitor-binding-node.'));
  const agentPort = await freePort(), sinkPort = await freePort();
  const ring = `/monitor-binding-node-${process.pid}`;
  const agent = spawn(`${build}/agent/monitor-agent`, ['--ring', ring, '--socket', '', '--udp', `127.0.0.1:${agentPort}`,
    '--output', '/dev/null', '--journal', 'none', '--spool-dir', path.join(dir, 'spool'), '--no-self-metrics'],
  { stdio: 'ignore' });
  const sink = spawn(process.execPath, ['-e', `const s = require('node:dgram').createSocket('udp4');
    s.on('message', () => {}); s.bind(${sinkPort}, '127.0.0.1');`], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  try {
    const ours = async () => {
      const client = new Client({ address: `127.0.0.1:${agentPort}`, serverId: 7 });
      const orders = client.attr('Bench.Node', 'Orders.Placed', Op.SUM);
      const started = process.hrtime.bigint();
      for (let i = 0; i < reports; i++) orders.report(i & 7);
      await client.close();
      return [Number(process.hrtime.bigint() - started) / 1e9, client.stats()];
    };
    const peer = async () => {
      const client = new StatsD({ host: '127.0.0.1', port: sinkPort, errorHandler: () => {} });
      const started = process.hrtime.bigint();
      for (let i = 0; i < reports; i++) client.increment('bench.node.orders.placed', i & 7);
      await new Promise((resolve) => client.close(resolve));
      return Number(process.hrtime.bigint() - started) / 1e9;
    };
    let bestOurs = Infinity, bestPeer = Infinity, stats;
    for (let run = 0; run < 3; run++) {
      const [t, s] = await ours();
      bestOurs = Math.min(bestOurs, t);
      stats = s;
      bestPeer = Math.min(bestPeer, await peer());
    }
    const fmt = (x) => Math.round(x).toLocaleString('en');
    console.log(`${'figure'.padEnd(62)} ${'ours'.padStart(12)} ${'peer'.padStart(12)} ${'ratio'.padStart(7)}`);
    console.log(`${`Node.js, one event loop: reports/s (best of 3, ${reports} reports)`.padEnd(62)} ` +
      `${fmt(reports / bestOurs).padStart(12)} ${fmt(reports / bestPeer).padStart(12)} ` +
      `${(bestPeer / bestOurs).toFixed(2).padStart(6)}x   (goal >= 2x; peer: hot-shots increment over UDP)`);
    console.log(`  ours, last run: ${JSON.stringify(stats)}`);
  } finally {
    agent.kill('SIGTERM');
    sink.kill('SIGTERM');
    try { fs.unlinkSync('/dev/shm' + ring); } catch (e) { /* gone */ }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
