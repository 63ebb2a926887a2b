import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126082514 } from './Migration20261126082514';
import { Migration20261207020653 } from './Migration20261207020653';
import { Migration20261207021500 } from './Migration20261207021500';
import { Migration20261207021600 } from './Migration20261207021600';
import { Migration20261207021700 } from './Migration20261207021700';
import { Migration20261207040000 } from './Migration20261207040000';
import { Migration20261207100000 } from './Migration20261207100000';
import { Migration20261207140000 } from './Migration20261207140000';
import { Migration20261207160000 } from './Migration20261207160000';

/** Every migration, in order. `npm run migration:create` writes a new file; add it here. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261126082514', class: Migration20261126082514 },
  { name: 'Migration20261207020653', class: Migration20261207020653 },
  { name: 'Migration20261207021500', class: Migration20261207021500 },
  { name: 'Migration20261207021600', class: Migration20261207021600 },
  { name: 'Migration20261207021700', class: Migration20261207021700 },
  { name: 'Migration20261207040000', class: Migration20261207040000 },
  { name: 'Migration20261207100000', class: Migration20261207100000 },
  { name: 'Migration20261207140000', class: Migration20261207140000 },
  { name: 'Migration20261207160000', class: Migration20261207160000 },
];
