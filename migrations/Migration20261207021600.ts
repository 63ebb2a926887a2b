import { Migration } from '@mikro-orm/migrations';

/**
 * The usage ledger's hourly rollup. A statement trigger keeps `usage_hourly` equal to the sum of
 * `usage_events` per subscription, meter and UTC hour, inside every statement that inserts or
 * deletes rows, so no code path can forget it. Rows are never updated in the columns the rollup
 * sums (the forwarder only moves `state`), so no update trigger is needed. Upserts run in key
 * order: concurrent statements touching the same hours wait for one another, never deadlock.
 *
 * The trigger is created before the backfill, in the same transaction: its lock on usage_events
 * keeps inserts out until both are committed, so no row is counted twice or missed. An hour whose
 * rows are all deleted keeps a row of zeros, which sums to nothing.
 */
export class Migration20261207021600 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "usage_hourly" ("subscription_id" uuid not null, "meter" text not null, "hour" timestamptz not null, "quantity" double precision not null, "events" bigint not null, constraint "usage_hourly_pkey" primary key ("subscription_id", "meter", "hour"));`);

    this.addSql(`create function usage_hourly_add() returns trigger language plpgsql as $$
begin
  insert into usage_hourly as h (subscription_id, meter, hour, quantity, events)
  select subscription_id, meter, date_trunc('hour', occurred_at at time zone 'UTC') at time zone 'UTC', sum(quantity), count(*)
    from new_rows
   group by 1, 2, 3
   order by 1, 2, 3
  on conflict (subscription_id, meter, hour)
  do update set quantity = h.quantity + excluded.quantity, events = h.events + excluded.events;
  return null;
end $$;`);
    this.addSql(`create function usage_hourly_remove() returns trigger language plpgsql as $$
begin
  update usage_hourly h
     set quantity = h.quantity - o.quantity, events = h.events - o.events
    from (select subscription_id, meter, date_trunc('hour', occurred_at at time zone 'UTC') at time zone 'UTC' as hour, sum(quantity) as quantity, count(*) as events
            from old_rows group by 1, 2, 3 order by 1, 2, 3) o
   where h.subscription_id = o.subscription_id and h.meter = o.meter and h.hour = o.hour;
  return null;
end $$;`);
    this.addSql(`create trigger usage_events_hourly_insert after insert on usage_events referencing new table as new_rows for each statement execute function usage_hourly_add();`);
    this.addSql(`create trigger usage_events_hourly_delete after delete on usage_events referencing old table as old_rows for each statement execute function usage_hourly_remove();`);

    this.addSql(`insert into usage_hourly (subscription_id, meter, hour, quantity, events)
      select subscription_id, meter, date_trunc('hour', occurred_at at time zone 'UTC') at time zone 'UTC', sum(quantity), count(*)
        from usage_events group by 1, 2, 3;`);

    this.addSql(`create index "usage_events_pending_subscription_idx" on "usage_events" ("subscription_id", "meter", "occurred_at") include ("quantity", "created_at") where "state" = 'pending';`);
    this.addSql(`create index "usage_events_failed_subscription_idx" on "usage_events" ("subscription_id", "meter", "occurred_at") include ("quantity") where "state" = 'failed';`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "usage_events_failed_subscription_idx";`);
    this.addSql(`drop index if exists "usage_events_pending_subscription_idx";`);
    this.addSql(`drop trigger if exists usage_events_hourly_delete on usage_events;`);
    this.addSql(`drop trigger if exists usage_events_hourly_insert on usage_events;`);
    this.addSql(`drop function if exists usage_hourly_remove();`);
    this.addSql(`drop function if exists usage_hourly_add();`);
    this.addSql(`drop table if exists "usage_hourly";`);
  }
}
