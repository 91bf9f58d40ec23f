/** The ops of the data model; combine with |. */
export declare const Op: Readonly<{ SUM: 1; MAX: 2; MIN: 4; AVG: 8; FIRST: 16; LAST: 32; COUNT: 64; HIST: 128 }>;

/** What became of one report. Only OK means it is on its way. */
export declare const Status: Readonly<{
  OK: 'ok'; BAD_NAME: 'bad_name'; BAD_OPS: 'bad_ops'; BAD_VALUE: 'bad_value'; CLOSED: 'closed';
}>;
export type StatusValue = (typeof Status)[keyof typeof Status];

export interface ClientOptions {
  /** The agent's --udp listener, "host:port"; default $MONITOR_UDP or 127.0.0.1:8125. */
  address?: string;
  /** The server id of Attr.report without one; default 0. */
  serverId?: number | bigint;
  /** Bytes per datagram; default 60000 (1024 to 65000). */
  maxDatagram?: number;
  /** How often batched lines are sent; default 50 ms. */
  flushIntervalMs?: number;
  /** Bytes waiting in the socket's send queue before new datagrams are dropped; default 4 MiB. */
  maxPendingBytes?: number;
}

export interface ClientStats {
  linesSent: number;
  datagramsSent: number;
  droppedBacklog: number;
  droppedError: number;
  badNames: number;
  badOps: number;
  badValues: number;
  pendingLines: number;
}

export declare class Attr {
  /** monitorctl's message when a name or the ops are bad; null otherwise. */
  readonly error: string | null;
  readonly valid: boolean;
  /** One report; never throws. Numbers are rounded to integers; bigints are taken as int64. */
  report(value: number | bigint, serverId?: number | bigint): StatusValue;
}

export declare class Client {
  constructor(options?: ClientOptions);
  attr(service: string, attr: string, ops: number): Attr;
  /** monitor(service, attr, server_id, value, op_mask) of the C++ API; never throws. */
  report(service: string, attr: string, serverId: number | bigint, value: number | bigint, ops: number): StatusValue;
  /** Hands what is batched to the socket; resolves once it is sent (or failed, counted). */
  flush(): Promise<void>;
  stats(): ClientStats;
  /** Flushes, waits for the sends, closes the socket. */
  close(): Promise<void>;
}

export declare function isValidName(name: string): boolean;
export declare function nameError(what: string, name: string): string;
export declare function defaultAddress(): string;
