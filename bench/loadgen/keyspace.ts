/**
 * Where each load puts its nodes, and the seeded random numbers that pick them. Every daemon gets
 * the same paths in the same order, so the only difference between two runs is the daemon.
 */

/** 1,000 keys as 100 directories of 10 (a device-directory shape): `/bench/data/d<j>/k<i>`. */
export const DATA_KEYS = 1000;
export const DATA_DIR_SIZE = 10;

export function dataKey(i: number): string {
  return `/bench/data/d${Math.floor(i / DATA_DIR_SIZE)}/k${i % DATA_DIR_SIZE}`;
}

export function dataDir(i: number): string {
  return `/bench/data/d${Math.floor(i / DATA_DIR_SIZE)}`;
}

/**
 * The store-size series: node i of n is `/bench/s/<a>/<b>/<c>` with fan-out 100 at every level,
 * so a 10^3 store and a 10^6 store have the same path shape and depth, and neither daemon is
 * measured on a directory of a million children.
 */
export function scaleKey(i: number): string {
  return `/bench/s/${Math.floor(i / 10000)}/${Math.floor(i / 100) % 100}/${i % 100}`;
}

/** A 16-byte value that differs per key and per round. */
export function value16(i: number, round = 0): string {
  return `v${round.toString(36).padStart(3, '0')}-${i.toString(36).padStart(11, '0')}`.slice(0, 16);
}

/** xorshift32: small, fast, deterministic per seed. `next()` is in [0, 2^32). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** Uniform integer in [0, n). */
  below(n: number): number {
    return this.next() % n;
  }
}
