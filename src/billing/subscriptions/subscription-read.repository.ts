import type { EntityManager } from '@mikro-orm/postgresql';
import { rawQuery } from '../../db/raw-query';

/** A subscription as the API reads it: the columns its GraphQL type shows, and its price. */
export interface SubscriptionView {
  id: string;
  status: string;
  quantity: number;
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  trialEnd: Date | null;
  createdAt: Date;
  price: { id: string };
}

/** The ORM has the driver hand timestamps over as text; read on their own they may be either. */
type Timestamp = Date | string;

function date(value: Timestamp): Date;
function date(value: Timestamp | null): Date | null;
function date(value: Timestamp | null): Date | null {
  return value === null || value instanceof Date ? value : new Date(value);
}

interface Row {
  id: string;
  status: string;
  quantity: number;
  current_period_start: Timestamp | null;
  current_period_end: Timestamp | null;
  cancel_at_period_end: boolean;
  canceled_at: Timestamp | null;
  trial_end: Timestamp | null;
  created_at: Timestamp;
  price_id: string;
}

const COLUMNS = `s.id, s.status, s.quantity, s.current_period_start, s.current_period_end, s.cancel_at_period_end,
  s.canceled_at, s.trial_end, s.created_at, s.price_id`;

/**
 * The read path of `subscriptions`, `viewer.subscriptions` and the like: one parameterised
 * statement straight to the driver. Listing a customer's subscriptions is the most repeated
 * authenticated read, and through the ORM (query building, entity hydration, the identity map)
 * it cost several times the statement itself; these rows are only read and mapped to the API.
 */
export class SubscriptionReadRepository {
  constructor(private readonly em: EntityManager) {}

  /** The subscriptions of the customer of `userId` (none when it has no customer yet), newest first. */
  async listForUser(userId: string, status?: string | null): Promise<SubscriptionView[]> {
    const rows = await rawQuery<Row>(
      this.em,
      `select ${COLUMNS} from subscriptions s join customers c on c.id = s.customer_id
        where c.user_id = $1 and ($2::text is null or s.status = $2::text)
        order by s.created_at desc, s.id asc`,
      [userId, status ?? null],
    );
    return rows.map(toView);
  }

  /** The subscriptions of `customerId`, newest first. */
  async listForCustomer(customerId: string, status?: string | null): Promise<SubscriptionView[]> {
    const rows = await rawQuery<Row>(
      this.em,
      `select ${COLUMNS} from subscriptions s
        where s.customer_id = $1 and ($2::text is null or s.status = $2::text)
        order by s.created_at desc, s.id asc`,
      [customerId, status ?? null],
    );
    return rows.map(toView);
  }
}

function toView(row: Row): SubscriptionView {
  return {
    id: row.id,
    status: row.status,
    quantity: row.quantity,
    currentPeriodStart: date(row.current_period_start),
    currentPeriodEnd: date(row.current_period_end),
    cancelAtPeriodEnd: row.cancel_at_period_end,
    canceledAt: date(row.canceled_at),
    trialEnd: date(row.trial_end),
    createdAt: date(row.created_at),
    price: { id: row.price_id },
  };
}
