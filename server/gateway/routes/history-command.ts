import { Op } from '../../../protocol/index.js';
import type { Gateway } from '../gateway.js';
import type { Identity } from '../identity.js';

/** `history(gw, identity, args)`: CONTROL `history args…` on the identity's session, as text. */
export async function history(gw: Gateway, identity: Identity, args: readonly string[]): Promise<string> {
  const payload = Buffer.from(['history', ...args].map((a) => `${a}\0`).join(''), 'latin1');
  const reply = await gw.run(gw.session(identity), Op.CONTROL, payload, 0, args[1] ?? '');
  // CONTROL replies are NUL-terminated text (spec §7.16).
  return reply.toString('latin1').replace(/\0$/, '');
}
