import { oneArg, parseUint, replyPayload, splitArgs } from '../../../protocol/index.js';
import { XsError } from '../../../store/index.js';
import type { DomainPort } from '../ports.js';
import { OK_REPLY, required, type Handler } from '../handler.js';

/**
 * GET_FEATURE / SET_FEATURE (Xen 4.21, spec §7.17). The feature bits describe the shared ring
 * (reconnection, error field, watch depth, DOMID_ANY); our guests speak over sockets and we
 * implement none of them, so the supported set is empty and only 0 can be set. The messages are
 * still answered properly, so that a 4.21+ toolstack gets a clear "nothing" instead of ENOSYS.
 */
export const SUPPORTED_FEATURES = 0;

export const getFeature: Handler<DomainPort> = (ctx, payload) => {
  if (payload.length === 0) return { payload: replyPayload.decimal(SUPPORTED_FEATURES) };
  if (!ctx.conn.caller.privileged) throw new XsError('EACCES', 'GET_FEATURE of a domain is privileged');
  const domid = required(parseUint(required(oneArg(payload)), 0xffff), 'bad domain id');
  if (domid !== 0 && !ctx.port.domains.has(domid)) throw new XsError('ENOENT', `no domain ${domid}`);
  return { payload: replyPayload.decimal(SUPPORTED_FEATURES) };
};

export const setFeature: Handler<DomainPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 2));
  if (args.length !== 2) required(undefined, 'SET_FEATURE takes domid and value');
  const domid = required(parseUint(args[0]!, 0xffff), 'bad domain id');
  const value = required(parseUint(args[1]!, 0xffffffff), 'bad feature value');
  // Features are fixed at introduction (EBUSY after it), and only supported bits may be set.
  if (ctx.port.domains.has(domid)) throw new XsError('EBUSY', `domain ${domid} is already introduced`);
  if ((value & ~SUPPORTED_FEATURES) !== 0) throw new XsError('EINVAL', 'unsupported feature bits');
  return OK_REPLY;
};
