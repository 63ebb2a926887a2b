/**
 * Hosted pages served by the emulator: Checkout (with a `Pay` button that completes the
 * session), invoices (hosted_invoice_url, invoice_pdf) and the billing portal. Plain HTML
 * forms, no scripts or external assets.
 */
import { parseForm } from './params';
import type { RawRequest, RawResponse } from './server';
import type { Obj, Store } from './store';
import { completeCheckoutSession } from './resources/checkout';
import { testTokens } from './resources/payment-methods';
import { portalReplaceCard, portalUpdatesPaymentMethod } from './resources/billing-portal';
import { customerClockTime } from './resources/test-clocks';

function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function money(amount: number, currency: string): string {
  return `${(amount / 100).toFixed(2)} ${String(currency).toUpperCase()}`;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#1a1f36}
table{width:100%;border-collapse:collapse}td{padding:.4rem 0;border-bottom:1px solid #e3e8ee}td.r{text-align:right}
button{background:#635bff;color:#fff;border:0;border-radius:6px;padding:.7rem 1.4rem;font-size:1rem;cursor:pointer}
label{display:block;margin:.6rem 0}input,select{width:100%;padding:.4rem;font-size:1rem}.err{color:#c0123c}.muted{color:#697386}`;

function page(title: string, body: string, status = 200): RawResponse {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
  return { status, headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }, body: html };
}

function redirect(location: string): RawResponse {
  return { status: 303, headers: { Location: location, 'Content-Type': 'text/plain; charset=utf-8' }, body: `Redirecting to ${location}` };
}

function checkoutPage(store: Store, s: Obj, error?: string): RawResponse {
  const rows = (s._lines as Obj[])
    .map((l) => {
      const price = store.get('price', l.price) as Obj;
      const product = store.get('product', price.product);
      const metered = price.recurring?.usage_type === 'metered';
      const every = price.recurring ? ` / ${price.recurring.interval_count > 1 ? `${price.recurring.interval_count} ` : ''}${price.recurring.interval}` : '';
      const amount = metered ? `${money(price.unit_amount, price.currency)} per unit, billed by usage` : `${money(price.unit_amount * l.quantity, price.currency)}${every}`;
      return `<tr><td>${esc(product?.name ?? price.id)}${metered ? '' : ` &times; ${l.quantity}`}</td><td class="r">${esc(amount)}</td></tr>`;
    })
    .join('');
  const trial = s._subscription_data?.trial_period_days ? `<p class="muted">Includes a ${esc(s._subscription_data.trial_period_days)}-day free trial.</p>` : '';
  if (s.status !== 'open') {
    return page('Checkout', `<h1>Checkout</h1><p>This Checkout Session is ${esc(s.status)}.</p>`, 410);
  }
  const needsEmail = !s.customer && !s.customer_email;
  const cards = testTokens()
    .map((t) => `<option value="${t}"${t === 'pm_card_visa' ? ' selected' : ''}>${t}</option>`)
    .join('');
  const body = `<h1>Checkout</h1>
<p class="muted">Stripe emulator &middot; test mode</p>
${error ? `<p class="err" role="alert">${esc(error)}</p>` : ''}
<table>${rows}<tr><td><strong>Total due today</strong></td><td class="r"><strong>${esc(money(s._subscription_data?.trial_period_days ? 0 : s.amount_total, s.currency))}</strong></td></tr></table>
${trial}
<form method="post" action="/checkout/${esc(s.id)}">
${needsEmail ? '<label>Email <input type="email" name="email" value="customer@example.com" required></label>' : `<p>Email: ${esc(s.customer_email ?? store.get('customer', s.customer)?.email ?? '')}</p>`}
<label>Name on card <input type="text" name="name" value="Test Customer"></label>
<label>Test card <select name="card">${cards}</select></label>
${s.allow_promotion_codes ? '<label>Promotion code <input type="text" name="promotion_code" value=""></label>' : ''}
<p><button type="submit">Pay</button></p>
</form>
${s.cancel_url ? `<p><a href="${esc(s.cancel_url)}">Cancel</a></p>` : ''}`;
  return page('Checkout', body);
}

function invoicePage(store: Store, inv: Obj): RawResponse {
  const rows = (inv.lines.data as Obj[]).map((l) => `<tr><td>${esc(l.description)}</td><td class="r">${esc(money(l.amount, inv.currency))}</td></tr>`).join('');
  const body = `<h1>Invoice ${esc(inv.number ?? inv.id)}</h1>
<p>Status: <strong>${esc(inv.status)}</strong></p>
<table>${rows}<tr><td><strong>Amount due</strong></td><td class="r"><strong>${esc(money(inv.amount_due, inv.currency))}</strong></td></tr>
<tr><td>Amount paid</td><td class="r">${esc(money(inv.amount_paid, inv.currency))}</td></tr></table>
<p><a href="/invoice/${esc(inv.id)}/pdf">Download PDF</a></p>`;
  return page(`Invoice ${inv.number ?? inv.id}`, body);
}

function invoicePdf(inv: Obj): RawResponse {
  const text = `Invoice ${inv.number ?? inv.id} - ${money(inv.amount_due, inv.currency)} - ${inv.status}`;
  const content = `BT /F1 14 Tf 50 750 Td (${text.replace(/[()\\]/g, '')}) Tj ET`;
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let pdf = '%PDF-1.4\n';
  const offsets: number[] = [];
  objs.forEach((o, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  pdf += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return { status: 200, headers: { 'Content-Type': 'application/pdf' }, body: pdf };
}

function cardSection(store: Store, ps: Obj, token: string, error?: string): string {
  if (!portalUpdatesPaymentMethod(store, ps)) return '';
  const pmId = store.get('customer', ps.customer)?.invoice_settings.default_payment_method;
  const pm = pmId ? store.get('payment_method', pmId) : undefined;
  const current = pm ? `${esc(pm.card.brand)} ending in ${esc(pm.card.last4)}` : 'none';
  const cards = testTokens().map((t) => `<option value="${t}">${t}</option>`).join('');
  return `<h2>Payment method</h2><p>Default card: ${current}</p>
${error ? `<p class="err" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/billing_portal/${esc(ps.id)}/payment_method?token=${esc(token)}">
<label>New card <select name="card">${cards}</select></label><button type="submit">Update payment method</button></form>`;
}

function portalPage(store: Store, ps: Obj, token: string, cardError?: string): RawResponse {
  const customer = store.get('customer', ps.customer);
  const subs = store.list('subscription').filter((s) => s.customer === ps.customer && !['canceled', 'incomplete_expired'].includes(s.status));
  const rows = subs
    .map((s) => {
      const names = (s._items as Obj[]).map((i) => store.get('product', store.get('price', i.price)?.product)?.name ?? i.price).join(', ');
      const action = s.cancel_at_period_end
        ? `<form method="post" action="/billing_portal/${esc(ps.id)}/renew/${esc(s.id)}?token=${esc(token)}"><button type="submit">Renew plan</button></form>`
        : `<form method="post" action="/billing_portal/${esc(ps.id)}/cancel/${esc(s.id)}?token=${esc(token)}"><button type="submit">Cancel plan</button></form>`;
      return `<tr><td>${esc(names)}<br><span class="muted">${esc(s.status)}${s.cancel_at_period_end ? ' &middot; cancels at period end' : ''}</span></td><td class="r">${action}</td></tr>`;
    })
    .join('');
  const body = `<h1>Billing</h1><p class="muted">Stripe emulator &middot; ${esc(customer?.email ?? ps.customer)}</p>
<table>${rows || '<tr><td>No active subscriptions.</td></tr>'}</table>
${cardSection(store, ps, token, cardError)}
${ps.return_url ? `<p><a href="${esc(ps.return_url)}">Return to ${esc(new URL(ps.return_url).host)}</a></p>` : ''}`;
  return page('Billing portal', body, cardError ? 402 : 200);
}

export function hostedPages(store: Store): (req: RawRequest) => RawResponse | undefined {
  return (req) => {
    const parts = req.path.split('/').filter(Boolean).map(decodeURIComponent);
    const query = parseForm(req.query);
    if (parts[0] === 'checkout' && parts[1]) {
      const s = store.get('checkout.session', parts[1]);
      if (!s) return page('Checkout', '<h1>Not found</h1><p>No such Checkout Session.</p>', 404);
      if (req.method === 'GET') return checkoutPage(store, s);
      if (req.method === 'POST') {
        if (s.status !== 'open') return checkoutPage(store, s);
        const form = parseForm(req.body.toString('utf8'));
        const complete = () => completeCheckoutSession(store, s, { email: form.email, card: form.card, name: form.name, promotionCode: form.promotion_code });
        // A session for a customer on a test clock completes at the clock's time.
        const error = store.atTime(customerClockTime(store, s.customer), complete);
        if (error) return { ...checkoutPage(store, s, error), status: 402 };
        if (s.success_url) return redirect(String(s.success_url).split('{CHECKOUT_SESSION_ID}').join(s.id));
        return page('Payment complete', '<h1>Thanks!</h1><p>Your payment is complete.</p>');
      }
    }
    if (parts[0] === 'invoice' && parts[1]) {
      const inv = store.get('invoice', parts[1]);
      if (!inv) return page('Invoice', '<h1>Not found</h1>', 404);
      return parts[2] === 'pdf' ? invoicePdf(inv) : invoicePage(store, inv);
    }
    if (parts[0] === 'billing_portal' && parts[1]) {
      const ps = store.get('billing_portal.session', parts[1]);
      const token = String(query.token ?? '');
      if (!ps || !ps.url.endsWith(`token=${token}`)) return page('Billing portal', '<h1>Not found</h1>', 404);
      const at = customerClockTime(store, ps.customer);
      if (req.method === 'POST' && parts[2] === 'payment_method') {
        const error = store.atTime(at, () => portalReplaceCard(store, ps, String(parseForm(req.body.toString('utf8')).card ?? '')));
        if (error) return portalPage(store, ps, token, error);
        return redirect(`/billing_portal/${ps.id}?token=${encodeURIComponent(token)}`);
      }
      if (req.method === 'POST' && (parts[2] === 'cancel' || parts[2] === 'renew') && parts[3]) {
        const sub = store.get('subscription', parts[3]);
        if (sub && sub.customer === ps.customer) {
          store.atTime(at, () => store.transaction(() => {
            const cancel = parts[2] === 'cancel';
            const prev = { cancel_at_period_end: sub.cancel_at_period_end, cancel_at: sub.cancel_at, canceled_at: sub.canceled_at };
            sub.cancel_at_period_end = cancel;
            sub.cancel_at = cancel ? sub._items[0].current_period_end : null;
            sub.canceled_at = cancel ? store.now() : null;
            sub.cancellation_details = { comment: null, feedback: null, reason: cancel ? 'cancellation_requested' : null };
            store.emit('customer.subscription.updated', sub, prev);
          }));
        }
        return redirect(`/billing_portal/${ps.id}?token=${encodeURIComponent(token)}`);
      }
      return portalPage(store, ps, token);
    }
    if (req.path === '/' || req.path === '') {
      return page('Stripe emulator', '<h1>Stripe emulator</h1><p>Point the Stripe SDK here (host, port, protocol http) with any <code>sk_test_</code> key.</p>');
    }
    return undefined;
  };
}
