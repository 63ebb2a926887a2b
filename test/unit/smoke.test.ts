import { Client } from 'pg';
it('reaches the test database', async () => {
  const c = new Client({ connectionString: process.env.TOLLGATE_TEST_PG });
  await c.connect();
  const r = await c.query('select 1 as x');
  expect(r.rows[0].x).toBe(1);
  await c.end();
});
