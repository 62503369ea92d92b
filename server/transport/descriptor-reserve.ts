import { readFileSync } from 'node:fs';
import type { Log } from '../logger.js';

/**
 * The process's file descriptors, split so that no guest can lock dom0 out (issue 17): every
 * connection to a guest socket holds a descriptor, and when they ran out the privileged socket
 * could no longer accept and INTRODUCE could not open a new domain's socket (EMFILE).
 *
 * Of the soft RLIMIT_NOFILE (`ulimit -n`), `reserve` descriptors are never given to guests: they
 * hold the daemon's own files (about 20: Node's event loop and threads, stdio, the listening
 * sockets, logs, the data directory), `socket_ro` connections (a quarter of the reserve at most, so
 * that read-only clients cannot take it either) and dom0's connections (the rest). Guests
 * together may hold the rest, less one per introduced domain (its listening socket) and less the
 * HTTP gateway's share: any local user can connect to the gateway's port, so its connections
 * are capped (`--http-connections`) and taken from the guests' side, never from the reserve.
 * Refusing a
 * connection is accept-and-close, O(1), and is not logged one line each: refusals are counted and
 * summarised at most once per `interval` (a flood of connections must not become a flood of log).
 */
export class DescriptorReserve {
  private refusedTotal = 0;
  private refusedSince = 0;
  private readonly byWho = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** Connections the HTTP gateway may hold (0 without one). */
  private gatewayShare = 0;

  constructor(
    /** The soft RLIMIT_NOFILE; Infinity when unknown or unlimited. */
    readonly limit: number,
    /** Descriptors kept from guests. */
    readonly reserve: number,
    private readonly log: Log,
    private readonly interval = 10_000,
  ) {}

  /** Connections guests may hold together with `domains` introduced (each listens on one). */
  guestCap(domains: number): number {
    return this.limit - this.reserve - this.gatewayShare - domains;
  }

  /**
   * The gateway's share unless `--http-connections` says otherwise: 256, or a quarter of the
   * descriptors outside the reserve when that is lower (at least 1).
   */
  defaultGatewayShare(): number {
    return Math.max(1, Math.min(256, Math.floor((this.limit - this.reserve) / 4)));
  }

  /** `setGatewayShare(n)`: the gateway now holds up to `n` connections (0 when it stops). */
  setGatewayShare(n: number): void {
    this.gatewayShare = n;
  }

  /** True while guests, holding `sockets` connections, may take one more with `domains` introduced. */
  guestRoom(sockets: number, domains: number): boolean {
    return sockets < this.guestCap(domains);
  }

  /** True while `socket_ro`, holding `sockets` connections, may take one more (a quarter of the reserve). */
  readOnlyRoom(sockets: number): boolean {
    return sockets < Math.floor(this.reserve / 4);
  }

  /** Connections refused since the daemon started. */
  get refused(): number {
    return this.refusedTotal;
  }

  /**
   * `refuse(who, why)` counts one refused connection (`who`: `domain 5`, `socket_ro`). The first
   * of a quiet period is logged at once, with why; the rest are summarised when the interval ends.
   */
  refuse(who: string, why: string): void {
    this.refusedTotal++;
    this.byWho.set(who, (this.byWho.get(who) ?? 0) + 1);
    if (this.timer !== undefined) {
      this.refusedSince++;
      return;
    }
    this.log.warn({ who, why }, `connection refused; further refusals are counted and logged every ${this.interval / 1000} s`);
    this.byWho.clear();
    this.timer = setTimeout(() => this.summarise(), this.interval).unref();
  }

  private summarise(): void {
    this.timer = undefined;
    if (this.refusedSince === 0) return;
    this.log.warn({ refused: this.refusedSince, by: Object.fromEntries(this.byWho), total: this.refusedTotal }, 'connections refused');
    this.refusedSince = 0;
    this.byWho.clear();
    // Still refusing: the next summary comes one interval later, not at the next refusal.
    this.timer = setTimeout(() => this.summarise(), this.interval).unref();
  }

  /** Stops the summary timer (daemon shutdown). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Descriptors kept from guests unless configured: 256, or a quarter of a lower limit. */
export function defaultReserve(limit: number): number {
  return Math.min(256, Math.floor(limit / 4));
}

/**
 * `openFileLimit(limits)` is the soft "Max open files" of `/proc/self/limits` (Node has no
 * getrlimit); Infinity when it says unlimited or cannot be read (not Linux).
 */
export function openFileLimit(limits?: string): number {
  let text = limits;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'latin1');
    } catch {
      return Infinity;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (m === null || !/^\d+$/.test(m[1]!)) return Infinity;
  return Number(m[1]);
}
