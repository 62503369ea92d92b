/**
 * A latency histogram with fixed memory and ~1.6% resolution (HdrHistogram's idea, log-linear
 * buckets): recording is one array increment, so the load generator can time every request
 * without allocating. Values are microseconds; anything above ~1 hour lands in the last bucket.
 */
const SUB_BITS = 6; // 64 linear sub-buckets per power of two
const SUB = 1 << SUB_BITS;
const MAGNITUDES = 32;

export class Histogram {
  private readonly counts = new Float64Array(MAGNITUDES * SUB);
  private n = 0;
  private maxSeen = 0;

  /** `record(us)` counts one value (negative values count as 0). */
  record(us: number): void {
    const v = us > 0 ? Math.floor(us) : 0;
    this.counts[bucketOf(v)]!++;
    this.n++;
    if (v > this.maxSeen) this.maxSeen = v;
  }

  get count(): number {
    return this.n;
  }

  get max(): number {
    return this.maxSeen;
  }

  /** `merge(other)` adds another histogram's counts to this one. */
  merge(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.n += other.n;
    if (other.maxSeen > this.maxSeen) this.maxSeen = other.maxSeen;
  }

  /**
   * `percentile(p)` is the smallest bucket value v such that at least p% of the recorded values
   * are ≤ v (an upper bound within the bucket's resolution); 0 when empty.
   */
  percentile(p: number): number {
    if (this.n === 0) return 0;
    const want = Math.max(1, Math.ceil((p / 100) * this.n));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= want) return Math.min(upperOf(i), this.maxSeen);
    }
    return this.maxSeen;
  }
}

/** Bucket index of a non-negative integer: exact below 64, then 64 buckets per power of two. */
export function bucketOf(v: number): number {
  if (v < SUB) return v;
  const mag = Math.min(Math.floor(Math.log2(v)) - SUB_BITS + 1, MAGNITUDES - 1);
  const sub = Math.min(Math.floor(v / 2 ** (mag - 1)) - SUB, SUB - 1);
  return mag * SUB + sub;
}

/** The largest value that falls in bucket `i`. */
export function upperOf(i: number): number {
  const mag = Math.floor(i / SUB);
  const sub = i % SUB;
  if (mag === 0) return sub;
  return (SUB + sub + 1) * 2 ** (mag - 1) - 1;
}
