import { randomUUID } from 'node:crypto';
import { IdentifierLog } from '../../src/emulator/identifier-log';

describe(IdentifierLog.name, () => {
  test('finds every identifier it was given, with its latest time, through growth', () => {
    const log = new IdentifierLog();
    const ids = Array.from({ length: 20_000 }, (_, i) => (i % 3 === 0 ? randomUUID() : `id-${i}`));
    ids.forEach((id, i) => log.set(id, 1_700_000_000 + i));
    expect(log.size).toBe(ids.length);
    ids.forEach((id, i) => expect(log.get(id)).toBe(1_700_000_000 + i));
    expect(log.get('id-20000')).toBeUndefined();
    expect(log.has('')).toBe(false);
    log.set(ids[5], 42);
    expect(log.get(ids[5])).toBe(42);
    expect(log.size).toBe(ids.length);
    const entries = new Map(log.entries());
    expect(entries.size).toBe(ids.length);
    expect(entries.get(ids[5])).toBe(42);
  });

  test('tells apart identifiers that differ in length, case or non-ASCII characters', () => {
    const log = new IdentifierLog();
    const ids = ['', 'a', 'A', 'aa', 'é', 'e\u0301', '日本語', '😀', 'x'.repeat(5000)];
    ids.forEach((id, i) => log.set(id, i));
    ids.forEach((id, i) => expect(log.get(id)).toBe(i));
    expect(new Map(log.entries())).toEqual(new Map(ids.map((id, i) => [id, i])));
  });

  test('its bytes load into another log; a record cut short at the end is dropped', () => {
    const a = new IdentifierLog();
    // Long identifiers, so that records fill several blocks and some block ends are skipped.
    const long = (i: number) => `evt-${i}-${'x'.repeat(100 + (i % 250))}`;
    for (let i = 0; i < 9000; i++) a.set(long(i), i);
    const middle = a.byteLength;
    expect(middle).toBeGreaterThan(2 * 1024 * 1024);
    a.set(long(7), 7_000); // a later acceptance of the same identifier
    a.set('late', 1);
    a.set('x'.repeat(2_000_000), 2); // kept by digest
    const all = Buffer.concat(a.bytes());
    expect(all.length).toBe(a.byteLength);

    const b = new IdentifierLog();
    b.load(Buffer.concat([all, Buffer.from([9, 0, 0])]));
    expect(b.size).toBe(9002);
    expect(b.get(long(7))).toBe(7_000);
    expect(b.get(long(8999))).toBe(8_999);
    expect(b.get('late')).toBe(1);
    expect(b.get('x'.repeat(2_000_000))).toBe(2);
    expect(b.byteLength).toBe(a.byteLength);
    // What a save appends after `middle` is the rest of the same bytes.
    expect(Buffer.concat([Buffer.concat(a.bytes()).subarray(0, middle), ...a.bytes(middle)])).toEqual(all);

    const c = new IdentifierLog();
    c.load(all.subarray(0, middle + 5));
    expect(c.size).toBe(9000);
    expect(c.get(long(7))).toBe(7);
    expect(c.get('late')).toBeUndefined();
    c.set('after', 3);
    expect(c.get('after')).toBe(3);
    expect(c.get(long(100))).toBe(100);
  });

  test('clear empties it and moves to a new generation', () => {
    const log = new IdentifierLog();
    log.set('x', 1);
    const generation = log.generation;
    log.clear();
    expect(log.size).toBe(0);
    expect(log.byteLength).toBe(0);
    expect(log.get('x')).toBeUndefined();
    expect(log.generation).not.toBe(generation);
  });
});
