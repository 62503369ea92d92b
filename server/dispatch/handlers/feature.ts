import { OFFERED_FEATURES, parseUint, replyPayload, splitArgs } from '../../../protocol/index.js';
import { XsError } from '../../../store/index.js';
import type { DomainPort } from '../ports.js';
import { OK_REPLY, required, type Handler, type RequestContext } from '../handler.js';

/** Domain ids of real guests: below DOMID_FIRST_RESERVED (0x7FF0). */
const DOMID_MAX_GUEST = 0x7fef;

/*
 * GET_FEATURE / SET_FEATURE (Xen 4.22 `do_get_feature`, `do_set_feature`, spec §7.17). Of the
 * bits 4.22 defines we offer those that apply to a socket "ring": WATCHDEPTH and DOMID_ANY
 * (protocol/feature.ts). A domain has them all unless SET_FEATURE, before its INTRODUCE, said less.
 */

/**
 * A domid as Xen's `parse_domid` takes it (`strtoul(s, &end, 10)`, the whole string, at most
 * 65535): the empty string is 0. Signs and spaces, which strtoul would skip, are EINVAL here.
 */
function xenDomid(s: string): number {
  return s === '' ? 0 : required(parseUint(s, 0xffff), 'bad domain id');
}

/** A domain's features: dom0's and socket connections' are every offered one; ENOENT for an unknown domain. */
function featuresOf(ctx: RequestContext<DomainPort>, domid: number): number {
  if (domid === 0) return OFFERED_FEATURES;
  const f = ctx.port.domains.featuresOf(domid);
  if (f === undefined) throw new XsError('ENOENT', `no domain ${domid}`);
  return f;
}

/** GET_FEATURE `[domid|]`: the caller's own features, or (privileged) a domain's. */
export const getFeature: Handler<DomainPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 2));
  if (args.length === 0) return { payload: replyPayload.decimal(ctx.conn.caller.features ?? OFFERED_FEATURES) };
  if (!ctx.conn.caller.privileged) throw new XsError('EACCES', 'GET_FEATURE of a domain is privileged');
  if (args.length > 1) throw new XsError('EINVAL', 'GET_FEATURE takes at most a domid');
  return { payload: replyPayload.decimal(featuresOf(ctx, xenDomid(args[0]!))) };
};

/**
 * SET_FEATURE `domid|value|` (privileged): the features the domain will have from its INTRODUCE;
 * EBUSY once introduced (dom0 always is), EINVAL for bits we do not offer, ENOENT for an id no
 * guest can have. Until then the value is what GET_FEATURE reports for that domid.
 */
export const setFeature: Handler<DomainPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 2));
  if (args.length !== 2) required(undefined, 'SET_FEATURE takes domid and value');
  const domid = xenDomid(args[0]!);
  const value = required(parseUint(args[1]!, 0xffffffff), 'bad feature value');
  if (domid > DOMID_MAX_GUEST) throw new XsError('ENOENT', `no domain ${domid}`);
  if (domid === 0 || ctx.port.domains.has(domid)) throw new XsError('EBUSY', `domain ${domid} is already introduced`);
  if ((value & ~OFFERED_FEATURES) !== 0) throw new XsError('EINVAL', 'unsupported feature bits');
  ctx.port.domains.presetFeatures(domid, value);
  return OK_REPLY;
};
