import { Migration } from '@mikro-orm/migrations';

/** Plan changes: the subscription schedule managing a subscription and the change it holds for later. */
export class Migration20261207021700 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "subscriptions" add column "stripe_schedule_id" text null, add column "pending_change" jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "subscriptions" drop column "stripe_schedule_id", drop column "pending_change";`);
  }

}
