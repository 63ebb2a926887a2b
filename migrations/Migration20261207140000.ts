import { Migration } from '@mikro-orm/migrations';

/**
 * The ledger's (subscription, meter, occurred_at) index carries the quantity, so the usage of a
 * stretch of rows (a limit's or a summary's partial hour) is summed from the index alone.
 */
export class Migration20261207140000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`drop index if exists "usage_events_subscription_id_meter_occurred_at_index";`);
    this.addSql(`create index "usage_events_subscription_id_meter_occurred_at_index" on "usage_events" ("subscription_id", "meter", "occurred_at") include ("quantity");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "usage_events_subscription_id_meter_occurred_at_index";`);
    this.addSql(`create index "usage_events_subscription_id_meter_occurred_at_index" on "usage_events" ("subscription_id", "meter", "occurred_at");`);
  }

}
