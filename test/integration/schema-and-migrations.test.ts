import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { printedSchema } from '../../src/graphql/print-schema';
import { initORM, migrate } from '../../src/db/orm';
import { createTestDatabase } from '../helpers/database';

describe('committed artefacts', () => {
  it('schema.graphql matches the code (run `npm run schema:emit` after changing the API)', async () => {
    const committed = await readFile(path.resolve(__dirname, '../../schema.graphql'), 'utf8');
    expect(committed).toBe(await printedSchema());
  });

  it('migrations create exactly the schema the entities describe (run `npm run migration:create` after changing an entity)', async () => {
    const db = await createTestDatabase();
    const orm = await initORM({ url: db.url });
    try {
      expect((await migrate(orm)).length).toBeGreaterThan(0);
      const diff = await orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false });
      expect(diff.trim()).toBe('');
      expect(await migrate(orm)).toEqual([]);
    } finally {
      await orm.close();
      await db.drop();
    }
  });
});
