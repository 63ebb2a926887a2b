import type { Logger } from 'pino';
import type { AppConfig } from '../config/env';
import { StripeSdkGateway } from './stripe-sdk.gateway';

/**
 * The gateway every entry point builds from the configuration: the server in connected mode and
 * the commands (usage:forward, events:replay, catalog:sync, setup). `overrides` replaces the
 * key and API base, as local mode does to point the same SDK at the in-process emulator.
 */
export function gatewayFromConfig(
  config: AppConfig,
  options: { log?: Logger; secretKey?: string; apiBase?: string; webhookSecret?: string } = {},
): StripeSdkGateway {
  const secretKey = options.secretKey ?? config.stripe.secretKey;
  if (!secretKey) throw new Error('STRIPE_SECRET_KEY is not set');
  return new StripeSdkGateway({
    secretKey,
    apiBase: options.apiBase ?? config.stripe.apiBase,
    webhookSecret: options.webhookSecret ?? config.stripe.webhookSecret,
    timeoutMs: config.stripe.timeoutMs,
    maxNetworkRetries: config.stripe.maxNetworkRetries,
    logger: options.log?.child({ component: 'stripe' }),
    customerTestClock: config.stripe.testClock,
  });
}
