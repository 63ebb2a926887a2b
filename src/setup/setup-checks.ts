import { Client } from 'pg';
import { BillingError } from '../common/errors';
import { parsePriceMap } from '../config/price-map';
import { isLiveKey, STRIPE_SECRET_KEY_PATTERN as SECRET_KEY, WEBHOOK_SECRET_PATTERN as WEBHOOK_SECRET } from '../config/stripe-keys';
import type { StripeGateway } from '../stripe/stripe.gateway';
import { maskDatabaseUrl, maskSecret } from './mask';

/** The result of one check, worded for the person running setup. */
export interface CheckResult {
  level: 'ok' | 'warn' | 'error';
  message: string;
}

export type KeyMode = 'test' | 'live';


export function secretKeyProblem(key: string): string | null {
  const value = key.trim();
  if (!value) return 'The Stripe secret key is empty.';
  if (/^pk_(test|live)_/.test(value)) return 'That is a publishable key (pk_…); Tollgate needs the secret key (sk_test_…, sk_live_…) or a restricted key (rk_…).';
  if (/^whsec_/.test(value)) return 'That is a webhook signing secret (whsec_…); the Stripe secret key starts with sk_test_, sk_live_ or rk_.';
  if (!SECRET_KEY.test(value)) return `The Stripe secret key must start with sk_test_, sk_live_ or rk_test_/rk_live_ (got a value of ${value.length} characters).`;
  return null;
}

export function webhookSecretProblem(secret: string): string | null {
  const value = secret.trim();
  if (!value) return 'The webhook signing secret is empty.';
  if (SECRET_KEY.test(value)) return 'That is a Stripe API key; the webhook signing secret starts with whsec_ (Dashboard > Webhooks, or `stripe listen`).';
  if (!WEBHOOK_SECRET.test(value)) return 'The webhook signing secret must start with whsec_.';
  return null;
}

export function databaseUrlProblem(url: string): string | null {
  try {
    const parsed = new URL(url.trim());
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') return 'DATABASE_URL must be a postgres:// URL.';
    return null;
  } catch {
    return 'DATABASE_URL must be a postgres:// URL such as postgres://user:password@127.0.0.1:5432/tollgate.';
  }
}

export function priceMapProblem(raw: string): string | null {
  const parsed = parsePriceMap(raw);
  return parsed.ok ? null : `STRIPE_PRODUCT_PRICE_MAP: ${parsed.problems.join('; ')} (use starter=price_…,pro=price_… or {"starter":"price_…"}).`;
}

export function keyMode(key: string): KeyMode {
  return isLiveKey(key) ? 'live' : 'test';
}

/**
 * A live key outside production charges real cards from a development machine (and the app
 * refuses it unless ALLOW_LIVE_KEYS=true); a test key in production takes no real payments.
 */
export function modeWarning(key: string, env: { NODE_ENV?: string; ALLOW_LIVE_KEYS?: string }): string | null {
  const production = env.NODE_ENV === 'production';
  const mode = keyMode(key);
  if (mode === 'live' && !production) {
    const allowed = /^(1|true|yes|on)$/i.test(env.ALLOW_LIVE_KEYS ?? '');
    return `${maskSecret(key)} is a LIVE key but NODE_ENV is ${env.NODE_ENV ?? 'development'}: real cards would be charged.${allowed ? '' : ' The app refuses it outside production unless ALLOW_LIVE_KEYS=true.'}`;
  }
  if (mode === 'test' && production) return `${maskSecret(key)} is a TEST key but NODE_ENV is production: no real payment will be taken.`;
  return null;
}

/** Connects to the database and says what is there. */
export async function checkDatabase(url: string): Promise<CheckResult> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  const where = maskDatabaseUrl(url);
  try {
    await client.connect();
  } catch (error) {
    return { level: 'error', message: `Cannot connect to ${where}: ${scrub((error as Error).message, url)}` };
  }
  try {
    const info = await client.query<{ version: string; db: string }>(`select current_setting('server_version') as version, current_database() as db`);
    const tables = await client.query<{ n: string }>(`select count(*) as n from information_schema.tables where table_schema = 'public'`);
    const migrations = await client
      .query<{ n: string }>(`select count(*) as n from mikro_orm_migrations`)
      .then((r) => Number(r.rows[0].n))
      .catch(() => null);
    const { version, db } = info.rows[0];
    const n = Number(tables.rows[0].n);
    const contents =
      migrations !== null
        ? `Tollgate's schema with ${migrations} migration${migrations === 1 ? '' : 's'} applied`
        : n === 0
          ? 'an empty database (migrations run at the first start)'
          : `${n} table${n === 1 ? '' : 's'} but no Tollgate migrations yet`;
    return { level: 'ok', message: `Connected to PostgreSQL ${version}, database "${db}" at ${where}: ${contents}.` };
  } catch (error) {
    return { level: 'error', message: `Connected to ${where} but could not inspect it: ${scrub((error as Error).message, url)}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Proves the key works with the cheapest authenticated read: a price list filtered to a lookup
 * key nobody uses (one request, an empty answer).
 */
export async function verifyStripeKey(gateway: StripeGateway, key: string): Promise<CheckResult> {
  try {
    await gateway.listPrices({ lookupKeys: ['tollgate_setup_check'] });
    const where = gateway.mode === 'emulator' ? 'the Stripe API at STRIPE_API_BASE' : `Stripe (${gateway.mode} mode)`;
    return { level: 'ok', message: `${maskSecret(key)} works: ${where} answered.` };
  } catch (error) {
    const cause = (error as { cause?: { type?: string; statusCode?: number } }).cause;
    if (cause?.type === 'StripeAuthenticationError' || cause?.statusCode === 401) {
      return { level: 'error', message: `Stripe rejected ${maskSecret(key)}: the key is invalid, revoked or for another account.` };
    }
    if (cause?.type === 'StripePermissionError' || cause?.statusCode === 403) {
      return { level: 'error', message: `${maskSecret(key)} lacks permission to read prices; a restricted key needs read and write access to products and prices.` };
    }
    const message = error instanceof BillingError ? error.message : (error as Error).message;
    return { level: 'error', message: `Could not verify ${maskSecret(key)} with Stripe: ${scrub(message, key)}` };
  }
}

function scrub(message: string, secret: string): string {
  return secret ? message.split(secret).join('***') : message;
}
