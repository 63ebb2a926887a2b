import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126082514 } from './Migration20261126082514';
import { Migration20261207021500 } from './Migration20261207021500';

/** Every migration, in order. `npm run migration:create` writes a new file; add it here. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261126082514', class: Migration20261126082514 },
  { name: 'Migration20261207021500', class: Migration20261207021500 },
];
