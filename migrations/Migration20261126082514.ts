import { Migration } from '@mikro-orm/migrations';

export class Migration20261126082514 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "customers" ("id" uuid not null, "user_id" text not null, "email" text null, "stripe_customer_id" text null, "livemode" boolean not null default false, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "customers_pkey" primary key ("id"));`);
    this.addSql(`alter table "customers" add constraint "customers_user_id_unique" unique ("user_id");`);
    this.addSql(`alter table "customers" add constraint "customers_stripe_customer_id_unique" unique ("stripe_customer_id");`);

    this.addSql(`create table "meters" ("id" uuid not null, "event_name" text not null, "display_name" text not null, "stripe_meter_id" text null, "aggregation" text not null default 'sum', "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "meters_pkey" primary key ("id"));`);
    this.addSql(`alter table "meters" add constraint "meters_event_name_unique" unique ("event_name");`);
    this.addSql(`alter table "meters" add constraint "meters_stripe_meter_id_unique" unique ("stripe_meter_id");`);

    this.addSql(`create table "products" ("id" uuid not null, "code" text not null, "name" text not null, "description" text null, "active" boolean not null default true, "stripe_product_id" text null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "products_pkey" primary key ("id"));`);
    this.addSql(`alter table "products" add constraint "products_code_unique" unique ("code");`);
    this.addSql(`alter table "products" add constraint "products_stripe_product_id_unique" unique ("stripe_product_id");`);

    this.addSql(`create table "prices" ("id" uuid not null, "product_id" uuid not null, "stripe_price_id" text null, "lookup_key" text null, "currency" text not null, "unit_amount" int null, "interval" text null, "interval_count" int not null default 1, "usage_type" text not null default 'licensed', "meter_id" uuid null, "active" boolean not null default true, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "prices_pkey" primary key ("id"));`);
    this.addSql(`alter table "prices" add constraint "prices_stripe_price_id_unique" unique ("stripe_price_id");`);
    this.addSql(`alter table "prices" add constraint "prices_lookup_key_unique" unique ("lookup_key");`);
    this.addSql(`create index "prices_product_id_index" on "prices" ("product_id");`);

    this.addSql(`create table "checkout_sessions" ("id" uuid not null, "customer_id" uuid not null, "price_id" uuid not null, "quantity" int not null default 1, "mode" text not null, "stripe_session_id" text not null, "url" text null, "status" text not null, "payment_status" text null, "stripe_subscription_id" text null, "expires_at" timestamptz null, "completed_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "checkout_sessions_pkey" primary key ("id"));`);
    this.addSql(`create index "checkout_sessions_customer_id_index" on "checkout_sessions" ("customer_id");`);
    this.addSql(`alter table "checkout_sessions" add constraint "checkout_sessions_stripe_session_id_unique" unique ("stripe_session_id");`);

    this.addSql(`create table "stripe_events" ("id" uuid not null, "stripe_event_id" text not null, "type" text not null, "livemode" boolean not null, "api_version" text null, "payload" jsonb not null, "stripe_created_at" timestamptz not null, "received_at" timestamptz not null, "processed_at" timestamptz null, "status" text not null default 'received', "attempts" int not null default 0, "error" text null, constraint "stripe_events_pkey" primary key ("id"));`);
    this.addSql(`alter table "stripe_events" add constraint "stripe_events_stripe_event_id_unique" unique ("stripe_event_id");`);
    this.addSql(`create index "stripe_events_status_index" on "stripe_events" ("status");`);

    this.addSql(`create table "subscriptions" ("id" uuid not null, "customer_id" uuid not null, "price_id" uuid not null, "stripe_subscription_id" text not null, "status" text not null, "quantity" int not null default 1, "items" jsonb not null, "current_period_start" timestamptz null, "current_period_end" timestamptz null, "cancel_at_period_end" boolean not null default false, "canceled_at" timestamptz null, "trial_end" timestamptz null, "idempotency_key" text null, "stripe_synced_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "subscriptions_pkey" primary key ("id"));`);
    this.addSql(`alter table "subscriptions" add constraint "subscriptions_stripe_subscription_id_unique" unique ("stripe_subscription_id");`);
    this.addSql(`create index "subscriptions_customer_id_status_index" on "subscriptions" ("customer_id", "status");`);
    this.addSql(`alter table "subscriptions" add constraint "subscriptions_customer_id_idempotency_key_unique" unique ("customer_id", "idempotency_key");`);

    this.addSql(`create table "invoices" ("id" uuid not null, "customer_id" uuid not null, "subscription_id" uuid null, "stripe_invoice_id" text not null, "number" text null, "status" text not null, "currency" text not null, "amount_due" int not null, "amount_paid" int not null, "amount_remaining" int not null, "total" int not null, "hosted_invoice_url" text null, "period_start" timestamptz null, "period_end" timestamptz null, "paid_at" timestamptz null, "stripe_created_at" timestamptz not null, "stripe_synced_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "invoices_pkey" primary key ("id"));`);
    this.addSql(`alter table "invoices" add constraint "invoices_stripe_invoice_id_unique" unique ("stripe_invoice_id");`);
    this.addSql(`create index "invoices_customer_id_stripe_created_at_index" on "invoices" ("customer_id", "stripe_created_at");`);

    this.addSql(`create table "usage_events" ("id" uuid not null, "customer_id" uuid not null, "subscription_id" uuid not null, "meter" text not null, "quantity" double precision not null, "occurred_at" timestamptz not null, "idempotency_key" text not null, "request_hash" text not null, "state" text not null default 'pending', "attempts" int not null default 0, "next_attempt_at" timestamptz not null, "last_error" text null, "sent_at" timestamptz null, "created_at" timestamptz not null, constraint "usage_events_pkey" primary key ("id"));`);
    this.addSql(`create index "usage_events_pending_idx" on "usage_events" ("next_attempt_at") where "state" = 'pending';`);
    this.addSql(`create index "usage_events_subscription_id_meter_occurred_at_index" on "usage_events" ("subscription_id", "meter", "occurred_at");`);
    this.addSql(`alter table "usage_events" add constraint "usage_events_customer_id_idempotency_key_unique" unique ("customer_id", "idempotency_key");`);

    this.addSql(`alter table "prices" add constraint "prices_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "prices" add constraint "prices_meter_id_foreign" foreign key ("meter_id") references "meters" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "checkout_sessions" add constraint "checkout_sessions_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade;`);
    this.addSql(`alter table "checkout_sessions" add constraint "checkout_sessions_price_id_foreign" foreign key ("price_id") references "prices" ("id") on update cascade;`);

    this.addSql(`alter table "subscriptions" add constraint "subscriptions_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade;`);
    this.addSql(`alter table "subscriptions" add constraint "subscriptions_price_id_foreign" foreign key ("price_id") references "prices" ("id") on update cascade;`);

    this.addSql(`alter table "invoices" add constraint "invoices_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade;`);
    this.addSql(`alter table "invoices" add constraint "invoices_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "usage_events" add constraint "usage_events_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade;`);
    this.addSql(`alter table "usage_events" add constraint "usage_events_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update cascade;`);
  }

}
