import { describe, expect, it } from 'vitest';
import {
  parseDecimal,
  parseDirectory,
  parseDirectoryPart,
  parseOk,
  parseWatchEvent,
  replyPayload,
  requestPayload,
} from './messages.js';
import { argsN, flagArg, oneArg, splitArgs, writeArgs } from './payload.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const text = (buf: Buffer): string => buf.toString('latin1');

describe('requestPayload', () => {
  it('lays out the one-path requests as `path\\0`', () => {
    const { read, directory, getPerms, mkdir, rm } = requestPayload;
    for (const build of [read, directory, getPerms, mkdir, rm]) {
      expect(text(build('/a/b'))).toBe('/a/b\0');
    }
  });

  it('leaves the WRITE value unterminated and byte-exact (spec §7.2)', () => {
    expect(text(requestPayload.write('/a', 'x\0y'))).toBe('/a\0x\0y');
    expect(text(requestPayload.write('/a', ''))).toBe('/a\0');
    expect([...requestPayload.write('p', Buffer.from([0xff, 0, 0x80]))]).toEqual([0x70, 0, 0xff, 0, 0x80]);
  });

  it('lays out multi-argument requests', () => {
    expect(text(requestPayload.setPerms('/a', ['n0', 'r5']))).toBe('/a\0n0\0r5\0');
    expect(text(requestPayload.watch('/a', 'tok'))).toBe('/a\0tok\0');
    expect(text(requestPayload.unwatch('/a', 'tok'))).toBe('/a\0tok\0');
    expect(text(requestPayload.introduce(3, 2n ** 60n, 17))).toBe('3\x001152921504606846976\x0017\0');
    expect(text(requestPayload.setTarget(4, 3))).toBe('4\x003\0');
    expect(text(requestPayload.directoryPart('/a', 120))).toBe('/a\x00120\0');
    expect(text(requestPayload.control('quota', 'set', 'nodes', '2000'))).toBe('quota\0set\0nodes\x002000\0');
  });

  it('lays out the domid requests', () => {
    const { getDomainPath, release, resume, isDomainIntroduced } = requestPayload;
    for (const build of [getDomainPath, release, resume, isDomainIntroduced]) {
      expect(text(build(12))).toBe('12\0');
    }
  });

  it('sends libxenstore’s empty string where the payload is ignored', () => {
    expect(text(requestPayload.transactionStart())).toBe('\0');
    expect(text(requestPayload.resetWatches())).toBe('\0');
  });

  it('lays out TRANSACTION_END as T or F', () => {
    expect(text(requestPayload.transactionEnd(true))).toBe('T\0');
    expect(text(requestPayload.transactionEnd(false))).toBe('F\0');
  });

  it('lays out the optional arguments of the feature and quota requests (spec §7.17, §7.18)', () => {
    expect(requestPayload.getFeature().length).toBe(0);
    expect(text(requestPayload.getFeature(5))).toBe('5\0');
    expect(text(requestPayload.setFeature(5, 12))).toBe('5\x0012\0');
    expect(requestPayload.getQuota().length).toBe(0);
    expect(text(requestPayload.getQuota('nodes'))).toBe('nodes\0');
    expect(text(requestPayload.getQuota('nodes', 5))).toBe('5\0nodes\0');
    expect(text(requestPayload.setQuota('nodes', 100))).toBe('nodes\x00100\0');
    expect(text(requestPayload.setQuota('nodes', 100, 5))).toBe('5\0nodes\x00100\0');
  });

  it('is read back by the server-side parsers', () => {
    expect(oneArg(requestPayload.read('/x'))).toBe('/x');
    expect(writeArgs(requestPayload.write('/x', 'v\0w'))).toEqual({ path: '/x', value: 'v\0w' });
    expect(argsN(requestPayload.watch('/x', 't'), 2)).toEqual(['/x', 't']);
    expect(splitArgs(requestPayload.setPerms('/x', ['b1', 'r2', 'w3']), 16)).toEqual(['/x', 'b1', 'r2', 'w3']);
    expect(flagArg(requestPayload.transactionEnd(false))).toBe(false);
  });
});

describe('reply parsers', () => {
  it('parseOk accepts exactly OK\\0', () => {
    expect(parseOk(replyPayload.ok())).toBe(true);
    expect(parseOk(b('OK'))).toBe(false);
    expect(parseOk(b('KO\0'))).toBe(false);
  });

  it('parseDecimal reads `<n>\\0`', () => {
    expect(parseDecimal(replyPayload.decimal(42))).toBe(42);
    expect(parseDecimal(b('4294967295\0'))).toBe(4294967295);
    for (const s of ['42', '', '\0', '-1\0', 'x\0', '4\x002\0']) expect(parseDecimal(b(s))).toBeUndefined();
  });

  it('parseDirectory: zero-length payload is no children', () => {
    expect(parseDirectory(replyPayload.list([]))).toEqual([]);
    expect(parseDirectory(replyPayload.list(['a', 'b']))).toEqual(['a', 'b']);
    expect(parseDirectory(b('a\0b'))).toBeUndefined();
  });

  it('parseDirectory takes as many entries as a full payload holds', () => {
    const names = Array.from({ length: 2048 }, () => 'x');
    expect(parseDirectory(replyPayload.list(names))).toHaveLength(2048);
  });

  it('parseDirectoryPart reads the generation, the names and the end marker (spec §7.6)', () => {
    expect(parseDirectoryPart(b('17\0a\0b\0\0'))).toEqual({ generation: '17', names: ['a', 'b'], done: true });
    expect(parseDirectoryPart(b('17\0a\0b\0'))).toEqual({ generation: '17', names: ['a', 'b'], done: false });
    expect(parseDirectoryPart(b('17\0\0'))).toEqual({ generation: '17', names: [], done: true });
    expect(parseDirectoryPart(b('17\0'))).toEqual({ generation: '17', names: [], done: false });
    for (const s of ['', '17', '17\0a\0\0b\0', '17\0a']) expect(parseDirectoryPart(b(s))).toBeUndefined();
  });

  it('parseWatchEvent reads `epath\\0token\\0` (spec §8.3)', () => {
    expect(parseWatchEvent(replyPayload.watchEvent('/a/b', 'tok'))).toEqual({ path: '/a/b', token: 'tok' });
    expect(parseWatchEvent(b('/a\0'))).toBeUndefined();
    expect(parseWatchEvent(b('/a\0t\0x\0'))).toBeUndefined();
  });

  it('lays out the other replies', () => {
    expect(text(replyPayload.flag(true))).toBe('T\0');
    expect(flagArg(replyPayload.flag(false))).toBe(false);
    expect(text(replyPayload.string('/local/domain/3'))).toBe('/local/domain/3\0');
  });
});
