import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { Failure } from './nxs-command.js';

/**
 * `issueGuestToken(rundir, domid)` asks the daemon's HTTP gateway for a token acting as guest
 * `domid` (`POST /v1/tokens`), authenticated with the privileged token the daemon wrote to
 * `<rundir>/http-token` (mode 0600), at the address it wrote to `<rundir>/http-address`.
 *
 * Why over HTTP and not a CONTROL command on the socket: tokens are the gateway's own state, so
 * only the gateway issues them, and Xen's CONTROL namespace keeps to what xenstore-control knows.
 * Reading the 0600 token file is the same proof of privilege as opening the 0600 socket.
 */
export async function issueGuestToken(rundir: string, domid: number): Promise<string> {
  const address = await readSmall(join(rundir, 'http-address'), 'the gateway address (is the daemon running with --http?)');
  const token = await readSmall(join(rundir, 'http-token'), 'the privileged token');
  const socketPath = address.startsWith('unix:') ? address.slice(5) : undefined;
  const body = JSON.stringify({ domid });
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body) };
    const req =
      socketPath === undefined
        ? request(new URL('/v1/tokens', address), { method: 'POST', headers })
        : request({ socketPath, path: '/v1/tokens', method: 'POST', headers });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(new Failure(`could not reach the gateway at ${address}: ${e.code ?? e.message}`)));
    req.end(body);
  });
  let json: { token?: unknown; error?: unknown; message?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new Failure(`the gateway answered ${status} without JSON`);
  }
  if (status !== 200 || typeof json.token !== 'string') {
    throw new Failure(`could not get a token for domain ${domid}: ${String(json.error ?? status)} ${String(json.message ?? '')}`.trimEnd());
  }
  return json.token;
}

async function readSmall(path: string, what: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (e) {
    throw new Failure(`could not read ${what} from ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
