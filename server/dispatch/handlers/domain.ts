import { argsN, oneArg, parseUint, replyPayload, splitArgs } from '../../../protocol/index.js';
import { homeOf, XsError } from '../../../store/index.js';
import type { DomainPort } from '../ports.js';
import { ok, OK_REPLY, required, type Handler, type RequestContext } from '../handler.js';

/** Domain ids of real guests: below DOMID_FIRST_RESERVED (0x7FF0). */
const DOMID_MAX_GUEST = 0x7fef;
const DOMID_SELF = 0x7ff0;

const domid = (s: string | undefined, max = 0xffff): number => required(s === undefined ? undefined : parseUint(s, max), 'bad domain id');

/** The domain named by a one-argument payload, which must be introduced (ENOENT otherwise). */
function introduced(ctx: RequestContext<DomainPort>, payload: Buffer) {
  const id = domid(oneArg(payload));
  // cxenstored answers EINVAL for dom0, which is never introduced or released (spec §7.12).
  if (id === 0) throw new XsError('EINVAL', 'dom0 is not an introduced domain');
  const domain = ctx.port.domains.get(id);
  if (domain === undefined) throw new XsError('ENOENT', `domain ${id} is not introduced`);
  return domain;
}

/**
 * INTRODUCE `domid|mfn|port|` (spec §7.11): opens the domain's socket and fires @introduceDomain.
 * dom0 and reserved ids are EINVAL (dom0 is served by the privileged socket); port must be > 0
 * (cxenstored); the frame number is kept as given (signed decimal in Xen's docs).
 */
export const introduce: Handler<DomainPort> = async (ctx, payload) => {
  const args = required(splitArgs(payload, 3));
  if (args.length !== 3) required(undefined, 'INTRODUCE takes domid, mfn and port');
  const id = domid(args[0]);
  if (id === 0 || id > DOMID_MAX_GUEST) throw new XsError('EINVAL', `cannot introduce domain ${id}`);
  if (!/^-?\d{1,20}$/.test(args[1]!)) throw new XsError('EINVAL', 'bad frame number');
  const port = domid(args[2], 0x7fffffff);
  if (port === 0) throw new XsError('EINVAL', 'bad event channel');
  return ok(await ctx.port.introduce(id, args[1]!, port));
};

/** RELEASE `domid|` (spec §7.12). */
export const release: Handler<DomainPort> = (ctx, payload) => {
  return ok(ctx.port.release(introduced(ctx, payload).domid));
};

/**
 * RESUME `domid|` (spec §7.13): cxenstored clears the shutdown mark that makes it fire
 * @releaseDomain once for a domain the hypervisor reports shut down (VIRQ_DOM_EXC). Without a
 * hypervisor nothing here marks a domain shut down, so there is nothing to clear: RESUME checks
 * the domain as Xen does (ENOENT, EINVAL) and answers OK.
 */
export const resume: Handler<DomainPort> = (ctx, payload) => {
  introduced(ctx, payload);
  return OK_REPLY;
};

/** IS_DOMAIN_INTRODUCED `domid|` → `T|` / `F|`; dom0 and DOMID_SELF are always there (§7.14). */
export const isDomainIntroduced: Handler<DomainPort> = (ctx, payload) => {
  const id = domid(oneArg(payload));
  const yes = id === 0 || id === DOMID_SELF || ctx.port.domains.has(id);
  return { payload: replyPayload.flag(yes) };
};

/** GET_DOMAIN_PATH `domid|` → `/local/domain/<domid>|`, no permission or existence check (§7.8). */
export const getDomainPath: Handler<DomainPort> = (_ctx, payload) => ({
  payload: replyPayload.string(homeOf(domid(oneArg(payload)))),
});

/**
 * SET_TARGET `domid|tdomid|` (spec §6.5): domid's connections act for tdomid from now on. Both
 * domains must be introduced (cxenstored); dom0 never is, so nobody can be made to act for dom0,
 * which would amount to privilege (oxenstored treats a target of 0 as privileged).
 */
export const setTarget: Handler<DomainPort> = (ctx, payload) => {
  const args = required(argsN(payload, 2));
  const id = domid(args[0]);
  const target = domid(args[1]);
  const domain = ctx.port.domains.get(id);
  if (domain === undefined) throw new XsError('ENOENT', `domain ${id} is not introduced`);
  if (!ctx.port.domains.has(target)) throw new XsError('ENOENT', `domain ${target} is not introduced`);
  ctx.port.setTarget(domain, target);
  return OK_REPLY;
};
