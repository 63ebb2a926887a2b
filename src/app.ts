import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import type { MikroORM } from '@mikro-orm/postgresql';
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { GraphQLError } from 'graphql';
import { BillingError } from './common/errors';
import { metricsHandler } from './common/metrics';
import type { AppConfig } from './config/env';
import type { StripeGateway } from './stripe/stripe.gateway';
import type { AuthUser, GraphQLContext } from './graphql/context';
import { createErrorFormatter } from './graphql/errors';
import { catalogCacheFor } from './billing/catalog/catalog-cache';
import { CatalogResponseCache } from './graphql/response-cache';
import { createLoaders, type Loaders } from './graphql/loaders';
import { playgroundPlugin } from './graphql/playground';
import { requestScope } from './graphql/request-scope';
import { createSchema } from './graphql/schema';
import { graphqlCors, metricsAccess, securityHeaders } from './security/http-security';
import { boundedDocumentStore, boundedPersistedQueries } from './security/bounded-memory';
import { MutationRateLimiter } from './security/mutation-rate-limiter';
import { aliasLimitRule, depthLimitRule } from './security/query-limits';
import { securityPlugin } from './security/security.plugin';

export interface AppDeps {
  config: AppConfig;
  orm: MikroORM;
  log: Logger;
  /** A DisabledStripeGateway when billing is disabled. */
  gateway: StripeGateway;
  /** Pre-filled in the playground's headers in local mode. */
  devToken?: string;
  /** Resolves the caller from the request; null when anonymous. Throws a BillingError for a bad token. */
  authenticate?: (req: Request) => Promise<AuthUser | null>;
  /** The Stripe webhook route, mounted with a raw body parser before anything parses JSON. */
  webhookHandler?: RequestHandler;
}

export interface App {
  express: express.Express;
  apollo: ApolloServer<GraphQLContext>;
  stop(): Promise<void>;
}

/**
 * The context of one GraphQL request. Its EntityManager fork and loaders are made on first use:
 * a request answered from the catalog cache, or refused before execution, needs neither.
 */
class RequestContext implements GraphQLContext {
  private fork?: GraphQLContext['em'];
  private batchLoaders?: Loaders;

  constructor(
    private readonly orm: MikroORM,
    readonly user: AuthUser | null,
    readonly config: AppConfig,
    readonly gateway: StripeGateway,
    readonly log: Logger,
  ) {}

  get rootEm(): GraphQLContext['rootEm'] {
    return this.orm.em;
  }

  get em(): GraphQLContext['em'] {
    return (this.fork ??= this.orm.em.fork());
  }

  get loaders(): Loaders {
    return (this.batchLoaders ??= createLoaders(this.orm.em, () => this.em));
  }
}

function jsonError(status: number, code: string, message: string) {
  return { status, body: { errors: [{ message, extensions: { code } }] } };
}

/** Builds the HTTP application: routes in order (webhook raw route, health, metrics, /graphql). */
export async function createApp(deps: AppDeps): Promise<App> {
  const { config, orm, log } = deps;
  const { security } = config;
  const limiter = (keyPrefix: string, pointsPerMinute: number) =>
    pointsPerMinute > 0 ? MutationRateLimiter.create({ keyPrefix, pointsPerMinute, store: security.rateLimitStore, orm, log }) : null;
  const rateLimiter = await limiter('mutation', security.mutationsPerMinute);
  const usageLimiter = await limiter('usage', security.usagePerMinute);
  const catalogAnswers = new CatalogResponseCache(() => catalogCacheFor(orm.em));
  const schema = await createSchema();
  const validationRules = [depthLimitRule(security.maxDepth), aliasLimitRule(security.maxAliases)];
  const documents = boundedDocumentStore();
  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    // Shutdown is ordered by the server module (http, Apollo, ORM, database), not by Apollo's own signal handlers.
    stopOnTerminationSignals: false,
    formatError: createErrorFormatter(log, { hideSuggestions: !config.introspection }),
    // Parsed documents and persisted query texts are kept within a budget of bytes, so many
    // distinct large texts cannot grow the heap without bound.
    documentStore: documents.store,
    persistedQueries: { cache: boundedPersistedQueries() },
    // Both are Apollo's defaults, stated so a change of default cannot turn them off unnoticed.
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    validationRules,
    plugins: [
      config.playground ? playgroundPlugin({ devToken: deps.devToken }) : ApolloServerPluginLandingPageDisabled(),
      securityPlugin({ maxComplexity: security.maxComplexity, rateLimiter, usageLimiter }),
      documents.plugin,
      catalogAnswers.plugin(),
      // Apollo's default cache-control plugin visits every resolved field to compute a
      // Cache-Control header from @cacheControl hints; the schema has none.
      ApolloServerPluginCacheControlDisabled(),
    ],
  });
  await apollo.start();

  const app = express();
  app.disable('x-powered-by');
  // Express would hash every answer for an ETag; only catalog answers are worth revalidating,
  // and the catalog cache gives those an ETag of its own (from the answer it keeps).
  app.set('etag', false);
  app.set('trust proxy', false);
  app.use(securityHeaders({ playground: config.playground }));

  // The webhook route reads raw bytes: the signature is computed over them, so no JSON parser may run first.
  if (deps.webhookHandler) {
    app.post('/webhooks/stripe', express.raw({ type: () => true, limit: config.limits.webhookBody }), deps.webhookHandler);
  }

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    try {
      await Promise.race([
        orm.em.getConnection().execute('select 1'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('database check timed out')), 2000).unref()),
      ]);
      res.json({ status: 'ready', database: 'up' });
    } catch (error) {
      log.warn({ err: error }, 'readiness check failed');
      res.status(503).json({ status: 'unavailable', database: 'down' });
    }
  });

  app.get('/metrics', metricsAccess({ token: config.metricsToken, production: config.nodeEnv === 'production' }), metricsHandler());

  app.use('/graphql', graphqlCors(config.corsOrigins));
  // Apollo answers every request to /graphql: the middleware before it only parses the body and
  // opens a GET request's scope (its Host, for the landing page); none of them answers.
  app.use(
    '/graphql',
    express.json({ limit: config.limits.graphqlBody }),
    requestScope(),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        let user: AuthUser | null;
        try {
          user = deps.authenticate ? await deps.authenticate(req) : null;
        } catch (error) {
          // A bad token fails the whole request with 401, before any resolver runs.
          if (error instanceof BillingError) {
            throw new GraphQLError(error.message, { extensions: { code: error.code, http: { status: 401 } } });
          }
          throw error;
        }
        return new RequestContext(orm, user, config, deps.gateway, log);
      },
    }),
  );

  app.use(function notFound(_req, res) {
    const { status, body } = jsonError(404, 'NOT_FOUND', 'No such route');
    res.status(status).json(body);
  });

  // Errors from body parsers and anything thrown outside Apollo: a coded JSON answer, never a stack.
  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    const status = typeof error?.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
    if (status === 500) log.error({ err: error }, 'unhandled error');
    const code =
      status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 401 ? 'UNAUTHENTICATED' : status === 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST';
    const message =
      status === 413
        ? 'Request body is too large'
        : status === 500
          ? 'Internal server error'
          : error?.type === 'entity.parse.failed'
            ? 'Request body is not valid JSON'
            : typeof error?.expose === 'boolean' && error.expose
              ? String(error.message)
              : 'Bad request';
    if (res.headersSent) return;
    res.status(status).json(jsonError(status, code, message).body);
  };
  app.use(onError);

  return { express: app, apollo, stop: () => apollo.stop() };
}
