import { startEmbeddedPostgres } from '../../src/db/embedded-postgres';

/**
 * Runs an embedded PostgreSQL cluster in its own process for tests that stop and restart a
 * database (jest's module sandbox cannot load the ESM-only package in-process).
 * Usage: node scripts/run.cjs test/helpers/embedded-pg-child.ts <dataDir> [port]
 */
async function main() {
  const [dataDir, port] = process.argv.slice(2);
  const db = await startEmbeddedPostgres({ dataDir, port: port ? Number(port) : undefined, persistent: true });
  process.stdout.write(`READY ${db.url}\n`);
  const stop = () => void db.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
