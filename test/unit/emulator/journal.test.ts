import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readJournal, RequestJournal, type JournalRecord } from '../../../src/emulator/journal';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emu-journal-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function record(seq: number): JournalRecord {
  return {
    seq,
    at: 1_800_000_000_000 + seq,
    seed: 'ab'.repeat(16),
    method: 'POST',
    path: '/v1/customers',
    query: '',
    headers: { authorization: 'Bearer sk_test_x', 'content-type': 'application/x-www-form-urlencoded' },
    body: `email=c${seq}%40x.io&name=\u00e9`,
  };
}

function write(file: string, records: JournalRecord[]): void {
  const journal = new RequestJournal(file);
  for (const r of records) journal.append(r);
  journal.close();
}

describe(RequestJournal.name, () => {
  it('appends one line a record, privately, and reads them back exactly', () => {
    const file = path.join(dir, 'state.json.journal');
    write(file, [record(1), record(2), record(3)]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8').split('\n')).toHaveLength(4);
    const read = readJournal(file);
    expect(read.records).toEqual([record(1), record(2), record(3)]);
    expect(read.problem).toBeUndefined();
    expect(read.validBytes).toBe(fs.statSync(file).size);
  });

  it('empties the file on truncate and appends from the start afterwards', () => {
    const file = path.join(dir, 'j');
    const journal = new RequestJournal(file);
    journal.append(record(1));
    journal.truncate();
    expect(fs.statSync(file).size).toBe(0);
    journal.append(record(2));
    journal.close();
    expect(readJournal(file).records).toEqual([record(2)]);
  });
});

describe(readJournal.name, () => {
  it('reads a missing journal as empty', () => {
    expect(readJournal(path.join(dir, 'none'))).toEqual({ records: [], validBytes: 0, tornTail: false });
  });

  it('ignores a last record cut short by a crash and keeps every complete one', () => {
    const file = path.join(dir, 'j');
    write(file, [record(1), record(2), record(3)]);
    const full = fs.readFileSync(file);
    const thirdStart = full.lastIndexOf(0x0a, full.length - 2) + 1;
    for (const cut of [thirdStart + 1, thirdStart + 40, full.length - 2, full.length - 1]) {
      fs.writeFileSync(file, full.subarray(0, cut));
      const read = readJournal(file);
      expect(read.records).toEqual([record(1), record(2)]);
      expect(read.validBytes).toBe(thirdStart);
      expect(read.tornTail).toBe(true);
      expect(read.problem).toMatch(/cut short/);
    }
  });

  it('ignores a last line of garbage (a disk block of zeros after a power cut)', () => {
    const file = path.join(dir, 'j');
    write(file, [record(1)]);
    fs.appendFileSync(file, Buffer.concat([Buffer.alloc(100), Buffer.from('\n')]));
    const read = readJournal(file);
    expect(read.records).toEqual([record(1)]);
    expect(read.tornTail).toBe(true);
  });

  it('stops at a damaged record in the middle, keeping what came before', () => {
    const file = path.join(dir, 'j');
    write(file, [record(1)]);
    fs.appendFileSync(file, '{"seq":2,"broken\n');
    write(file, [record(3)]);
    const read = readJournal(file);
    expect(read.records).toEqual([record(1)]);
    expect(read.tornTail).toBe(false);
    expect(read.problem).toMatch(/unreadable record/);
  });

  it('stops where sequence numbers skip, since the requests after a gap ran on a state it lacks', () => {
    const file = path.join(dir, 'j');
    write(file, [record(1), record(2), record(4)]);
    expect(readJournal(file).records.map((r) => r.seq)).toEqual([1, 2]);
  });
});
