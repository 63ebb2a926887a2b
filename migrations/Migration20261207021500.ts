import { Migration } from '@mikro-orm/migrations';

/** The Stripe object each event is about: the job engine applies events per object. */
export class Migration20261207021500 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "stripe_events" add column "object_type" text null, add column "object_id" text null;`);
    this.addSql(`update "stripe_events" set "object_type" = "payload"->'data'->'object'->>'object', "object_id" = "payload"->'data'->'object'->>'id';`);
    this.addSql(`create index "stripe_events_object_type_object_id_index" on "stripe_events" ("object_type", "object_id");`);
    this.addSql(`create index "stripe_events_stripe_created_at_index" on "stripe_events" ("stripe_created_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "stripe_events_stripe_created_at_index";`);
    this.addSql(`drop index "stripe_events_object_type_object_id_index";`);
    this.addSql(`alter table "stripe_events" drop column "object_type", drop column "object_id";`);
  }

}
