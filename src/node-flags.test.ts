import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS, withDaemonFlags } from './node-flags.js';

const repo = new URL('..', import.meta.url);

describe("the daemon's V8 options (src/node-flags.ts)", () => {
  it('are the ones the executable passes on its #! line and `npm start` on its command line', () => {
    const shebang = readFileSync(new URL('src/nxenstored.ts', repo), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`);
    const start = (JSON.parse(readFileSync(new URL('package.json', repo), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(start).toContain(`node ${DAEMON_NODE_FLAGS.join(' ')} dist/src/nxenstored.js`);
  });

  it("are added to a live update's next process where absent; a value given for one is kept", () => {
    expect(withDaemonFlags([])).toEqual([...DAEMON_NODE_FLAGS]);
    expect(withDaemonFlags(['--enable-source-maps'])).toEqual([...DAEMON_NODE_FLAGS, '--enable-source-maps']);
    expect(withDaemonFlags([...DAEMON_NODE_FLAGS])).toEqual([...DAEMON_NODE_FLAGS]);
    expect(withDaemonFlags(['--max-semi-space-size=32'])).toEqual(['--max-semi-space-size=32']);
    expect(withDaemonFlags(['--max_semi_space_size=4'])).toEqual(['--max_semi_space_size=4']);
  });
});
