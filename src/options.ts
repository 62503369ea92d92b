import { parseArgs } from 'node:util';
import type { Limits } from '../store/index.js';
import { QUOTA_NAMES, type LogFormat } from '../server/index.js';

export interface DaemonConfig {
  readonly rundir: string | undefined;
  readonly logFormat: LogFormat;
  readonly logLevel: string;
  readonly accessLog: boolean;
  readonly fairness: boolean;
  readonly turnIdleMs: number | undefined;
  readonly limits: Partial<Limits>;
}

export const USAGE = `usage: nxenstored [options]

  --rundir DIR          run directory for socket, socket_ro and domains/<domid>/socket
                        (default: $XENSTORED_RUNDIR, /run/xenstored if writable,
                        $XDG_RUNTIME_DIR/xenstored, else ./run/xenstored)
  --log-format FORMAT   pretty (default) or json
  --log-level LEVEL     trace, debug, info (default), warn, error
  --access-log          log every request and its outcome (like oxenstored's access log)
  --no-fairness         commit transactions first come, first served (no turn for a
                        transaction that keeps failing; for comparison only)
  --turn-idle-ms MS     a transaction holding the turn that makes no progress for MS while
                        others wait for it gives the turn up (default 250)
  --quota NAME=VALUE    set a quota (repeatable; 0 = unlimited); names: ${Object.keys(QUOTA_NAMES).join(', ')}
  -h, --help            this text
`;

/** `parseOptions(argv)` reads the command line; throws an Error with a message for bad input. */
export function parseOptions(argv: string[]): DaemonConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rundir: { type: 'string' },
      'log-format': { type: 'string', default: 'pretty' },
      'log-level': { type: 'string', default: 'info' },
      'access-log': { type: 'boolean', default: false },
      'no-fairness': { type: 'boolean', default: false },
      'turn-idle-ms': { type: 'string' },
      quota: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const logFormat = values['log-format'];
  if (logFormat !== 'pretty' && logFormat !== 'json') throw new Error(`--log-format must be pretty or json`);
  const limits: Record<string, number> = {};
  for (const q of values.quota ?? []) {
    const m = /^([a-z-]+)=(\d+)$/.exec(q);
    const key = m && Object.hasOwn(QUOTA_NAMES, m[1]!) ? QUOTA_NAMES[m[1]!] : undefined;
    if (!m || key === undefined) throw new Error(`bad --quota ${JSON.stringify(q)} (NAME=VALUE, names: ${Object.keys(QUOTA_NAMES).join(', ')})`);
    limits[key] = Number(m[2]) === 0 ? Infinity : Number(m[2]);
  }
  const idle = values['turn-idle-ms'];
  if (idle !== undefined && !/^[1-9]\d{0,8}$/.test(idle)) throw new Error(`--turn-idle-ms must be a positive number of milliseconds`);
  return {
    rundir: values.rundir,
    logFormat,
    logLevel: values['log-level']!,
    accessLog: values['access-log']!,
    fairness: !values['no-fairness']!,
    turnIdleMs: idle === undefined ? undefined : Number(idle),
    limits: limits as Partial<Limits>,
  };
}
