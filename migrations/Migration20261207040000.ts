import { Migration } from '@mikro-orm/migrations';

/** Usage limits: each plan's limits per meter (from the catalog) and the rows usage under a hard limit locks. */
export class Migration20261207040000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "plan_limits" ("id" uuid not null, "product_id" uuid not null, "meter" text not null, "limit" double precision not null, "kind" text not null, "period" text not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "plan_limits_pkey" primary key ("id"));`);
    this.addSql(`alter table "plan_limits" add constraint "plan_limits_product_id_meter_unique" unique ("product_id", "meter");`);

    this.addSql(`create table "usage_limit_counters" ("subscription_id" uuid not null, "meter" text not null, "period_start" timestamptz not null, "created_at" timestamptz not null, constraint "usage_limit_counters_pkey" primary key ("subscription_id", "meter", "period_start"));`);

    this.addSql(`alter table "plan_limits" add constraint "plan_limits_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "plan_limits" cascade;`);

    this.addSql(`drop table if exists "usage_limit_counters" cascade;`);
  }

}
