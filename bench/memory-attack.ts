/**
 * `npm run bench:memory [-- --texts 2000 --kb 95 --concurrency 10 --no-build]`
 *
 * The memory attack: anonymous requests, each with a distinct query text of about 95 KB, so no
 * cache can serve one from another. A third are valid catalog queries padded with a comment
 * (parsed, validated and kept by Apollo's document store, which also holds the text through
 * the document's locations), a third valid `recordUsage` mutations without a token (parsed,
 * validated, refused UNAUTHENTICATED), a third texts that do not parse. Tollgate runs compiled,
 * in local mode, as a child process (bench/servers/tollgate.ts) whose RSS is sampled throughout;
 * the run fails when the peak reaches 200 MB. Prints the figures and writes them to
 * bench/results/<timestamp>-memory.json.
 */
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startChild, withPeakRss, type ServerChild } from './lib/child';

const MAX_RSS_MB = 200;

interface Args {
  texts: number;
  kb: number;
  concurrency: number;
  build: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { texts: 2000, kb: 95, concurrency: 10, build: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = () => Number(argv[++i]);
    if (flag === '--texts') args.texts = next();
    else if (flag === '--kb') args.kb = next();
    else if (flag === '--concurrency') args.concurrency = next();
    else if (flag === '--no-build') args.build = false;
    else throw new Error(`unknown option ${flag} (--texts, --kb, --concurrency, --no-build)`);
  }
  return args;
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);

/** The i-th attack text: distinct, about `kb` KB. */
function attackText(i: number, kb: number, salt: string): string {
  const padding = `# ${salt}-${i} ${'x'.repeat(kb * 1024 - 200)}\n`;
  switch (i % 3) {
    case 0:
      return `${padding}{ products { code name prices { id unitAmount } } }`;
    case 1:
      return `${padding}mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id } }`;
    default:
      return `${padding}{ products { code `;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = path.join(__dirname, '..');
  const resultsDir = path.join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const logFile = path.join(resultsDir, `${stamp}-memory.log`);
  const work = mkdtempSync(path.join(os.tmpdir(), 'tollgate-memory-'));
  chmodSync(work, 0o755);
  let buildDir: string | undefined;
  if (args.build) {
    process.stderr.write('compiling the app and bench servers (bench/tsconfig.json)...\n');
    execSync(`"${process.execPath}" "${require.resolve('typescript/bin/tsc')}" -p bench/tsconfig.json`, { cwd: root, stdio: 'inherit' });
    buildDir = path.join(resultsDir, 'build');
  }
  let tollgate: ServerChild | undefined;
  try {
    tollgate = await startChild('tollgate', 'bench/servers/tollgate.ts', {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TMPDIR: process.env.TMPDIR,
        NODE_ENV: 'development',
        PORT: '0',
        DATA_DIR: path.join(work, 'data'),
        LOG_LEVEL: 'warn',
        AUTH_JWT_SECRET: randomBytes(32).toString('hex'),
        STRIPE_WEBHOOK_SECRET: `whsec_${randomBytes(24).toString('hex')}`,
      },
      logFile,
      buildDir,
    });
    const url = `${tollgate.info.url as string}/graphql`;
    const atRest = await tollgate.request<NodeJS.MemoryUsage>('memory');
    const salt = randomBytes(4).toString('hex');
    const statuses: Record<string, number> = {};
    const started = performance.now();
    const { peakRssBytes } = await withPeakRss(tollgate.pid, async () => {
      let next = 0;
      const worker = async () => {
        while (next < args.texts) {
          const i = next++;
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: attackText(i, args.kb, salt), variables: { input: { meter: 'api_calls', quantity: 1 } } }),
          });
          await res.arrayBuffer();
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: args.concurrency }, worker));
    });
    const seconds = (performance.now() - started) / 1000;
    const after = await tollgate.request<NodeJS.MemoryUsage>('memory');
    const report = {
      startedAt: stamp,
      texts: args.texts,
      kbPerText: args.kb,
      concurrency: args.concurrency,
      seconds: Math.round(seconds * 10) / 10,
      statuses,
      rssMb: { atRest: mb(atRest.rss), peak: mb(peakRssBytes), after: mb(after.rss) },
      heapUsedMb: { atRest: mb(atRest.heapUsed), after: mb(after.heapUsed) },
      loadAverage: os.loadavg(),
      target: { maxRssMb: MAX_RSS_MB, met: mb(peakRssBytes) < MAX_RSS_MB },
    };
    writeFileSync(path.join(resultsDir, `${stamp}-memory.json`), `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (!report.target.met) process.exitCode = 1;
  } finally {
    await tollgate?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});
