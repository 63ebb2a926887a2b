import type { ApolloServerPlugin } from '@apollo/server';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';

const DEFAULT_QUERY = `# Tollgate: products are public; the other queries need the token in Headers.
query Catalog {
  products {
    code
    name
    prices { id lookupKey currency unitAmount interval usageType meter }
  }
}
`;

/**
 * GraphiQL served from the package itself (no CDN), so it works with no network. In local mode
 * the dev token is put in the headers editor so the first query just works.
 */
export function playgroundPlugin(options: { devToken?: string } = {}): ApolloServerPlugin {
  const headers = options.devToken ? JSON.stringify({ Authorization: `Bearer ${options.devToken}` }, null, 2) : undefined;
  return {
    async serverWillStart() {
      const html = renderGraphiQL({
        title: 'Tollgate GraphQL playground',
        endpoint: '/graphql',
        defaultQuery: DEFAULT_QUERY,
        headers,
        defaultEditorToolsVisibility: headers ? 'headers' : undefined,
        shouldPersistHeaders: false,
      });
      return { async renderLandingPage() { return { html }; } };
    },
  };
}
