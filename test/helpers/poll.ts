/**
 * `eventually(probe, ok)` polls `probe` until `ok(value)` holds, for things the daemon does
 * asynchronously after a request was answered (a socket close it has not yet seen, a log line not
 * yet flushed). Returns the last value either way, so the caller's `expect` reports what was seen.
 * The bound (15 s by default) only turns a hang into a failure; it measures nothing.
 */
export async function eventually<T>(probe: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await probe();
  while (!ok(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    v = await probe();
  }
  return v;
}
