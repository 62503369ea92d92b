import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The latency bounds of test/attacks/fair-under-attack.test.ts (issue 18: others' p99 < 10 ms while
 * one guest attacks, on this 2-core machine) measure the daemon against the attack, not against
 * our own other test files: run in parallel with them, the readers and the daemon waited for a CPU
 * that other daemons, builds of fixtures and fuzzers held (a reader's p99 of 15 ms with the
 * daemon's longest loop turn at 7 ms). So that file runs after all the others, alone; its bounds
 * and retries are unchanged.
 */
const LATENCY = ['test/attacks/fair-under-attack.test.ts'];

export default defineConfig({
  test: {
    // A skipped test fails the run (test/setup/no-skips.ts): a missing tool must be said, not hidden.
    reporters: ['default', './test/setup/no-skips.ts'],
    // Trie nodes compare by content, not by their derived domain summary (test/setup/node-equality.ts).
    setupFiles: ['test/setup/node-equality.ts'],
    // Integration tests start real daemons on temporary run directories; give them room on a
    // loaded 2-core machine, but never use time as an assertion (speed lives in bench/).
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'main', include: ['{store,protocol,server,clients,src,test}/**/*.test.ts'], exclude: [...configDefaults.exclude, ...LATENCY], sequence: { groupOrder: 0 } },
      },
      { extends: true, test: { name: 'latency', include: LATENCY, sequence: { groupOrder: 1 } } },
    ],
  },
});
