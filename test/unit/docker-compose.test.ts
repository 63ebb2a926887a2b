import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '../..');
const SECRETS = { STRIPE_SECRET_KEY: 'sk_test_compose', STRIPE_WEBHOOK_SECRET: 'whsec_compose', AUTH_JWT_SECRET: 'compose-secret-0123456789abcdefghijkl' };

/**
 * Debian's `docker-compose` validates the file offline (`docker-compose config` needs no engine)
 * and prints it resolved; without it the file is read as YAML with anchors and merge keys.
 */
function resolvedCompose(): { compose: any; validatedBy: 'docker-compose' | 'yaml' } {
  const probe = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (probe.status === 0) {
    const out = execFileSync('docker-compose', ['-f', path.join(ROOT, 'docker-compose.yml'), 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...SECRETS },
    });
    return { compose: parse(out), validatedBy: 'docker-compose' };
  }
  return { compose: parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }), validatedBy: 'yaml' };
}

/** `"4000:4000"` as written, or `{published: 4000, target: 4000}` as docker-compose resolves it. */
const portsOf = (service: { ports: unknown[] }) =>
  service.ports.map((p) => (typeof p === 'string' ? p : `${(p as { published: number }).published}:${(p as { target: number }).target}`));

describe('docker-compose.yml', () => {
  const { compose, validatedBy } = resolvedCompose();
  // Before `docker-compose config` substitutes them, secrets read `${NAME:?...}`.
  const secret = (value: string, name: keyof typeof SECRETS) =>
    validatedBy === 'docker-compose' ? expect(value).toBe(SECRETS[name]) : expect(value).toMatch(new RegExp(`^\\$\\{${name}:\\?`));

  it(`is valid (checked by ${validatedBy})`, () => {
    expect(compose.services).toBeDefined();
  });

  it('runs PostgreSQL, the app and a worker, the last two built from the Dockerfile and wired through DATABASE_URL', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'app', 'worker']));
    const pg = compose.services.postgres;
    expect(portsOf(pg)).toContain('5432:5432');
    const { app, worker } = compose.services;
    expect(portsOf(app)).toContain('4000:4000');
    for (const service of [app, worker]) {
      expect(service.build).toBeDefined();
      const url = new URL(service.environment.DATABASE_URL);
      expect(url.hostname).toBe('postgres');
      expect(url.username).toBe(pg.environment.POSTGRES_USER);
      expect(url.password).toBe(pg.environment.POSTGRES_PASSWORD);
      expect(url.pathname).toBe(`/${pg.environment.POSTGRES_DB}`);
      expect(service.depends_on.postgres.condition).toBe('service_healthy');
    }
    expect(app.command).toEqual(['node', 'dist/src/main.js']);
    expect(worker.command).toEqual(['node', 'dist/src/cli/worker.js']);
    // The worker service applies the events; app instances only record them.
    expect(app.environment.WORKER_ENABLED).toBe('false');
  });

  it('requires the Stripe and auth secrets from the environment instead of shipping any', () => {
    for (const service of [compose.services.app, compose.services.worker]) {
      const env = service.environment;
      expect(env.NODE_ENV).toBe('production');
      for (const name of Object.keys(SECRETS) as (keyof typeof SECRETS)[]) secret(env[name], name);
    }
  });

  it('offers stripe-mock as an optional profile', () => {
    expect(compose.services['stripe-mock'].profiles).toEqual(['stripe-mock']);
    expect(portsOf(compose.services['stripe-mock'])).toContain('12111:12111');
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');

  it('builds in stages, ships production dependencies only, and runs node as a non-root user', () => {
    expect(text.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/npm ci --omit=dev/);
    expect(text).toMatch(/RUN npm run build/);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^CMD \["node", "dist\/src\/main\.js"\]$/m);
  });
});

describe('.env.example', () => {
  const text = readFileSync(path.resolve(__dirname, '../../.env.example'), 'utf8');
  const source = readFileSync(path.resolve(__dirname, '../../src/config/env.ts'), 'utf8');

  it('lists every variable the config module reads', () => {
    const schemaBlock = source.slice(source.indexOf('const schema = z.object({'), source.indexOf('});', source.indexOf('const schema = z.object({')));
    const names = [...schemaBlock.matchAll(/^\s{2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]).filter((n) => n !== 'STRIPE_API_KEY');
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) expect(text).toMatch(new RegExp(`^#?\\s?${name}=`, 'm'));
  });
});
