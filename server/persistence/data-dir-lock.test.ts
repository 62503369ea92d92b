import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCK, lockDataDir } from './data-dir-lock.js';

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'nxs-lock-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('lockDataDir', () => {
  it('takes a free directory, writes our pid, and releases it', () => {
    const d = fresh();
    const release = lockDataDir(d);
    expect(readFileSync(join(d, LOCK), 'latin1')).toBe(`${process.pid}\n`);
    release();
    expect(existsSync(join(d, LOCK))).toBe(false);
  });

  it('refuses a directory held by another live node process, and names it', async () => {
    const d = fresh();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      writeFileSync(join(d, LOCK), `${other.pid}\n`);
      expect(() => lockDataDir(d)).toThrow(new RegExp(`in use by process ${other.pid}`));
      // ...unless it is the predecessor handing over (live update).
      const release = lockDataDir(d, other.pid);
      expect(readFileSync(join(d, LOCK), 'latin1')).toBe(`${process.pid}\n`);
      release();
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('takes over a lock left by a process that is gone (kill -9) or a garbled one', async () => {
    const d = fresh();
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(join(d, LOCK), `${gone.pid}\n`);
    lockDataDir(d)();
    writeFileSync(join(d, LOCK), 'garbage');
    lockDataDir(d)();
  });

  it('honours a lock written as a symbolic link to the pid (what a start on a full disk writes)', () => {
    const d = fresh();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      symlinkSync(String(other.pid), join(d, LOCK));
      expect(() => lockDataDir(d)).toThrow(new RegExp(`in use by process ${other.pid}`));
    } finally {
      other.kill('SIGKILL');
    }
    rmSync(join(d, LOCK));
    symlinkSync(String(process.pid), join(d, LOCK));
    const release = lockDataDir(d);
    expect(readFileSync(join(d, LOCK), 'latin1')).toBe(`${process.pid}\n`); // a file again, once there is room
    release();
    expect(existsSync(join(d, LOCK))).toBe(false);
  });
});

