import { freePort, startEmbeddedPostgres } from '../../src/db/embedded-postgres';

/**
 * Runs an embedded PostgreSQL cluster in its own process for tests that stop and restart a
 * database (jest's module sandbox cannot load the ESM-only package in-process).
 * Usage: node scripts/run.cjs test/helpers/embedded-pg-child.ts <dataDir> [port | --first-choice PORT]
 * `--first-choice PORT`: the port chooser offers PORT first, then free ones; the ports it offered
 * are printed after the URL.
 */
async function main() {
  const [dataDir, arg, value] = process.argv.slice(2);
  const offered: number[] = [];
  const choosePort = async () => {
    const port = arg === '--first-choice' && offered.length === 0 ? Number(value) : await freePort();
    offered.push(port);
    return port;
  };
  const port = arg && arg !== '--first-choice' ? Number(arg) : undefined;
  const db = await startEmbeddedPostgres({ dataDir, port, persistent: true, choosePort });
  process.stdout.write(`READY ${db.url} offered=${offered.join(',')}\n`);
  const stop = () => void db.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
