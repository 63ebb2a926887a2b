import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { projectRoot } from '../common/paths';
import { parsePriceMap } from './price-map';
import { isLiveKey, STRIPE_SECRET_KEY_PATTERN, WEBHOOK_SECRET_PATTERN } from './stripe-keys';

/**
 * The only module that reads the environment. Everything is validated once, at start-up, and
 * every problem is reported in one error so a misconfigured deployment is fixed in one pass.
 */

export interface AppConfig {
  nodeEnv: 'development' | 'test' | 'production';
  /** local: no Stripe key outside production, so the in-process emulator stands in for Stripe. */
  mode: 'local' | 'connected' | 'production';
  host: string;
  port: number;
  dataDir: string;
  /**
   * Local mode: the emulator flushes each journal record to the disk before answering, so what
   * it acknowledged survives a power cut too (a killed process loses nothing either way).
   */
  emulatorFsync: boolean;
  logLevel: string;
  database: { url?: string; poolMax: number };
  billingEnabled: boolean;
  stripe: {
    secretKey?: string;
    /** The first of `webhookSecrets`: what the local emulator signs with. */
    webhookSecret?: string;
    /** Every accepted signing secret, tried in turn (a secret being rolled and its successor). */
    webhookSecrets: string[];
    apiBase?: string;
    priceMap: Record<string, string>;
    timeoutMs: number;
    maxNetworkRetries: number;
    /**
     * The test clock new customers are put on (found or created by name), so `npm run clock`
     * can move their subscriptions through time; undefined: customers live in real time.
     */
    testClock?: string;
  };
  auth: { jwtSecret?: string; jwksUrl?: string; issuer?: string; audience?: string };
  allowedRedirectOrigins: string[];
  corsOrigins: string[];
  playground: boolean;
  introspection: boolean;
  catalogFile: string;
  limits: { graphqlBody: string; webhookBody: string };
  /** Bearer token `/metrics` requires; without one it is open outside production and off in production. */
  metricsToken?: string;
  usageForwarder: { enabled: boolean; intervalMs: number; batchSize: number };
  /** The job engine (graphile-worker) that applies webhook events in the background. */
  worker: {
    /** Run a worker inside this process (`npm run worker` runs one alone). */
    enabled: boolean;
    /** Jobs run at once by one worker process. */
    concurrency: number;
    /** Hard limit of each of the worker's two pools (queue and apply), apart from the API's pool. */
    poolMax: number;
    /** How often the worker looks for jobs that fall due (retries); new jobs arrive by NOTIFY. */
    pollIntervalMs: number;
    /** Attempts of one job before it stays failed for `npm run events:replay`. */
    maxAttempts: number;
    /** Stripe reads per second one worker process allows itself. */
    stripeRequestsPerSecond: number;
    /** Minutes between two catch-up runs (listing `/v1/events` for missed deliveries). */
    catchUpMinutes: number;
    /** A recorded event still unapplied after this long is enqueued again by the catch-up. */
    staleAfterSeconds: number;
    /** A worker silent this long is dead: the jobs it had locked run again. */
    deadAfterSeconds: number;
  };
  /**
   * How far V8 lets the old generation grow past what is live before it collects, in percent
   * (V8's own `--heap-growing-percent`); 0 leaves V8's default, which under load lets a heap of
   * 40 MB live grow to about 200 MB of garbage first.
   */
  heapGrowingPercent: number;
  security: {
    /** Deepest field nesting an operation may use (introspection may go to 15). */
    maxDepth: number;
    /** Highest estimated cost (one per field unless a field declares its own) of an operation. */
    maxComplexity: number;
    /** Most aliased fields one operation may run (fragments count at every spread). */
    maxAliases: number;
    /** Mutation root fields per user per minute; 0 turns the limit off. */
    mutationsPerMinute: number;
    /** Usage events (recordUsage calls, recordUsageBatch events) per user per minute, a budget of their own; 0 turns the limit off. */
    usagePerMinute: number;
    rateLimitStore: 'postgres' | 'memory';
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Values shipped in .env.example; a copied placeholder is treated as missing. */
const PLACEHOLDER = /replace[_-]?me|change[_-]?me|your[_-]|<[^>]+>|^x{3,}$/i;

const bool = (fallback: boolean) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      ctx.addIssue({ code: 'custom', message: `must be true or false, got "${v}"` });
      return z.NEVER;
    });

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const list = z
  .string()
  .optional()
  .transform((v) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean));

