import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{store,protocol,server,clients,src,test}/**/*.test.ts'],
    // Trie nodes compare by content, not by their derived domain summary (test/setup/node-equality.ts).
    setupFiles: ['test/setup/node-equality.ts'],
    // A skipped test fails the run (test/setup/no-skips.ts): a missing tool must be said, not hidden.
    reporters: ['default', './test/setup/no-skips.ts'],
    // Integration tests start real daemons on temporary run directories; give them room on a
    // loaded 2-core machine, but never use time as an assertion (speed lives in bench/).
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
