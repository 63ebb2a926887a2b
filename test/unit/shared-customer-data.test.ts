import { sharedCustomerData } from '../../src/graphql/response-cache';

describe('sharedCustomerData', () => {
  it('starts a statement at once, and lets calls made meanwhile share the next one', async () => {
    const statements: string[][] = [];
    const releases: (() => void)[] = [];
    const read = sharedCustomerData(async (userIds) => {
      statements.push(userIds);
      await new Promise<void>((resolve) => releases.push(resolve));
      return userIds.filter((id) => id !== 'nobody').map((id) => ({ user_id: id, data: `rows of ${id}` }));
    });
    const first = read('alice');
    await Promise.resolve();
    expect(statements).toEqual([['alice']]);
    const later = [read('bob'), read('alice'), read('nobody'), read('bob')];
    await Promise.resolve();
    // Nothing new starts while the first statement runs: 'alice' again must see what is
    // committed after her first read began, so she is not given that read's answer.
    expect(statements).toHaveLength(1);
    releases.shift()!();
    expect(await first).toBe('rows of alice');
    await new Promise((resolve) => setImmediate(resolve));
    expect(statements[1]).toEqual(['bob', 'alice', 'nobody']);
    releases.shift()!();
    expect(await Promise.all(later)).toEqual(['rows of bob', 'rows of alice', null, 'rows of bob']);
  });

  it('fails every call of a failed statement, and the next call starts afresh', async () => {
    let fail = true;
    const read = sharedCustomerData(async (userIds) => {
      if (fail) throw new Error('database down');
      return userIds.map((id) => ({ user_id: id, data: id }));
    });
    await expect(Promise.all([read('a'), read('b')])).rejects.toThrow('database down');
    fail = false;
    expect(await read('a')).toBe('a');
  });
});
