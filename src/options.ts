import { parseArgs } from 'node:util';
import type { Limits } from '../store/index.js';
import { parseListenAddress, QUOTA_NAMES, type ListenAddress, type LogFormat } from '../server/index.js';

export interface DaemonConfig {
  readonly rundir: string | undefined;
  readonly logFormat: LogFormat;
  readonly logLevel: string;
  readonly accessLog: boolean;
  readonly limits: Partial<Limits>;
  /** Where the HTTP/WebSocket gateway listens; off when undefined. */
  readonly http: ListenAddress | undefined;
}

export const USAGE = `usage: nxenstored [options]

  --rundir DIR          run directory for socket, socket_ro and domains/<domid>/socket
                        (default: $XENSTORED_RUNDIR, /run/xenstored if writable,
                        $XDG_RUNTIME_DIR/xenstored, else ./run/xenstored)
  --log-format FORMAT   pretty (default) or json
  --log-level LEVEL     trace, debug, info (default), warn, error
  --access-log          log every request and its outcome (like oxenstored's access log)
  --quota NAME=VALUE    set a quota (repeatable; 0 = unlimited); names: ${Object.keys(QUOTA_NAMES).join(', ')}
  --http ADDR           start the HTTP/WebSocket gateway on HOST:PORT (host defaults to
                        127.0.0.1; port 0 picks one) or unix:/path; writes <rundir>/http-token
                        and <rundir>/http-address
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
      quota: { type: 'string', multiple: true, default: [] },
      http: { type: 'string' },
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
  return {
    rundir: values.rundir,
    logFormat,
    logLevel: values['log-level']!,
    accessLog: values['access-log']!,
    limits: limits as Partial<Limits>,
    http: values.http === undefined ? undefined : parseListenAddress(values.http),
  };
}
