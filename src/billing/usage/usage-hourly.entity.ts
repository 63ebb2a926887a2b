import { Entity, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * Recorded usage per subscription, meter and UTC hour: the sum of the `usage_events` rows of
 * that hour, failed ones included. A statement trigger on `usage_events` keeps it, in the same
 * statement as every insert or delete of rows, whichever code path runs it; the application
 * only reads it. Summaries read whole hours here instead of every row.
 */
@Entity({ tableName: 'usage_hourly' })
export class UsageHourly {
  @PrimaryKey({ type: 'uuid' })
  subscriptionId!: string;

  @PrimaryKey({ type: 'text' })
  meter!: string;

  /** The start of the UTC hour. */
  @PrimaryKey({ type: 'timestamptz' })
  hour!: Date;

  @Property({ type: 'double precision' })
  quantity!: number;

  @Property({ type: 'bigint' })
  events!: string;
}
