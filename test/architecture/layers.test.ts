/**
 * The layering the README describes, checked on the sources: the store and the wire protocol are
 * pure; no folder imports a cycle (the server's handlers get ports, not the daemon); the store
 * and the client library load neither zod nor fastify (a client, or a daemon without `--http`,
 * must not pay for the gateway's packages); the protocol never imports the store.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/daemon.js';
import { code, cycles, importGraph, reaches } from './import-graph.js';

const graph = importGraph(REPO, ['src', 'store', 'protocol', 'server', 'clients']);
const inFolder = (folder: string) => (file: string) => file.startsWith(`${folder}/`);

describe('import graph', () => {
  it('reads every import, type-only ones included', () => {
    // Guards the reader itself: a graph with no edges would pass every check below.
    expect(graph.edges.get('store/index.ts')?.length).toBeGreaterThan(5);
    expect(graph.edges.get('protocol/json/schemas.ts')).toContainEqual({ target: 'zod', typeOnly: false });
    expect([...graph.edges.values()].flat().some((e) => e.typeOnly)).toBe(true);
    expect(cycles({ edges: new Map([['a', [{ target: 'b', typeOnly: true }]], ['b', [{ target: 'a', typeOnly: false }]]]) })).toEqual([['a', 'b']]);
  });

  it.each(['store', 'protocol', 'server', 'clients'])('has no import cycle in %s/, counting import type', (folder) => {
    expect(cycles(graph).filter((c) => c.some(inFolder(folder)))).toEqual([]);
  });

  it.each(['store/index.ts', 'clients/index.ts', 'protocol/index.ts'])('%s loads neither zod nor fastify', (entry) => {
    const loaded = reaches(graph, entry);
    const heavy = ['zod', 'fastify', 'ws', 'pino'].filter((p) => loaded.has(p)).map((p) => `${p} via ${loaded.get(p)!.join(' -> ')}`);
    expect(heavy).toEqual([]);
  });

  it('has the daemon load neither the gateway packages nor zod before its first reply', () => {
    // Issue 16: they were most of a cold start's CPU; the gateway and a live update's take-over
    // (zod for the state file) are `import()`ed when asked for.
    const loaded = reaches(graph, 'src/nxenstored.ts', true);
    const heavy = ['zod', 'fastify', 'ws', '@fastify/static'].filter((p) => loaded.has(p)).map((p) => `${p} via ${loaded.get(p)!.join(' -> ')}`);
    expect(heavy).toEqual([]);
    // Guards the check: they are still there, behind import().
    const all = reaches(graph, 'src/nxenstored.ts');
    expect(['zod', 'fastify', 'ws'].filter((p) => !all.has(p))).toEqual([]);
  });

  it('keeps the protocol and the store apart from the server, and the protocol from the store', () => {
    const across = [...graph.edges]
      .filter(([file]) => inFolder('store')(file) || inFolder('protocol')(file))
      .flatMap(([file, edges]) => edges.filter((e) => /^(server|src|clients)\//.test(e.target) || (inFolder('protocol')(file) && inFolder('store')(e.target))).map((e) => `${file} -> ${e.target}`));
    expect(across).toEqual([]);
  });
});

describe('Node internals', () => {
  it('are reached only through server/transport/node-internals.ts', () => {
    // Private fields and deprecated bindings change between Node lines: one module to check on a
    // new Node, each accessor with its public-API fallback beside it.
    const internal = /\b_handle\b|_readableState|_writableState|process\.binding|internalBinding/;
    const users = [...graph.edges.keys()].filter((f) => f !== 'server/transport/node-internals.ts' && internal.test(code(readFileSync(join(REPO, f), 'utf8'))));
    expect(users).toEqual([]);
    expect(internal.test(readFileSync(join(REPO, 'server/transport/node-internals.ts'), 'utf8'))).toBe(true);
  });
});
