import { parseUint, replyPayload, splitArgs } from '../../../protocol/index.js';
import { XsError } from '../../../store/index.js';
import type { QuotaPort } from '../ports.js';
import { OK_REPLY, required, type Handler, type RequestContext } from '../handler.js';

/**
 * GET_QUOTA / SET_QUOTA (Xen 4.22 `do_get_quota`, `do_set_quota`, spec §7.18), privileged.
 * Names: Xen's, then ours (server/quotas/quotas.ts), listed by GET_QUOTA without an argument;
 * 0 means unlimited, and is answered as 0. A global value is the default of domains introduced
 * later; with a leading domid the value is that domain's, which must exist (dom0, or introduced:
 * ENOENT otherwise, where Xen asks the hypervisor).
 */
function domain(ctx: RequestContext<QuotaPort>, s: string): number {
  const domid = required(parseUint(s, 0xffff), 'bad domain id');
  if (domid !== 0 && !ctx.port.domains.has(domid)) throw new XsError('ENOENT', `no domain ${domid}`);
  return domid;
}

export const getQuota: Handler<QuotaPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 2));
  const q = ctx.port.quotas;
  if (args.length === 0) return { payload: replyPayload.string(q.names().join(' ')) };
  const value = args.length === 1 ? q.get(args[0]!) : q.get(args[1]!, domain(ctx, args[0]!));
  return { payload: replyPayload.decimal(value) };
};

export const setQuota: Handler<QuotaPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 3));
  if (args.length < 2) required(undefined, 'SET_QUOTA takes [domid] name value');
  const value = required(parseUint(args[args.length - 1]!, 0xffffffff), 'bad quota value');
  if (args.length === 2) ctx.port.quotas.set(args[0]!, value);
  else ctx.port.quotas.set(args[1]!, value, domain(ctx, args[0]!));
  return OK_REPLY;
};
