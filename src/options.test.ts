import { describe, expect, it } from 'vitest';
import { parseOptions } from './options.js';

describe('--http', () => {
  it('is off by default and reads HOST:PORT or unix:PATH', () => {
    expect(parseOptions([])).toMatchObject({ http: undefined });
    expect(parseOptions(['--http', '8080'])).toMatchObject({ http: { kind: 'tcp', host: '127.0.0.1', port: 8080 } });
    expect(parseOptions(['--http', 'unix:/tmp/h.sock'])).toMatchObject({ http: { kind: 'unix', path: '/tmp/h.sock' } });
  });

  it('refuses clients without a token unless --http-anonymous read is given, and only with --http', () => {
    expect(parseOptions(['--http', '8080'])).toMatchObject({ httpAnonymous: 'none' });
    expect(parseOptions(['--http', '8080', '--http-anonymous', 'read'])).toMatchObject({ httpAnonymous: 'read' });
    expect(parseOptions(['--http', '8080', '--http-anonymous', 'none'])).toMatchObject({ httpAnonymous: 'none' });
    expect(() => parseOptions(['--http', '8080', '--http-anonymous', 'write'])).toThrow(/--http-anonymous must be one of none, read/);
    expect(() => parseOptions(['--http-anonymous', 'read'])).toThrow(/--http-anonymous needs --http/);
  });

  it('caps the gateway\'s connections with --http-connections, only with --http', () => {
    expect(parseOptions(['--http', '8080'])).toMatchObject({ httpConnections: undefined });
    expect(parseOptions(['--http', '8080', '--http-connections', '64'])).toMatchObject({ httpConnections: 64 });
    expect(() => parseOptions(['--http', '8080', '--http-connections', '0'])).toThrow(/--http-connections takes a positive number/);
    expect(() => parseOptions(['--http', '8080', '--http-connections', 'lots'])).toThrow(/--http-connections takes a positive number/);
    expect(() => parseOptions(['--http-connections', '8'])).toThrow(/--http-connections needs --http/);
  });

  it('rejects a bad address with a message', () => {
    expect(() => parseOptions(['--http', 'no port'])).toThrow(/bad --http/);
    expect(() => parseOptions(['--http'])).toThrow();
  });
});

describe('persistence options', () => {
  it('takes --sync only with --data-dir, defaulting to always', () => {
    expect(parseOptions(['--data-dir', '/d'])).toMatchObject({ dataDir: '/d', sync: 'always' });
    expect(parseOptions(['--data-dir', '/d', '--sync', 'none'])).toMatchObject({ sync: 'none' });
    expect(() => parseOptions(['--sync', 'none'])).toThrow(/--sync needs --data-dir/);
    expect(() => parseOptions(['--data-dir', '/d', '--sync', 'sometimes'])).toThrow(/--sync must be one of/);
  });

  it('reads the disk budget and the compaction trigger, with K/M/G, only with --data-dir', () => {
    expect(parseOptions(['--data-dir', '/d'])).toMatchObject({ diskBudget: { rate: 65536, burst: 1048576 }, compactAfter: 8 * 1048576 });
    expect(parseOptions(['--data-dir', '/d', '--log-rate', '0', '--log-burst', '2m', '--compact-after', '100K'])).toMatchObject({
      diskBudget: { rate: 0, burst: 2 * 1048576 },
      compactAfter: 102400,
    });
    expect(() => parseOptions(['--log-rate', '1K'])).toThrow(/--log-rate needs --data-dir/);
    expect(() => parseOptions(['--data-dir', '/d', '--log-burst', '1.5M'])).toThrow(/--log-burst takes a number of bytes/);
  });

  it('takes --idle-exit only with --data-dir', () => {
    expect(() => parseOptions(['--idle-exit', '30'])).toThrow(/--idle-exit needs --data-dir/);
    expect(parseOptions(['--data-dir', '/d', '--idle-exit', '30'])).toMatchObject({ idleExit: 30 });
  });
});

describe('--socket-io', () => {
  it('is direct by default, takes stream, and names the choices for anything else', () => {
    expect(parseOptions([])).toMatchObject({ socketIo: 'direct' });
    expect(parseOptions(['--socket-io', 'stream'])).toMatchObject({ socketIo: 'stream' });
    expect(() => parseOptions(['--socket-io', 'fast'])).toThrow(/--socket-io must be one of direct, stream/);
  });
});

describe('per-domain budgets', () => {
  it('--quota takes connections and memory (0 = unlimited); --fd-reserve a number of descriptors', () => {
    expect(parseOptions(['--quota', 'connections=2', '--quota', 'memory=0'])).toMatchObject({ limits: { connections: 2, memory: Infinity } });
    expect(parseOptions([])).toMatchObject({ fdReserve: undefined });
    expect(parseOptions(['--fd-reserve', '64'])).toMatchObject({ fdReserve: 64 });
    expect(() => parseOptions(['--fd-reserve', 'many'])).toThrow(/--fd-reserve takes a number/);
  });
});

describe('history', () => {
  it('--history-records and --history-bytes bound the window; defaults otherwise', () => {
    expect(parseOptions([])).toMatchObject({ history: {} });
    expect(parseOptions(['--history-records', '5000', '--history-bytes', '8M'])).toMatchObject({ history: { records: 5000, bytes: 8 * 1024 * 1024 } });
    expect(parseOptions(['--history-records', '0'])).toMatchObject({ history: { records: 0 } }); // no history
    expect(() => parseOptions(['--history-records', '1.5'])).toThrow(/--history-records takes a number of records/);
    expect(() => parseOptions(['--history-records', 'lots'])).toThrow(/--history-records/);
    expect(() => parseOptions(['--history-bytes', '0'])).toThrow(/--history-bytes must be positive/);
  });
});

describe("cxenstored's options (its live update execs us with them, issue 15)", () => {
  it('reads -N -F FILE -U and the quota flags; ignores its debugging flags', () => {
    expect(parseOptions(['-N', '-F', '/run/xenstored.pid', '-U'])).toMatchObject({ xenTakeOver: true, pidFile: '/run/xenstored.pid' });
    expect(parseOptions([])).toMatchObject({ xenTakeOver: false, pidFile: undefined });
    expect(parseOptions(['-E', '2000', '-W', '64', '-t', '5', '-S', '4096', '-A', '7', '-M', '1024', '-Q', 'outstanding=30', '-T', '/tmp/t', '-V'])).toHaveProperty('limits', {
      nodes: 2000,
      watches: 64,
      transactions: 5,
      valueSize: 4096,
      permissions: 7,
      pathMax: 1024,
      outstanding: 30,
    });
    expect(parseOptions(['--entry-nb', '0'])).toHaveProperty('limits', { nodes: Infinity });
    expect(() => parseOptions(['-E', 'many'])).toThrow(/bad --entry-nb/);
    expect(() => parseOptions(['-Q', 'nosuch=1'])).toThrow(/bad -Q/);
    expect(() => parseOptions(['-X'])).toThrow();
  });
});
