import { scrubSecrets } from './secrets';
import pino, { type Logger } from 'pino';
import { scrubLogValue } from './log-scrubber';

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

export { scrubSecrets };

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'tollgate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Every value of every line is scrubbed, not only the redact paths: secrets turn up under
      // names and depths no path list foresees (log-scrubber.ts).
      formatters: { log: (object) => scrubLogValue(object, scrubSecrets) as Record<string, unknown> },
      serializers: {
        // formatters.log has already turned Errors into scrubbed plain objects; serializing those
        // again would relabel them as type "Object".
        err: (error: unknown) => scrubLogValue(error instanceof Error ? pino.stdSerializers.err(error) : error, scrubSecrets),
      },
      hooks: {
        logMethod(args, method) {
          // Free-text messages get the same scrubbing as error messages.
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as typeof args;
          // `log.error(err)` without a message: pino would copy err.message into msg unscrubbed.
          if (scrubbed.length === 1 && scrubbed[0] instanceof Error) scrubbed.push(scrubSecrets(scrubbed[0].message));
          method.apply(this, scrubbed);
        },
      },
    },
    options.destination,
  );
}
