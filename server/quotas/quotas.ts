import { DEFAULT_LIMITS, XsError, type LimitName, type Limits } from '../../store/index.js';

/**
 * The quota settings: global values (Xen's defaults unless configured) and per-domain overrides,
 * as SET_QUOTA / `xenstore-control quota set` change them at run time (spec §7.16, §7.18). Each
 * domain's effective limits are cached, because every request asks for them.
 *
 * Names on the wire are Xen 4.22's (`quota_adm[]` in cxenstored's domain.c, in its order), then
 * ours (`watch-events`, `connections`); 0 means "no limit" (spec §7.18). Xen's soft quotas
 * (`soft-memory`: a warning in the log) are not offered, so they are EINVAL like Xen's disabled ones.
 */
export const QUOTA_NAMES: Readonly<Record<string, LimitName>> = Object.freeze({
  nodes: 'nodes',
  watches: 'watches',
  outstanding: 'outstanding',
  memory: 'memory',
  transactions: 'transactions',
  'transaction-nodes': 'transactionOps',
  'node-permissions': 'permissions',
  'path-max': 'pathMax',
  'node-size': 'valueSize',
  'watch-events': 'watchEvents',
  connections: 'connections',
});

/** Other names accepted: `permissions` is what Xen's xenstore.txt calls `node-permissions`. */
const ALIASES: Readonly<Record<string, LimitName>> = Object.freeze({ permissions: 'permissions' });

/** Quota settings by Xen name (0 = unlimited), global and per domain. */
export interface QuotaSettings {
  readonly global: Readonly<Record<string, number>>;
  readonly domains: readonly (readonly [number, Readonly<Record<string, number>>])[];
}

const PATH_MAX_CEILING = 2048; // XENSTORE_REL_PATH_MAX: like cxenstored's -M, only lowered

export class Quotas {
  private global: Limits;
  private readonly overrides = new Map<number, Partial<Record<LimitName, number>>>();
  private readonly cache = new Map<number, Limits>();

  constructor(initial: Partial<Limits> = {}) {
    this.global = Object.freeze({ ...DEFAULT_LIMITS, ...initial });
  }

  /** `limitsFor(domid)` is the effective limits of a domain. */
  limitsFor(domid: number): Limits {
    let l = this.cache.get(domid);
    if (l === undefined) {
      const o = this.overrides.get(domid);
      l = o === undefined ? this.global : Object.freeze({ ...this.global, ...o });
      this.cache.set(domid, l);
    }
    return l;
  }

  get defaults(): Limits {
    return this.global;
  }

  /** `get(name, domid?)` is a quota's value by its Xen name (0 = unlimited); EINVAL if unknown. */
  get(name: string, domid?: number): number {
    const v = (domid === undefined ? this.global : this.limitsFor(domid))[key(name)];
    return v === Infinity ? 0 : v;
  }

  /**
   * `set(name, value, domid?)` changes a quota for one domain, or the global value; 0 = unlimited.
   * A global value is the default of the domains admitted later (Xen 4.22 SET_QUOTA): a domain
   * admitted before keeps the values it was admitted with.
   */
  set(name: string, value: number, domid?: number): void {
    const k = key(name);
    if (!Number.isSafeInteger(value) || value < 0) throw new XsError('EINVAL', `bad quota value ${value}`);
    const v = value === 0 ? Infinity : value;
    if (k === 'pathMax' && v > PATH_MAX_CEILING) throw new XsError('EINVAL', `path-max is at most ${PATH_MAX_CEILING}`);
    if (domid === undefined) this.global = Object.freeze({ ...this.global, [k]: v });
    else this.overrides.set(domid, { ...this.overrides.get(domid), [k]: v });
    this.cache.clear();
  }

  /**
   * `setEverywhere(name, value)` changes the global value and every admitted domain's: what
   * `xenstore-control quota set` did in Xen 4.17, whose quotas were global variables.
   */
  setEverywhere(name: string, value: number): void {
    this.set(name, value);
    for (const domid of this.overrides.keys()) this.set(name, value, domid);
  }

  /**
   * `admit(domid)` gives an introduced domain its own copy of the global values, which later
   * global changes leave alone (Xen 4.22 `alloc_domain`); values already set for it stay.
   */
  admit(domid: number): void {
    this.overrides.set(domid, { ...this.global, ...this.overrides.get(domid) });
    this.cache.delete(domid);
  }

  /** `forget(domid)` drops a released domain's overrides: a reused domid starts afresh (XSA-483). */
  forget(domid: number): void {
    if (this.overrides.delete(domid)) this.cache.clear();
    else this.cache.delete(domid);
  }

  /**
   * `settings()` is every setting by Xen name (0 = unlimited): the global values and each domain's
   * overrides. `apply(settings)` sets them again (live update carries them to the next process).
   */
  settings(): QuotaSettings {
    const byKey = new Map(Object.entries(QUOTA_NAMES).map(([name, k]) => [k, name]));
    const xen = (o: Partial<Record<LimitName, number>>): Record<string, number> =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [byKey.get(k as LimitName)!, v === Infinity ? 0 : v]));
    return { global: xen(this.global), domains: [...this.overrides].map(([domid, o]) => [domid, xen(o)]) };
  }

  apply(settings: QuotaSettings): void {
    for (const [name, value] of Object.entries(settings.global)) this.set(name, value);
    for (const [domid, o] of settings.domains) for (const [name, value] of Object.entries(o)) this.set(name, value, domid);
  }

  /** Xen names of every quota. */
  names(): string[] {
    return Object.keys(QUOTA_NAMES);
  }
}

function key(name: string): LimitName {
  const k = Object.hasOwn(QUOTA_NAMES, name) ? QUOTA_NAMES[name] : Object.hasOwn(ALIASES, name) ? ALIASES[name] : undefined;
  if (k === undefined) throw new XsError('EINVAL', `unknown quota ${JSON.stringify(name)}`);
  return k;
}
