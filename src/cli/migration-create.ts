import path from 'node:path';
import { loadConfig } from '../config/env';
import { initORM } from '../db/orm';
import { withDatabase } from '../db/database';

/**
 * Writes a migration for the difference between the entities and the database (which must be
 * fully migrated first): `npm run migration:create`. Then list the new file in migrations/index.ts.
 */
async function main() {
  const config = loadConfig();
  await withDatabase(config, async (url) => {
    const orm = await initORM({ url });
    try {
      await orm.getMigrator().up();
      const result = await orm.getMigrator().createMigration(path.resolve('migrations'), false, process.argv.includes('--initial'));
      console.log(result.fileName ? `wrote migrations/${result.fileName}` : 'entities match the migrations: nothing to write');
    } finally {
      await orm.close();
    }
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
