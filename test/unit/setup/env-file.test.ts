import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { formatEnvValue, updateEnvText, writeFileAtomic } from '../../../src/setup/env-file';

describe('updateEnvText', () => {
  const original = ['# header', 'A=1 # why A', '', 'export B="two words"', "C='{\"x\":1}'", 'A=2', '# footer'].join('\n') + '\n';

  it('replaces the value of the assignment that wins, keeping its prefix and trailing comment', () => {
    const edit = updateEnvText(original, { A: '3', B: 'three' });
    expect(edit.text).toBe(['# header', 'A=1 # why A', '', 'export B=three', "C='{\"x\":1}'", 'A=3', '# footer'].join('\n') + '\n');
    expect(edit).toMatchObject({ updated: ['A', 'B'], added: [], unchanged: [] });
  });

  it('keeps a trailing comment on an updated line', () => {
    expect(updateEnvText('PORT=4100 # the port\n', { PORT: '4200' }).text).toBe('PORT=4200 # the port\n');
  });

  it('appends new keys at the end and leaves the text alone when nothing changes', () => {
    expect(updateEnvText(original, { D: 'new' }).text).toBe(`${original}D=new\n`);
    expect(updateEnvText('X=1', { Y: '2' }).text).toBe('X=1\nY=2\n');
    expect(updateEnvText('', { Y: '2' }).text).toBe('Y=2\n');
    const same = updateEnvText(original, { C: '{"x":1}' });
    expect(same).toMatchObject({ text: original, unchanged: ['C'] });
  });

  it('keeps Windows line endings', () => {
    expect(updateEnvText('A=1\r\nB=2\r\n', { B: '3', C: '4' }).text).toBe('A=1\r\nB=3\r\nC=4\r\n');
  });

  it.each([
    ['plain_value-1.2:3/4@5'],
    ['{"starter":"price_1","pro":"price_2"}'],
    ['postgres://u:p%40ss@h:5432/db?sslmode=require'],
    ['has spaces and # hash'],
    ["it's"],
    ['a"b\'c'],
    ['whsec_abc+/='],
  ])('writes %s so that the env parser reads it back unchanged', (value) => {
    const text = updateEnvText('# c\n', { K: value }).text;
    expect(parseEnv(text).K).toBe(value);
  });

  it('refuses values that cannot be written on one line', () => {
    expect(() => formatEnvValue('a\nb')).toThrow(TypeError);
  });
});

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-atomic-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('replaces the file with mode 0600 and leaves no temporary file', async () => {
    const file = path.join(dir, '.env.local');
    await writeFile(file, 'OLD=1\n', { mode: 0o644 });
    await writeFileAtomic(file, 'NEW=1\n');
    expect(await readFile(file, 'utf8')).toBe('NEW=1\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['.env.local']);
  });

  it('leaves the target untouched when the write fails', async () => {
    const file = path.join(dir, 'missing-dir', '.env.local');
    await expect(writeFileAtomic(file, 'X=1\n')).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });
});
