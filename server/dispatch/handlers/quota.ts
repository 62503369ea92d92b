import { parseUint, replyPayload, splitArgs } from '../../../protocol/index.js';
import type { QuotaPort } from '../ports.js';
import { OK_REPLY, required, type Handler } from '../handler.js';

/**
 * GET_QUOTA / SET_QUOTA (Xen 4.22, spec §7.18), privileged. Names are Xen's (`nodes`, `node-size`,
 * `permissions`, `path-max`, `transaction-nodes`, `transactions`, `watches`, `watch-events`,
 * `outstanding`, `connections`, `memory`); 0 means unlimited. With a leading domid the value is that domain's.
 */
const domidArg = (s: string): number => required(parseUint(s, 0xffff), 'bad domain id');

export const getQuota: Handler<QuotaPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 2));
  const q = ctx.port.quotas;
  if (args.length === 0) return { payload: replyPayload.string(q.names().join(' ')) };
  const value = args.length === 1 ? q.get(args[0]!) : q.get(args[1]!, domidArg(args[0]!));
  return { payload: replyPayload.decimal(value) };
};

export const setQuota: Handler<QuotaPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 3));
  if (args.length < 2) required(undefined, 'SET_QUOTA takes [domid] name value');
  const value = required(parseUint(args[args.length - 1]!, 0xffffffff), 'bad quota value');
  if (args.length === 2) ctx.port.quotas.set(args[0]!, value);
  else ctx.port.quotas.set(args[1]!, value, domidArg(args[0]!));
  return OK_REPLY;
};
