import { ImmMap, type Store, type XsNode } from '../../store/index.js';
import type { Daemon } from '../daemon.js';

/** Upper bounds of the latency histograms, in seconds (Prometheus `le`). */
const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

class Histogram {
  /** Per bucket, the observations that fell in it (not cumulative: `render` sums them). */
  readonly counts = new Array<number>(BUCKETS.length).fill(0);
  count = 0;
  sum = 0;

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    // One increment per observation (this runs on every HTTP request); beyond the last bound
    // only `count` grows, which is the +Inf bucket.
    for (let i = 0; i < BUCKETS.length; i++) {
      if (seconds <= BUCKETS[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** The counters of one route and method: requests by status, and their latency. */
class RouteStats {
  readonly byStatus = new Map<number, number>();
  readonly latency = new Histogram();
}

/**
 * The gateway's counters, and `/metrics` in the Prometheus text format (version 0.0.4). Only the
 * gateway's own traffic is counted per request here (the Unix sockets' hot path stays untouched);
 * daemon-wide figures — requests, connections, watches, commits — are read from the daemon's
 * state at scrape time. Scraping reads state only: it is not activity.
 */
export class Metrics {
  /**
   * route -> method -> counters. Nested maps keyed by the strings fastify already holds, so that
   * counting a request (on every request's path) builds no key string.
   */
  private readonly http = new Map<string, Map<string, RouteStats>>();
  /** op name -> outcome (OK or the error) -> count, for every wire request the gateway made. */
  private readonly ops = new Map<string, Map<string, number>>();
  wsSlowCloses = 0;
  /** Bytes queued in WebSockets not yet taken by the kernel (set by the WebSocket endpoint). */
  wsBuffered: () => number = () => 0;
  private bytesCache: { root: XsNode; perDomain: ImmMap<number, number> } | undefined;

  constructor(private readonly daemon: Daemon) {}

  /** `request(route, method, status, seconds)` counts one HTTP request and its latency. */
  request(route: string, method: string, status: number, seconds: number): void {
    let methods = this.http.get(route);
    if (methods === undefined) this.http.set(route, (methods = new Map()));
    let stats = methods.get(method);
    if (stats === undefined) methods.set(method, (stats = new RouteStats()));
    stats.byStatus.set(status, (stats.byStatus.get(status) ?? 0) + 1);
    stats.latency.observe(seconds);
  }

  /** `op(name, outcome)` counts one request the gateway ran on the daemon. */
  op(name: string, outcome: string): void {
    let outcomes = this.ops.get(name);
    if (outcomes === undefined) this.ops.set(name, (outcomes = new Map()));
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }

  /** `render()` is the scrape body. */
  render(): string {
    const d = this.daemon;
    const out: string[] = [];
    const metric = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    metric('nxenstored_http_requests_total', 'counter', 'HTTP requests to the gateway by route, method and status.');
    for (const [route, methods] of this.http) {
      for (const [method, stats] of methods) {
        for (const [status, n] of stats.byStatus) {
          out.push(`nxenstored_http_requests_total{route=${q(route)},method=${q(method)},status="${status}"} ${n}`);
        }
      }
    }
    metric('nxenstored_http_request_duration_seconds', 'histogram', 'HTTP request latency by route and method.');
    for (const [route, methods] of this.http) {
      for (const [method, { latency: h }] of methods) {
        const l = `route=${q(route)},method=${q(method)}`;
        let cumulative = 0;
        BUCKETS.forEach((b, i) => {
          cumulative += h.counts[i]!;
          out.push(`nxenstored_http_request_duration_seconds_bucket{${l},le="${b}"} ${cumulative}`);
        });
        out.push(`nxenstored_http_request_duration_seconds_bucket{${l},le="+Inf"} ${h.count}`);
        out.push(`nxenstored_http_request_duration_seconds_sum{${l}} ${h.sum}`);
        out.push(`nxenstored_http_request_duration_seconds_count{${l}} ${h.count}`);
      }
    }
    metric('nxenstored_gateway_ops_total', 'counter', 'Xenstore requests made through the gateway (HTTP and JSON WebSocket) by type and outcome.');
    for (const [op, outcomes] of this.ops) {
      for (const [outcome, n] of outcomes) out.push(`nxenstored_gateway_ops_total{op=${q(op)},outcome=${q(outcome)}} ${n}`);
    }
    metric('nxenstored_requests_total', 'counter', 'Xenstore requests answered, every transport.');
    out.push(`nxenstored_requests_total ${d.stats.requests}`);

    const kinds = new Map<string, number>();
    let pendingBytes = 0;
    let dropped = 0;
    for (const c of d.connections) {
      kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
      pendingBytes += c.socket.writableLength;
      dropped += c.droppedEvents;
    }
    metric('nxenstored_connections', 'gauge', 'Open connections by kind.');
    for (const kind of ['socket', 'socket_ro', 'domain', 'http', 'ws', 'ws-binary']) {
      out.push(`nxenstored_connections{kind="${kind}"} ${kinds.get(kind) ?? 0}`);
    }
    metric('nxenstored_watches', 'gauge', 'Registered watches.');
    out.push(`nxenstored_watches ${d.watches.count()}`);
    metric('nxenstored_pending_output_bytes', 'gauge', 'Replies and watch events queued for clients that have not read them yet, by transport.');
    out.push(`nxenstored_pending_output_bytes{transport="socket"} ${pendingBytes}`);
    out.push(`nxenstored_pending_output_bytes{transport="websocket"} ${this.wsBuffered()}`);
    metric('nxenstored_watch_events_dropped', 'gauge', 'Watch events dropped for open connections that did not read them.');
    out.push(`nxenstored_watch_events_dropped ${dropped}`);
    metric('nxenstored_ws_slow_consumer_closes_total', 'counter', 'WebSocket clients closed (1013) for not reading.');
    out.push(`nxenstored_ws_slow_consumer_closes_total ${this.wsSlowCloses}`);

    metric('nxenstored_transactions_committed_total', 'counter', 'Committed transactions by commit path.');
    for (const [path, n] of Object.entries(d.stats.commits)) out.push(`nxenstored_transactions_committed_total{path=${q(path)}} ${n}`);
    metric('nxenstored_transactions_conflicted_total', 'counter', 'Transactions that ended EAGAIN.');
    out.push(`nxenstored_transactions_conflicted_total ${d.stats.conflicts}`);
    metric('nxenstored_store_generation', 'gauge', 'Versions committed since start.');
    out.push(`nxenstored_store_generation ${d.store.generation}`);

    metric('nxenstored_domain_nodes', 'gauge', 'Nodes owned per domain (the quota table).');
    for (const [domid, n] of d.store.quota) out.push(`nxenstored_domain_nodes{domid="${domid}"} ${n}`);
    metric('nxenstored_domain_value_bytes', 'gauge', 'Bytes of values in nodes owned per domain.');
    for (const [domid, n] of this.bytesPerDomain(d.store)) out.push(`nxenstored_domain_value_bytes{domid="${domid}"} ${n}`);
    return `${out.join('\n')}\n`;
  }

  /**
   * Value bytes per owner. The quota table counts nodes only, so this walks the tree, but only
   * when the root changed since the last scrape (versions are immutable, `===` means unchanged).
   */
  private bytesPerDomain(store: Store): ImmMap<number, number> {
    if (this.bytesCache?.root === store.root) return this.bytesCache.perDomain;
    const counts = new Map<number, number>();
    const stack: XsNode[] = [store.root];
    while (stack.length > 0) {
      const n = stack.pop()!;
      const owner = n.perms[0]!.domid;
      counts.set(owner, (counts.get(owner) ?? 0) + n.value.length);
      for (const child of n.children.values()) stack.push(child);
    }
    const perDomain = ImmMap(counts).sortBy((_v, k) => k);
    this.bytesCache = { root: store.root, perDomain };
    return perDomain;
  }
}

/** A label value, quoted and escaped as the text format asks. */
function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}
