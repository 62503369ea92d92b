import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { Connection } from '../connection/index.js';
import type { Domain } from './domain.js';
import { OFFERED_FEATURES } from '../../protocol/index.js';
import { listenUnix } from '../transport/index.js';

/**
 * The registry of introduced domains and their sockets. Pure bookkeeping plus the socket files;
 * what introducing or releasing a domain does to the store and to watches is the daemon's.
 */
export class Domains {
  private readonly byId = new Map<number, Domain>();
  /** SET_FEATURE of domains not introduced yet: at most one entry per domid (16 bits). */
  private readonly preset = new Map<number, number>();

  constructor(
    private readonly rundir: string,
    private readonly accept: (domain: Domain, socket: Socket) => void,
    /** An accept that failed (EMFILE): reported, never thrown from the server. */
    private readonly acceptFailed: (domain: Domain, e: Error) => void = () => {},
  ) {}

  get(domid: number): Domain | undefined {
    return this.byId.get(domid);
  }

  has(domid: number): boolean {
    return this.byId.has(domid);
  }

  all(): IterableIterator<Domain> {
    return this.byId.values();
  }

  /** Introduced domains: each holds a listening socket's descriptor. */
  get size(): number {
    return this.byId.size;
  }

  /**
   * `presetFeatures(domid, bits)` records the feature bits a domain will have when introduced
   * (Xen 4.22 SET_FEATURE, which is EBUSY once it is); the caller has checked both.
   */
  presetFeatures(domid: number, bits: number): void {
    this.preset.set(domid, bits);
  }

  /** `featuresOf(domid)` is an introduced domain's feature bits, or those preset for it, or undefined. */
  featuresOf(domid: number): number | undefined {
    return this.byId.get(domid)?.features ?? this.preset.get(domid);
  }

  /** `socketPath(domid)` is where a domain's connections arrive. */
  socketPath(domid: number): string {
    return join(this.rundir, 'domains', String(domid), 'socket');
  }

  /** `introduce(domid, mfn, port)` opens the domain's socket (mode 0600) and records it. */
  async introduce(domid: number, mfn: string, port: number): Promise<Domain> {
    const socketPath = this.socketPath(domid);
    mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
    const domain = this.adopt(domid, mfn, port);
    try {
      await listenUnix(domain.server, socketPath);
    } catch (e) {
      this.byId.delete(domid);
      throw e;
    }
    return domain;
  }

  /**
   * `adopt(domid, mfn, port)` records a domain and its (not yet listening) server. `introduce`
   * then listens on the socket file; live update's next process listens on the descriptor the
   * previous process opened (`domain.server.listen({ fd })`) once it may accept.
   */
  adopt(domid: number, mfn: string, port: number, features?: number): Domain {
    const preset = this.preset.get(domid);
    this.preset.delete(domid);
    const domain: Domain = {
      domid,
      mfn,
      port,
      socketPath: this.socketPath(domid),
      server: createServer(),
      connections: new Set<Connection>(),
      features: features ?? preset ?? OFFERED_FEATURES,
      target: undefined,
    };
    domain.server.on('connection', (s) => this.accept(domain, s));
    // Errors while listening are the listener's to report (introduce rejects with them).
    domain.server.on('error', (e) => domain.server.listening && this.acceptFailed(domain, e));
    this.byId.set(domid, domain);
    return domain;
  }

  /** `release(domid)` closes the domain's socket and connections and forgets it. */
  release(domid: number): Domain | undefined {
    this.preset.delete(domid);
    const domain = this.byId.get(domid);
    if (domain === undefined) return undefined;
    this.byId.delete(domid);
    domain.server.close();
    for (const c of domain.connections) c.close();
    rmSync(dirname(domain.socketPath), { recursive: true, force: true });
    return domain;
  }

  /** `closeAll()` releases every domain's socket (daemon shutdown). */
  closeAll(): void {
    for (const domid of [...this.byId.keys()]) this.release(domid);
  }
}
