import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

// No Docker engine runs where the tests run, so the file is checked as data.
describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(path.resolve(__dirname, '../../docker-compose.yml'), 'utf8'));

  it('runs PostgreSQL and the app, wired through DATABASE_URL', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'app']));
    const pg = compose.services.postgres;
    expect(pg.ports).toContain('5432:5432');
    const app = compose.services.app;
    expect(app.ports).toContain('4000:4000');
    const url = new URL(app.environment.DATABASE_URL);
    expect(url.hostname).toBe('postgres');
    expect(url.username).toBe(pg.environment.POSTGRES_USER);
    expect(url.password).toBe(pg.environment.POSTGRES_PASSWORD);
    expect(url.pathname).toBe(`/${pg.environment.POSTGRES_DB}`);
    expect(app.depends_on.postgres.condition).toBe('service_healthy');
  });

  it('requires the Stripe and auth secrets from the environment instead of shipping any', () => {
    const env = compose.services.app.environment;
    expect(env.NODE_ENV).toBe('production');
    for (const name of ['STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'AUTH_JWT_SECRET']) {
      expect(env[name]).toMatch(new RegExp(`^\\$\\{${name}:\\?`));
    }
  });

  it('offers stripe-mock as an optional profile', () => {
    expect(compose.services['stripe-mock'].profiles).toEqual(['stripe-mock']);
    expect(compose.services['stripe-mock'].ports).toContain('12111:12111');
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
