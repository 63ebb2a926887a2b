import 'reflect-metadata';
import { loadConfig } from '../config/env';
import { withDatabase } from '../db/database';
import { initORM, migrate } from '../db/orm';

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the local embedded database). */
async function main() {
  const config = loadConfig();
  await withDatabase(config, async (url) => {
    const orm = await initORM({ url });
    try {
      const applied = await migrate(orm);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the database is up to date');
    } finally {
      await orm.close();
    }
  });
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