const schema = z.object({
  NODE_ENV: z
    .enum(['development', 'test', 'production'], { message: 'must be development, test or production' })
    .optional()
    .default('development'),
  HOST: optionalText,
  PORT: int(4000, 0, 65535),
  DATA_DIR: optionalText,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().default('info'),
  DATABASE_URL: optionalText,
  DATABASE_POOL_MAX: int(10, 1, 200),
  ENABLE_BILLING: bool(true),
  STRIPE_SECRET_KEY: optionalText,
  STRIPE_API_KEY: optionalText,
  STRIPE_WEBHOOK_SECRET: optionalText,
  STRIPE_PRODUCT_PRICE_MAP: optionalText,
  STRIPE_API_BASE: optionalText,
  STRIPE_TIMEOUT_MS: int(20000, 100, 120000),
  STRIPE_MAX_NETWORK_RETRIES: int(2, 0, 10),
  STRIPE_TEST_CLOCK: optionalText,
  ALLOW_LIVE_KEYS: bool(false),
  AUTH_JWT_SECRET: optionalText,
  AUTH_JWKS_URL: optionalText,
  AUTH_ISSUER: optionalText,
  AUTH_AUDIENCE: optionalText,
  ALLOWED_REDIRECT_ORIGINS: list,
  CORS_ORIGINS: list,
  ENABLE_PLAYGROUND: optionalText,
  ENABLE_INTROSPECTION: optionalText,
  CATALOG_FILE: optionalText,
  GRAPHQL_BODY_LIMIT: optionalText,
  WEBHOOK_BODY_LIMIT: optionalText,
  METRICS_TOKEN: optionalText,
  USAGE_FORWARDER_ENABLED: bool(true),
  EMULATOR_FSYNC: bool(false),
  WORKER_ENABLED: bool(true),
  WORKER_CONCURRENCY: int(4, 1, 100),
  WORKER_DB_POOL_MAX: int(4, 1, 100),
  WORKER_POLL_INTERVAL_MS: int(1000, 50, 60000),
  WORKER_MAX_ATTEMPTS: int(12, 1, 100),
  STRIPE_REQUESTS_PER_SECOND: int(20, 1, 10000),
  WEBHOOK_CATCH_UP_MINUTES: int(5, 1, 1440),
  WEBHOOK_STALE_AFTER_SECONDS: int(120, 1, 86400),
  WORKER_DEAD_AFTER_SECONDS: int(60, 3, 86400),
  USAGE_FORWARDER_INTERVAL_MS: int(1000, 10, 600000),
  USAGE_FORWARDER_BATCH_SIZE: int(2000, 1, 10000),
  HEAP_GROWING_PERCENT: int(50, 0, 400),
  GRAPHQL_MAX_DEPTH: int(10, 1, 100),
  GRAPHQL_MAX_COMPLEXITY: int(2500, 1, 1_000_000),
  GRAPHQL_MAX_ALIASES: int(30, 0, 10_000),
  RATE_LIMIT_MUTATIONS_PER_MINUTE: int(60, 0, 1_000_000),
  RATE_LIMIT_USAGE_PER_MINUTE: int(6000, 0, 10_000_000),
  // Redis is not offered: no Redis client ships with the app, and PostgreSQL is already shared by every instance.
  RATE_LIMIT_STORE: z.enum(['postgres', 'memory'], { message: 'must be postgres or memory' }).optional().default('postgres'),
});

export type Env = Record<string, string | undefined>;

/** The clock customers go on by default in local mode (tests opt in by naming their own). */
export const LOCAL_TEST_CLOCK = 'tollgate-local';

/** `STRIPE_TEST_CLOCK`: a clock name, or off / false / none; unset means the local clock in local mode. */
function testClockName(value: string | undefined, localDefault: boolean): string | undefined {
  if (value === undefined) return localDefault ? LOCAL_TEST_CLOCK : undefined;
  return ['off', 'false', 'none', '0', 'no'].includes(value.toLowerCase()) ? undefined : value;
}

/** Reads `.env.local` then `.env` from `cwd` (the first file wins, the real environment wins over both). */
export function readEnvFiles(cwd: string, files = ['.env.local', '.env']): Env {
  const merged: Env = {};
  for (const file of [...files].reverse()) {
    const full = path.join(cwd, file);
    if (existsSync(full)) Object.assign(merged, parseEnv(readFileSync(full, 'utf8')));
  }
  return merged;
}

/** The process environment: what loadConfig reads when not given one. */
export function processEnv(): Env {
  return process.env;
}

/** The settings as loadConfig sees them: the env files under the real environment. */
export function effectiveEnv(cwd: string, files?: string[]): Env {
  return { ...readEnvFiles(cwd, files), ...process.env };
}

