import { describe, expect, it } from 'vitest';
import { formatUrl, parseListenAddress } from './listen-address.js';

describe('parseListenAddress', () => {
  it('reads TCP addresses, loopback by default', () => {
    expect(parseListenAddress('8080')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8080 });
    expect(parseListenAddress(':0')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('0.0.0.0:80')).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 80 });
    expect(parseListenAddress('localhost:9')).toEqual({ kind: 'tcp', host: 'localhost', port: 9 });
    expect(parseListenAddress('[::1]:443')).toEqual({ kind: 'tcp', host: '::1', port: 443 });
  });

  it('reads Unix socket paths', () => {
    expect(parseListenAddress('unix:/run/x.sock')).toEqual({ kind: 'unix', path: '/run/x.sock' });
    expect(parseListenAddress('./x.sock')).toEqual({ kind: 'unix', path: './x.sock' });
  });

  it('rejects what it cannot read, naming the forms', () => {
    for (const bad of ['', 'host', 'host:', 'h:99999', '1.2.3.4:-1', 'unix:', 'a b:1']) {
      expect(() => parseListenAddress(bad), bad).toThrow(/--http/);
    }
  });

  it('formats the URL clients use', () => {
    expect(formatUrl({ kind: 'tcp', host: '127.0.0.1', port: 5 })).toBe('http://127.0.0.1:5');
    expect(formatUrl({ kind: 'tcp', host: '::1', port: 5 })).toBe('http://[::1]:5');
    expect(formatUrl({ kind: 'unix', path: '/p' })).toBe('unix:/p');
  });
});
