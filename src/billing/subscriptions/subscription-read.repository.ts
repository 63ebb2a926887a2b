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

interface Row {
  id: string;
  status: string;
  quantity: number;
  current_period_start: Date | null;
  current_period_end: Date | null;
  cancel_at_period_end: boolean;
  canceled_at: Date | null;
  trial_end: Date | null;
  created_at: Date;
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
        where c.user_id = $1 and ($2::text is null or s.status = $2)
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
        where s.customer_id = $1 and ($2::text is null or s.status = $2)
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
    currentPeriodStart: row.current_period_start,
    currentPeriodEnd: row.current_period_end,
    cancelAtPeriodEnd: row.cancel_at_period_end,
    canceledAt: row.canceled_at,
    trialEnd: row.trial_end,
    createdAt: row.created_at,
    price: { id: row.price_id },
  };
}
