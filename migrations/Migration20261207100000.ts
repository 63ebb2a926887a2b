import { Migration } from '@mikro-orm/migrations';

/**
 * Dunning and test clocks: an invoice's payment attempts, next retry and whether the customer
 * must authenticate; a subscription's latest invoice and the trial end Stripe announced; the test
 * clock a customer is on, and each such clock's time.
 */
export class Migration20261207100000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "invoices" add column "attempt_count" int not null default 0, add column "next_payment_attempt" timestamptz null, add column "action_required_attempt" int null;`);
    this.addSql(`alter table "subscriptions" add column "latest_stripe_invoice_id" text null, add column "trial_end_notice_for" timestamptz null;`);
    this.addSql(`alter table "customers" add column "stripe_test_clock_id" text null;`);
    this.addSql(`create table "test_clocks" ("stripe_test_clock_id" text not null, "name" text null, "frozen_time" timestamptz not null, "status" text not null, "stripe_synced_at" timestamptz not null, "updated_at" timestamptz not null, constraint "test_clocks_pkey" primary key ("stripe_test_clock_id"));`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "test_clocks" cascade;`);
    this.addSql(`alter table "customers" drop column "stripe_test_clock_id";`);
    this.addSql(`alter table "invoices" drop column "attempt_count", drop column "next_payment_attempt", drop column "action_required_attempt";`);
    this.addSql(`alter table "subscriptions" drop column "latest_stripe_invoice_id", drop column "trial_end_notice_for";`);
  }

}
