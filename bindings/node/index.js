'use strict';
// Report to monitor from Node.js (README.md): the C++ API's model, lines of
// the agent's native form (docs/socket.md) batched into UDP datagrams to the
// local monitor-agent's UDP listener. Node has no Unix datagram sockets, so
// UDP on loopback it is. Nothing on the report path blocks or throws.
const dgram = require('node:dgram');

const Op = Object.freeze({ SUM: 1, MAX: 2, MIN: 4, AVG: 8, FIRST: 16, LAST: 32, COUNT: 64, HIST: 128 });
const Status = Object.freeze({ OK: 'ok', BAD_NAME: 'bad_name', BAD_OPS: 'bad_ops', BAD_VALUE: 'bad_value', CLOSED: 'closed' });
const MAX_NAME_BYTES = 64;
const NAME = /^[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function isValidName(name) {
  return typeof name === 'string' && name.length <= MAX_NAME_BYTES && NAME.test(name);
}

function nameError(what, name) {
  return `${what} name "${name}" is not valid: it must be dot-separated parts that each start with a capital ` +
    'letter followed by letters and digits, at least two parts, at most 64 bytes (e.g. Shop.Api)';
}

function defaultAddress() {
  return process.env.MONITOR_UDP || '127.0.0.1:8125';
}

// An int64 as text, or null: integers as they are, other finite numbers rounded.
function valueText(value) {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    const rounded = Math.round(value);
    if (Number.isSafeInteger(rounded)) return String(rounded);
    value = BigInt(rounded);
  }
  if (typeof value === 'bigint') return value >= INT64_MIN && value <= INT64_MAX ? value.toString() : null;
  return null;
}

function serverText(server) {
  if (typeof server === 'number' && Number.isSafeInteger(server) && server >= 0) return String(server);
  if (typeof server === 'bigint' && server >= 0n && server <= INT64_MAX) return server.toString();
  return null;
}

const opsOk = (ops) => Number.isInteger(ops) && ops > 0 && ops <= 0xff;
const clients = new Set();
let hooked = false;

class Attr {
  constructor(client, service, attr, ops) {
    this._client = client;
    this.error = !isValidName(service) ? nameError('service', service)
      : !isValidName(attr) ? nameError('attr', attr)
        : !opsOk(ops) ? `ops ${ops}: combine Op values (1 to 255)` : null;
    this._status = this.error === null ? Status.OK : this.error.startsWith('ops') ? Status.BAD_OPS : Status.BAD_NAME;
    this._prefix = `${service} ${attr} `;
    this._suffix = ` ${ops} 0\n`;
  }

  get valid() { return this.error === null; }

  /** One report of `value` for `serverId` (default: the client's). Never throws. */
  report(value, serverId) {
    const client = this._client;
    if (this._status !== Status.OK) return client._refuse(this._status);
    const text = valueText(value);
    const server = serverText(serverId === undefined ? client.serverId : serverId);
    if (text === null || server === null) return client._refuse(Status.BAD_VALUE);
    return client._append(this._prefix + server + ' ' + text + this._suffix);
  }
}

class Client {
  constructor(options = {}) {
    const address = options.address || defaultAddress();
    const colon = address.lastIndexOf(':');
    this.host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    this.port = Number(address.slice(colon + 1));
    this.serverId = options.serverId ?? 0;
    this.maxDatagram = Math.max(1024, Math.min(options.maxDatagram ?? 60000, 65000));
    this.maxPendingBytes = options.maxPendingBytes ?? 4 << 20;
    this._lines = [];
    this._bytes = 0;
    this._closed = false;
    this._stats = { linesSent: 0, datagramsSent: 0, droppedBacklog: 0, droppedError: 0, badNames: 0, badOps: 0,
      badValues: 0 };
    this._socket = dgram.createSocket(this.host.includes(':') ? 'udp6' : 'udp4');
    this._socket.on('error', () => {});  // each send's own callback counts its failure
    this._socket.unref();  // monitoring never keeps a process alive
    this._timer = setInterval(() => this.flush(), options.flushIntervalMs ?? 50);
    this._timer.unref();
    clients.add(this);
    if (!hooked) {
      hooked = true;
      // A process that ends by running out of work sends what it holds first.
      process.on('beforeExit', () => { for (const c of clients) c.flush(); });
      // process.exit() skips beforeExit and nothing can be sent any more: what
      // never reached the agent is said, since nobody can read stats() after.
      process.on('exit', () => { for (const c of clients) c._sayWhatWasLost(); });
    }
  }

  attr(service, attr, ops) { return new Attr(this, service, attr, ops); }

  /** monitor(service, attr, server_id, value, op_mask) of the C++ API. Never throws. */
  report(service, attr, serverId, value, ops) {
    if (!isValidName(service) || !isValidName(attr)) return this._refuse(Status.BAD_NAME);
    if (!opsOk(ops)) return this._refuse(Status.BAD_OPS);
    const text = valueText(value);
    const server = serverText(serverId);
    if (text === null || server === null) return this._refuse(Status.BAD_VALUE);
    return this._append(`${service} ${attr} ${server} ${text} ${ops} 0\n`);
  }

  _refuse(status) {
    if (status === Status.BAD_NAME) this._stats.badNames++;
    else if (status === Status.BAD_OPS) this._stats.badOps++;
    else if (status === Status.BAD_VALUE) this._stats.badValues++;
    return status;
  }

  _append(line) {
    if (this._closed) return Status.CLOSED;
    const size = Buffer.byteLength(line);
    if (this._bytes + size > this.maxDatagram) this.flush();
    this._lines.push(line);
    this._bytes += size;
    return Status.OK;
  }

  /** Hands what is batched to the socket; returns a promise of its sending. Never throws. */
  flush() {
    if (this._lines.length === 0) return Promise.resolve();
    const lines = this._lines.length;
    const data = Buffer.from(this._lines.join(''));
    this._lines = [];
    this._bytes = 0;
    // What the kernel would not take yet waits in libuv's queue; past the bound new datagrams are dropped.
    if (this._socket.getSendQueueSize() + data.length > this.maxPendingBytes) {
      this._stats.droppedBacklog += lines;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      try {
        this._socket.send(data, this.port, this.host, (error) => {
          if (error) this._stats.droppedError += lines;
          else {
            this._stats.linesSent += lines;
            this._stats.datagramsSent++;
          }
          resolve();
        });
      } catch (error) {
        this._stats.droppedError += lines;
        resolve();
      }
    });
  }

  _sayWhatWasLost() {
    const { droppedBacklog, droppedError, pendingLines } = this.stats();
    const lost = droppedBacklog + droppedError + pendingLines;
    if (lost === 0) return;
    process.stderr.write(`monitor-client: ${lost} reports never reached the agent at ${this.host}:${this.port} ` +
      `(${pendingLines} still batched at exit, ${droppedBacklog} over the send backlog, ${droppedError} send errors)\n`);
  }

  /** Counters since the client was made. */
  stats() { return { ...this._stats, pendingLines: this._lines.length }; }

  /** Flushes, waits for the sends, and closes; later reports return Status.CLOSED. */
  async close() {
    if (this._closed) return;
    await this.flush();
    this._closed = true;
    clearInterval(this._timer);
    clients.delete(this);
    await new Promise((resolve) => this._socket.close(resolve));
  }
}

module.exports = { Client, Attr, Op, Status, isValidName, nameError, defaultAddress };
