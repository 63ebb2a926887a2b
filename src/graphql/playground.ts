import type { ApolloServerPlugin } from '@apollo/server';

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
 *
 * The page (a 9 MB bundle inside @graphql-yoga/render-graphiql) is loaded when it is first asked
 * for, not at start-up: loading it costs the process about 45 MB of memory, which a server whose
 * playground nobody opens should not carry.
 */
export function playgroundPlugin(options: { devToken?: string } = {}): ApolloServerPlugin {
  const headers = options.devToken ? JSON.stringify({ Authorization: `Bearer ${options.devToken}` }, null, 2) : undefined;
  let html: string | undefined;
  const page = () => {
    if (html === undefined) {
      // A synchronous require on first use keeps the 9 MB bundle out of start-up (see above).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { renderGraphiQL } = require('@graphql-yoga/render-graphiql') as typeof import('@graphql-yoga/render-graphiql');
      html = renderGraphiQL({
        title: 'Tollgate GraphQL playground',
        endpoint: '/graphql',
        defaultQuery: DEFAULT_QUERY,
        headers,
        defaultEditorToolsVisibility: headers ? 'headers' : undefined,
        shouldPersistHeaders: false,
      });
    }
    return html;
  };
  return {
    async serverWillStart() {
      // Apollo asks for the landing page once, at start; `html` as a function defers the page
      // itself until a browser first opens it.
      return { async renderLandingPage() { return { html: async () => page() }; } };
    },
  };
}
