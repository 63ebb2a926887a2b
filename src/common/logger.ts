import pino, { type Logger } from 'pino';

/**
 * Paths that may carry secrets. Values under them are replaced before a line is written, so
 * Stripe keys, webhook secrets, tokens and authorization headers never reach the logs.
 */
export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["stripe-signature"]',
  '*.headers.authorization',
  '*.headers["stripe-signature"]',
  'secretKey',
  '*.secretKey',
  'webhookSecret',
  '*.webhookSecret',
  'jwtSecret',
  '*.jwtSecret',
  'token',
  '*.token',
  'password',
  '*.password',
];

/** Redacts secrets that appear inside free text (error messages, URLs). */
export function scrubSecrets(text: string): string {
  return text
    .replace(/\b(sk|rk)_(test|live)_[A-Za-z0-9]+/g, '$1_$2_[redacted]')
    .replace(/\bwhsec_[A-Za-z0-9+/=_]+/g, 'whsec_[redacted]')
    .replace(/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, '[redacted-jwt]')
    .replace(/(postgres(?:ql)?:\/\/[^:/\s]+:)[^@\s]+@/g, '$1[redacted]@');
}

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'tollgate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        err: (error: unknown) => {
          const serialized = pino.stdSerializers.err(error as Error);
          if (serialized?.message) serialized.message = scrubSecrets(serialized.message);
          if (serialized?.stack) serialized.stack = scrubSecrets(serialized.stack);
          return serialized;
        },
      },
      hooks: {
        logMethod(args, method) {
          // Free-text messages get the same scrubbing as error messages.
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as typeof args;
          method.apply(this, scrubbed);
        },
      },
    },
    options.destination,
  );
}
