import { Migration } from '@mikro-orm/migrations';

export class Migration20261207020653 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "entitlements" ("id" uuid not null, "customer_id" uuid not null, "feature" text not null, "active" boolean not null default false, "source" text null, "stripe_active" boolean not null default false, "catalog_active" boolean not null default false, "stripe_feature_id" text null, "stripe_entitlement_id" text null, "synced_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "entitlements_pkey" primary key ("id"));`);
    this.addSql(`alter table "entitlements" add constraint "entitlements_customer_id_feature_unique" unique ("customer_id", "feature");`);

    this.addSql(`create table "plan_features" ("id" uuid not null, "product_id" uuid not null, "lookup_key" text not null, "name" text not null, "stripe_feature_id" text null, "stripe_product_feature_id" text null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "plan_features_pkey" primary key ("id"));`);
    this.addSql(`alter table "plan_features" add constraint "plan_features_product_id_lookup_key_unique" unique ("product_id", "lookup_key");`);

    this.addSql(`alter table "entitlements" add constraint "entitlements_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "plan_features" add constraint "plan_features_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "entitlements" cascade;`);

    this.addSql(`drop table if exists "plan_features" cascade;`);
  }

}
