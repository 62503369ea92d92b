import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon } from '../daemon.js';
import { Quotas } from '../quotas/index.js';
import { Metrics } from './metrics.js';

const rundir = mkdtempSync(join(tmpdir(), 'nxs-metrics-'));
afterAll(() => rmSync(rundir, { recursive: true, force: true }));

describe('Metrics', () => {
  const daemon = new Daemon({ rundir, log: pino({ level: 'silent' }), quotas: new Quotas(), accessLog: false });

  it('renders cumulative histogram buckets and per-status counts', () => {
    const m = new Metrics(daemon);
    m.request('/v1/node/*', 'GET', 200, 0.0003);
    m.request('/v1/node/*', 'GET', 200, 0.002);
    m.request('/v1/node/*', 'GET', 404, 5);
    m.request('/v1/node/*', 'PUT', 200, 0.00005);
    m.op('READ', 'OK');
    m.op('READ', 'OK');
    m.op('READ', 'ENOENT');
    const text = m.render();
    const bucket = (le: string, method = 'GET') =>
      Number(new RegExp(`^nxenstored_http_request_duration_seconds_bucket\\{route="/v1/node/\\*",method="${method}",le="${le.replace('+', '\\+')}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    expect([bucket('0.0001'), bucket('0.00025'), bucket('0.0005'), bucket('0.001'), bucket('0.0025'), bucket('1'), bucket('+Inf')]).toEqual([
      0, 0, 1, 1, 2, 2, 3,
    ]);
    expect(bucket('0.0001', 'PUT')).toBe(1);
    expect(text).toMatch(/^nxenstored_http_request_duration_seconds_count\{route="\/v1\/node\/\*",method="GET"\} 3$/m);
    expect(text).toMatch(/^nxenstored_http_requests_total\{route="\/v1\/node\/\*",method="GET",status="200"\} 2$/m);
    expect(text).toMatch(/^nxenstored_http_requests_total\{route="\/v1\/node\/\*",method="GET",status="404"\} 1$/m);
    expect(text).toMatch(/^nxenstored_gateway_ops_total\{op="READ",outcome="OK"\} 2$/m);
    expect(text).toMatch(/^nxenstored_gateway_ops_total\{op="READ",outcome="ENOENT"\} 1$/m);
  });
});
