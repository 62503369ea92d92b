/**
 * Where the gateway listens (`--http`): `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1: loopback
 * unless asked otherwise), `[v6]:PORT`, or a Unix socket as `unix:/path` or any value holding a
 * `/`.
 */
export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

export const DEFAULT_HTTP_HOST = '127.0.0.1';

/** `parseListenAddress(spec)` reads an `--http` value; throws an Error naming what is wrong. */
export function parseListenAddress(spec: string): ListenAddress {
  if (spec.startsWith('unix:')) {
    const path = spec.slice(5);
    if (path === '') throw new Error('--http unix: needs a path');
    return { kind: 'unix', path };
  }
  if (spec.includes('/')) return { kind: 'unix', path: spec };
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(spec);
  if (m === null) throw new Error(`bad --http ${JSON.stringify(spec)} (HOST:PORT, :PORT, PORT, unix:/path)`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`bad --http port ${port}`);
  const raw = m[1] ?? '';
  const host = raw === '' ? DEFAULT_HTTP_HOST : raw.startsWith('[') ? raw.slice(1, -1) : raw;
  return { kind: 'tcp', host, port };
}

/** `formatUrl(addr)` is how clients reach it: `http://host:port` or `unix:/path`. */
export function formatUrl(addr: ListenAddress): string {
  if (addr.kind === 'unix') return `unix:${addr.path}`;
  return `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
}
