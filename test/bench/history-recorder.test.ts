import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** `node dist/bench/history-recorder.js ARGS` (the test command builds dist first). */
const run = (...args: string[]) => spawnSync(process.execPath, ['dist/bench/history-recorder.js', ...args], { encoding: 'utf8' });

describe('bench/history-recorder', () => {
  it('prints a line per round for the recorder, the harness alone and the floor', () => {
    const small = ['--writes', '3000', '--rounds', '2', '--records', '1000'];
    const recorder = run(...small);
    expect(recorder.status).toBe(0);
    expect(recorder.stdout).toMatch(/^(history recorder: [0-9.]+ ns of CPU per record, window 1000 records of [0-9.]+ bytes \([0-9.]+ held\)\n){2}$/);
    expect(run(...small, '--skip').stdout).toMatch(/^(history recorder \(skipped\): [0-9.]+ ns of CPU per record, window 0 records of 0\.0 bytes .*\n){2}$/);
    expect(run(...small, '--floor').stdout).toMatch(/^(history recorder \(floor\): [0-9.]+ ns of CPU per record\n){2}$/);
  });

  it('refuses --skip with --floor, and a count below 1', () => {
    const both = run('--skip', '--floor');
    expect(both.status).not.toBe(0);
    expect(both.stderr).toContain('--skip and --floor are two different loops');
    const bad = run('--rounds', '0');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--rounds takes a whole number of at least 1');
  });
});
