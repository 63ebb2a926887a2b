/**
 * Schemas the app creates outside MikroORM's entities. The schema generator is told to leave
 * them alone, so a schema diff never offers to drop them.
 */
export const RATE_LIMIT_SCHEMA = 'tollgate_rate_limits';
