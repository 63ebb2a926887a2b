import { Migration } from '@mikro-orm/migrations';

/**
 * Recording under a hard limit in one round trip. `usage_used` is the usage of a subscription's
 * meter since a time: the `usage_hourly` rollup from the UTC hour the time falls in, less the
 * rows of that hour before the time, less what Stripe refused for good. It is the one definition
 * that `viewer.limits` and the limit check share. The rows it reads are those of the hour before
 * the period began (usage of the previous period), never the period's own: a period that began
 * within the hour, whose events are all in that hour, costs no more than any other. It is
 * PL/pgSQL so that its statement is planned once per connection (a SQL function's body is planned
 * again on every call before PostgreSQL 18). `usage_insert_under_limit` locks the limit's counter row, reads the usage
 * and the keys already recorded, and inserts the rows that fit, in order; a row over the limit is
 * answered `refused` with the usage it met, a row whose key is recorded (earlier, or by an
 * earlier row of the call) is neither counted nor inserted. It is VOLATILE on purpose: in READ
 * COMMITTED each of its statements takes a new snapshot, so the reads after the lock see every
 * row committed by the writer that held it before.
 */
export class Migration20261207160000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`
create or replace function usage_used(p_subscription uuid, p_meter text, p_since timestamptz) returns float8
language plpgsql stable as $$
declare
  v_first_hour timestamptz := date_trunc('hour', p_since at time zone 'UTC') at time zone 'UTC';
begin
  return (coalesce((select sum(h.quantity) from usage_hourly h
                     where h.subscription_id = p_subscription and h.meter = p_meter and h.hour >= v_first_hour), 0)
        - coalesce((select sum(e.quantity) from usage_events e
                     where e.subscription_id = p_subscription and e.meter = p_meter and e.occurred_at >= v_first_hour and e.occurred_at < p_since), 0)
        - coalesce((select sum(e.quantity) from usage_events e
                     where e.state = 'failed' and e.subscription_id = p_subscription and e.meter = p_meter and e.occurred_at >= p_since), 0))::float8;
end
$$;`);
    this.addSql(`
create or replace function usage_insert_under_limit(
  p_customer uuid, p_subscription uuid, p_meter text, p_period_start timestamptz, p_limit float8,
  p_ids uuid[], p_quantities float8[], p_occurred_ats timestamptz[], p_keys text[], p_hashes text[])
returns table (row_id uuid, outcome text, used_before float8)
language plpgsql volatile as $$
declare
  v_used float8;
  v_taken text[];
  v_accepted int[] := '{}';
  i int;
begin
  insert into usage_limit_counters (subscription_id, meter, period_start, created_at)
  values (p_subscription, p_meter, p_period_start, now())
  on conflict do nothing;
  perform 1 from usage_limit_counters
   where subscription_id = p_subscription and meter = p_meter and period_start = p_period_start
   for update;
  select coalesce(array_agg(e.idempotency_key), '{}') into v_taken
    from usage_events e where e.customer_id = p_customer and e.idempotency_key = any(p_keys);
  v_used := usage_used(p_subscription, p_meter, p_period_start);
  for i in 1 .. coalesce(cardinality(p_ids), 0) loop
    continue when p_keys[i] = any(v_taken);
    if v_used + p_quantities[i] > p_limit then
      row_id := p_ids[i];
      outcome := 'refused';
      used_before := v_used;
      return next;
      continue;
    end if;
    v_taken := v_taken || p_keys[i];
    v_accepted := v_accepted || i;
    v_used := v_used + p_quantities[i];
  end loop;
  return query
    insert into usage_events
      (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, attempts, next_attempt_at, created_at)
    select p_ids[a], p_customer, p_subscription, p_meter, p_quantities[a], p_occurred_ats[a], p_keys[a], p_hashes[a], 'pending', 0, now(), now()
      from unnest(v_accepted) as a
     order by p_keys[a], a
    on conflict (customer_id, idempotency_key) do nothing
    returning id, 'inserted'::text, null::float8;
end
$$;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists usage_insert_under_limit(uuid, uuid, text, timestamptz, float8, uuid[], float8[], timestamptz[], text[], text[]);`);
    this.addSql(`drop function if exists usage_used(uuid, text, timestamptz);`);
  }

}
