import { randomBytes } from 'node:crypto';
import { databaseUrlProblem, modeWarning, priceMapProblem, secretKeyProblem, webhookSecretProblem } from './setup-checks';
import { displayValue } from './mask';

/** What the person running setup chose; undefined leaves a setting as it is. */
export interface SetupAnswers {
  databaseUrl?: string;
  stripeSecretKey?: string;
  webhookSecret?: string;
  priceMap?: string;
}

export interface SetupPlan {
  /** Settings to write into the env file. */
  updates: Record<string, string>;
  /** Wrong input: nothing is written while there is any. */
  problems: string[];
  warnings: string[];
  notes: string[];
}

/**
 * The decisions of setup, free of prompts and files so both the interactive and the flag-driven
 * form share them: validates the answers and derives the settings to write. `effective` is the
 * configuration as the app would see it (environment over the env files).
 */
export function planSetup(
  answers: SetupAnswers,
  effective: Record<string, string | undefined>,
  generateSecret: () => string = () => randomBytes(32).toString('base64url'),
): SetupPlan {
  const plan: SetupPlan = { updates: {}, problems: [], warnings: [], notes: [] };
  const check = (value: string | undefined, key: string, problem: (v: string) => string | null) => {
    if (value === undefined) return;
    const trimmed = value.trim();
    const p = problem(trimmed);
    if (p) plan.problems.push(p);
    else plan.updates[key] = trimmed;
  };
  check(answers.databaseUrl, 'DATABASE_URL', databaseUrlProblem);
  check(answers.stripeSecretKey, 'STRIPE_SECRET_KEY', secretKeyProblem);
  check(answers.webhookSecret, 'STRIPE_WEBHOOK_SECRET', webhookSecretProblem);
  check(answers.priceMap, 'STRIPE_PRODUCT_PRICE_MAP', priceMapProblem);

  const key = plan.updates.STRIPE_SECRET_KEY ?? effective.STRIPE_SECRET_KEY ?? effective.STRIPE_API_KEY;
  if (key && !secretKeyProblem(key)) {
    const warning = modeWarning(key, effective);
    if (warning) plan.warnings.push(warning);
    const webhook = plan.updates.STRIPE_WEBHOOK_SECRET ?? effective.STRIPE_WEBHOOK_SECRET;
    if (!webhook && answers.webhookSecret === undefined) {
      plan.warnings.push('No STRIPE_WEBHOOK_SECRET: the app will not start with a Stripe key until it is set (Dashboard > Webhooks, or `stripe listen`).');
    }
    // Outside local mode the app needs a way to verify tokens; a generated HS256 secret is
    // the simple default, and a team with an identity provider sets AUTH_JWKS_URL instead.
    if (!effective.AUTH_JWT_SECRET && !effective.AUTH_JWKS_URL) {
      plan.updates.AUTH_JWT_SECRET = generateSecret();
      plan.notes.push('AUTH_JWT_SECRET was not set; a new random one is added (use AUTH_JWKS_URL instead for an external identity provider).');
    }
    if (!(plan.updates.DATABASE_URL ?? effective.DATABASE_URL)) {
      plan.warnings.push('A Stripe key without DATABASE_URL: outside local mode the app needs a PostgreSQL server.');
    }
  }
  return plan;
}

/** Lines that say what was written, secrets masked. */
export function describeUpdates(updates: Record<string, string>, edit: { updated: string[]; added: string[]; unchanged: string[] }): string[] {
  return [
    ...edit.updated.map((k) => `  updated ${k} = ${displayValue(k, updates[k])}`),
    ...edit.added.map((k) => `  added   ${k} = ${displayValue(k, updates[k])}`),
    ...edit.unchanged.map((k) => `  kept    ${k} (same value)`),
  ];
}
