/**
 * The floor of webhook ingest: bare Express verifying `Stripe-Signature` on the raw bytes with the
 * official SDK and inserting one row per event into the same PostgreSQL, then answering 200.
 * Nothing more can be done for a delivery that is kept; Tollgate's route does this plus the job.
 * Forked by bench/webhooks.bench.ts; reports its URL over IPC.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import Stripe from 'stripe';
import { onControl, reportReady } from './ipc';

async function main(): Promise<void> {
  const secret = process.env.STRIPE_WEBHOOK_SECRET!;
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_MAX ?? 10) });
  await pool.query(`create table if not exists bench_bare_events (id text primary key, type text not null, payload jsonb not null, received_at timestamptz not null default now())`);
  const stripe = new Stripe('sk_test_bench_bare_webhook');
  const app = express();
  app.post('/webhooks/stripe', express.raw({ type: () => true, limit: '512kb' }), async (req, res) => {
    let event: Stripe.Event;
    try {
      event = stripe.webhooks.constructEvent(req.body as Buffer, req.get('stripe-signature') ?? '', secret);
    } catch {
      res.status(400).json({ error: 'bad signature' });
      return;
    }
    try {
      await pool.query(`insert into bench_bare_events (id, type, payload) values ($1, $2, $3) on conflict (id) do nothing`, [
        event.id,
        event.type,
        JSON.stringify(event),
      ]);
      res.json({ received: true });
    } catch {
      res.status(500).json({ error: 'not recorded' });
    }
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  onControl(
    async (cmd) => {
      if (cmd === 'memory') return process.memoryUsage();
      throw new Error(`unknown command ${cmd}`);
    },
    async () => {
      server.close();
      await pool.end();
    },
  );
  reportReady({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
