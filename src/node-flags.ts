/**
 * The V8 options the daemon runs with. The executable's `#!` line passes them (src/nxenstored.ts:
 * `env -S`), so the installed `nxenstored`, a unit's ExecStart= and Xen's live update, which exec
 * the file, get them; what starts it through `node` passes them itself (package.json `start`, the
 * tests' daemons, our live update's next process: `withDaemonFlags`).
 *
 * `--max-semi-space-size=8` (MiB; V8's default is 16 on Node 20 and 22, up to 64 on 24): V8 starts
 * marking for a full (mark-compact) collection whenever the old generation's room to its limit is
 * below the young generation's capacity. The daemon's old generation is small (~12 MB live: the
 * store, the history index, the listings) and, once V8 had grown the young generation to 32 MB, a
 * load that allocates fast but keeps little (8 guests paging a 20,000-child directory) met that
 * test after nearly every young collection: 60-85 full collections in 4 s instead of 1, the
 * daemon's CPU per page doubled and others' p99 rose from 1-5 ms to 7-10 ms (issue 18's listings
 * attack: Node 20 and 22 nearly every run, 24 one run in 5). With 8 MiB semi-spaces it happened in
 * none of 8 runs (with 12 MiB in 2 of 2), and the native write, read and VM-start loads kept
 * within 3% of their requests and 6% of their p99 or did better, but for Node 24's VM starts,
 * whose p99 doubled to 0.87 ms (bench/RESULTS.md, "Node flags").
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/** `execArgv` with the daemon's flags added where absent (a flag given with another value wins). */
export function withDaemonFlags(execArgv: readonly string[]): string[] {
  const name = (flag: string): string => flag.split('=')[0]!.replaceAll('_', '-');
  const given = new Set(execArgv.map(name));
  return [...DAEMON_NODE_FLAGS.filter((f) => !given.has(name(f))), ...execArgv];
}