function isUrl(value: string, protocols: string[]): boolean {
  try {
    return protocols.includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

export function loadConfig(env: Env = process.env, options: { cwd?: string; envFiles?: string[] } = {}): AppConfig {
  const cwd = options.cwd ?? process.cwd();
  const source: Env = { ...readEnvFiles(cwd, options.envFiles), ...env };
  const problems: string[] = [];
  let parsed = schema.safeParse(source);
  if (!parsed.success) {
    // Report these, then go on with defaults in their place so the cross-field rules below
    // are checked too: one error lists everything.
    const bad = new Set<string>();
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join('.')}: ${issue.message}`);
      bad.add(String(issue.path[0]));
    }
    parsed = schema.safeParse(Object.fromEntries(Object.entries(source).filter(([k]) => !bad.has(k))));
    if (!parsed.success) throw new ConfigError(problems);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const secretKey = e.STRIPE_SECRET_KEY ?? e.STRIPE_API_KEY;
  const mode: AppConfig['mode'] = production ? 'production' : secretKey ? 'connected' : 'local';

  const placeholder = (name: string, value: string | undefined) => {
    if (value !== undefined && PLACEHOLDER.test(value)) {
      problems.push(`${name}: is the placeholder from .env.example; set a real value`);
      return true;
    }
    return false;
  };

  const keyName = e.STRIPE_SECRET_KEY ? 'STRIPE_SECRET_KEY' : 'STRIPE_API_KEY';
  if (mode !== 'local' && e.ENABLE_BILLING) {
    if (!secretKey) problems.push('STRIPE_SECRET_KEY: is required when billing is enabled (alias STRIPE_API_KEY)');
    if (!e.STRIPE_WEBHOOK_SECRET) problems.push('STRIPE_WEBHOOK_SECRET: is required when billing is enabled');
    if (!e.DATABASE_URL) problems.push('DATABASE_URL: is required outside local mode');
  }
  if (production && !e.DATABASE_URL && !e.ENABLE_BILLING) problems.push('DATABASE_URL: is required in production');
  if (secretKey && !placeholder(keyName, secretKey)) {
    if (!STRIPE_SECRET_KEY_PATTERN.test(secretKey)) {
      problems.push(`${keyName}: must start with sk_test_, sk_live_ or rk_ (got a value of ${secretKey.length} characters)`);
    } else if (isLiveKey(secretKey) && !production && !e.ALLOW_LIVE_KEYS) {
      problems.push(`${keyName}: a live key outside NODE_ENV=production is refused; set ALLOW_LIVE_KEYS=true to allow it`);
    }
  }
  // Several secrets, comma-separated, are each tried in turn: a secret rolled in Stripe keeps
  // signing deliveries already under way while the new one takes over.
  const webhookSecrets = (e.STRIPE_WEBHOOK_SECRET ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (e.STRIPE_WEBHOOK_SECRET && !placeholder('STRIPE_WEBHOOK_SECRET', e.STRIPE_WEBHOOK_SECRET)) {
    if (!webhookSecrets.length || webhookSecrets.some((s) => !WEBHOOK_SECRET_PATTERN.test(s))) {
      problems.push('STRIPE_WEBHOOK_SECRET: must start with whsec_');
    }
  }
  if (e.DATABASE_URL && !placeholder('DATABASE_URL', e.DATABASE_URL)) {
    if (!isUrl(e.DATABASE_URL, ['postgres:', 'postgresql:'])) problems.push('DATABASE_URL: must be a postgres:// URL');
  }
  if (e.STRIPE_API_BASE && !isUrl(e.STRIPE_API_BASE, ['http:', 'https:'])) {
    problems.push('STRIPE_API_BASE: must be an http(s) URL such as http://127.0.0.1:12111');
  }
  if (e.AUTH_JWKS_URL && !isUrl(e.AUTH_JWKS_URL, ['http:', 'https:'])) problems.push('AUTH_JWKS_URL: must be an http(s) URL');
  placeholder('AUTH_JWT_SECRET', e.AUTH_JWT_SECRET);
  if (e.METRICS_TOKEN && !placeholder('METRICS_TOKEN', e.METRICS_TOKEN) && e.METRICS_TOKEN.length < 16) {
    problems.push('METRICS_TOKEN: must be at least 16 characters');
  }
  if (e.AUTH_JWT_SECRET && e.AUTH_JWT_SECRET.length < 32) problems.push('AUTH_JWT_SECRET: must be at least 32 characters');
  if (mode !== 'local' && !e.AUTH_JWT_SECRET && !e.AUTH_JWKS_URL) {
    problems.push('AUTH_JWT_SECRET or AUTH_JWKS_URL: one is required outside local mode');
  }
  for (const origin of [...e.ALLOWED_REDIRECT_ORIGINS, ...e.CORS_ORIGINS]) {
    if (!isUrl(origin, ['http:', 'https:']) || new URL(origin).origin !== origin.replace(/\/$/, '')) {
      problems.push(`ALLOWED_REDIRECT_ORIGINS/CORS_ORIGINS: "${origin}" is not an origin like https://app.example.com`);
    }
  }
  const testClock = testClockName(e.STRIPE_TEST_CLOCK, mode === 'local' && e.NODE_ENV !== 'test');
  if (testClock && secretKey && isLiveKey(secretKey)) problems.push('STRIPE_TEST_CLOCK: test clocks exist only in test mode; unset it with a live key');
  if (testClock && testClock.length > 100) problems.push('STRIPE_TEST_CLOCK: a clock name has at most 100 characters');
  const priceMap = parsePriceMap(e.STRIPE_PRODUCT_PRICE_MAP);
  if (!priceMap.ok) for (const p of priceMap.problems) problems.push(`STRIPE_PRODUCT_PRICE_MAP: ${p}`);

  const flag = (name: string, value: string | undefined, fallback: boolean) => {
    if (value === undefined) return fallback;
    const r = bool(fallback).safeParse(value);
    if (!r.success) {
      problems.push(`${name}: must be true or false, got "${value}"`);
      return fallback;
    }
    return r.data;
  };
  const playground = flag('ENABLE_PLAYGROUND', e.ENABLE_PLAYGROUND, !production);
  const introspection = flag('ENABLE_INTROSPECTION', e.ENABLE_INTROSPECTION, !production || playground);

  if (problems.length) throw new ConfigError(problems);

  return {
    nodeEnv: e.NODE_ENV,
    mode,
    host: e.HOST ?? (mode === 'local' ? '127.0.0.1' : '0.0.0.0'),
    port: e.PORT,
    dataDir: path.resolve(cwd, e.DATA_DIR ?? '.data'),
    emulatorFsync: e.EMULATOR_FSYNC,
    logLevel: e.LOG_LEVEL,
    database: { url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX },
    billingEnabled: e.ENABLE_BILLING,
    stripe: {
      secretKey,
      webhookSecret: webhookSecrets[0],
      webhookSecrets,
      apiBase: e.STRIPE_API_BASE,
      priceMap: priceMap.ok ? priceMap.map : {},
      timeoutMs: e.STRIPE_TIMEOUT_MS,
      maxNetworkRetries: e.STRIPE_MAX_NETWORK_RETRIES,
      testClock,
    },
    auth: { jwtSecret: e.AUTH_JWT_SECRET, jwksUrl: e.AUTH_JWKS_URL, issuer: e.AUTH_ISSUER, audience: e.AUTH_AUDIENCE },
    allowedRedirectOrigins: e.ALLOWED_REDIRECT_ORIGINS.map((o) => o.replace(/\/$/, '')),
    corsOrigins: e.CORS_ORIGINS.map((o) => o.replace(/\/$/, '')),
    playground,
    introspection,
    catalogFile: e.CATALOG_FILE ? path.resolve(cwd, e.CATALOG_FILE) : path.join(projectRoot(), 'catalog/default.json'),
    limits: { graphqlBody: e.GRAPHQL_BODY_LIMIT ?? '100kb', webhookBody: e.WEBHOOK_BODY_LIMIT ?? '512kb' },
    metricsToken: e.METRICS_TOKEN,
    heapGrowingPercent: e.HEAP_GROWING_PERCENT,
    usageForwarder: {
      enabled: e.USAGE_FORWARDER_ENABLED,
      intervalMs: e.USAGE_FORWARDER_INTERVAL_MS,
      batchSize: e.USAGE_FORWARDER_BATCH_SIZE,
    },
    worker: {
      enabled: e.WORKER_ENABLED,
      concurrency: e.WORKER_CONCURRENCY,
      poolMax: e.WORKER_DB_POOL_MAX,
      pollIntervalMs: e.WORKER_POLL_INTERVAL_MS,
      maxAttempts: e.WORKER_MAX_ATTEMPTS,
      stripeRequestsPerSecond: e.STRIPE_REQUESTS_PER_SECOND,
      catchUpMinutes: e.WEBHOOK_CATCH_UP_MINUTES,
      staleAfterSeconds: e.WEBHOOK_STALE_AFTER_SECONDS,
      deadAfterSeconds: e.WORKER_DEAD_AFTER_SECONDS,
    },
    security: {
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxComplexity: e.GRAPHQL_MAX_COMPLEXITY,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      mutationsPerMinute: e.RATE_LIMIT_MUTATIONS_PER_MINUTE,
      usagePerMinute: e.RATE_LIMIT_USAGE_PER_MINUTE,
      rateLimitStore: e.RATE_LIMIT_STORE,
    },
  };
}
