import { describe, expect, it } from 'vitest';
import { OriginGuard } from './origin.js';

describe('OriginGuard', () => {
  const loop = new OriginGuard({ kind: 'tcp', host: '127.0.0.1', port: 8080 });

  it('answers loopback Host names only on a loopback listen (DNS rebinding)', () => {
    for (const host of ['127.0.0.1:8080', 'localhost:8080', 'LOCALHOST', '[::1]:8080', '127.1.2.3:1']) {
      expect(() => loop.checkHost({ host }), host).not.toThrow();
    }
    for (const host of ['evil.example:8080', 'evil.example', '127.0.0.1.evil.example', '']) {
      expect(() => loop.checkHost({ host }), host).toThrow(expect.objectContaining({ status: 403 }));
    }
    expect(() => loop.checkHost({})).toThrow(expect.objectContaining({ status: 403 }));
    // The last good Host is remembered (one comparison on the hot path); nothing else is.
    const g = new OriginGuard({ kind: 'tcp', host: '127.0.0.1', port: 8080 });
    expect(() => g.checkHost({ host: 'localhost:8080' })).not.toThrow();
    expect(() => g.checkHost({ host: 'evil.example' })).toThrow(expect.objectContaining({ status: 403 }));
    expect(() => g.checkHost({})).toThrow(expect.objectContaining({ status: 403 }));
    expect(() => g.checkHost({ host: 'localhost:8080' })).not.toThrow();
    // Listening elsewhere was the operator's choice: any Host, and a Unix socket has none.
    expect(() => new OriginGuard({ kind: 'tcp', host: '0.0.0.0', port: 1 }).checkHost({ host: 'xs.example' })).not.toThrow();
    expect(() => new OriginGuard({ kind: 'unix', path: '/s' }).checkHost({})).not.toThrow();
  });

  it('refuses a browser Origin other than the server itself (cross-site WebSocket)', () => {
    expect(() => loop.checkOrigin({ host: '127.0.0.1:8080' })).not.toThrow();
    expect(() => loop.checkOrigin({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' })).not.toThrow();
    expect(() => loop.checkOrigin({ host: '127.0.0.1:8080', origin: 'http://evil.example' })).toThrow(
      expect.objectContaining({ status: 403 }),
    );
    expect(() => loop.checkOrigin({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:9999' })).toThrow();
    expect(() => loop.checkOrigin({ host: '127.0.0.1:8080', origin: 'null' })).toThrow();
  });
});
