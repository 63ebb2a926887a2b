/** Products: create (optional id, default_price_data), retrieve, update, list, delete. */
import { invalidRequest, noSuch } from '../errors';
import { applyMetadata, bool, obj, str, strList } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Store } from '../store';
import { createPrice } from './prices';
import { createProduct, getProduct } from './product-records';
import { diff } from './customers';

export { createProduct, getProduct };

export function registerProducts(router: Router, store: Store): void {
  router.add('POST', '/v1/products', (ctx) => {
    const dpd = obj(ctx.params, 'default_price_data');
    const product = createProduct(store, ctx.params);
    if (dpd) {
      const price = createPrice(store, { ...dpd, product: product.id }, 'default_price_data');
      product.default_price = price.id;
    }
    return out(ctx, product);
  });

  router.add('GET', '/v1/products/:id', (ctx) => out(ctx, getProduct(store, ctx.pathParams.id, 'id')));

  router.add('POST', '/v1/products/:id', (ctx) => {
    const product = getProduct(store, ctx.pathParams.id, 'id');
    const p = ctx.params;
    const before = store.render(product);
    if ('name' in p) {
      const name = str(p, 'name');
      if (!name) throw invalidRequest('You cannot unset the name of a product.', 'name');
      product.name = name;
    }
    for (const f of ['description', 'unit_label', 'url'] as const) if (f in p) product[f] = str(p, f) ?? null;
    const active = bool(p, 'active');
    if (active !== undefined) product.active = active;
    if ('default_price' in p) {
      const dp = str(p, 'default_price');
      if (dp) {
        const price = store.get('price', dp);
        if (!price) throw noSuch('price', dp, 'default_price');
        if (price.product !== product.id) throw invalidRequest('The default price must belong to this product.', 'default_price');
      }
      product.default_price = dp ?? null;
    }
    product.metadata = applyMetadata(product.metadata, p);
    const prev = diff(before, store.render(product));
    if (Object.keys(prev).length) {
      product.updated = store.now();
      store.emit('product.updated', product, prev);
    }
    return out(ctx, product);
  });

  router.add('DELETE', '/v1/products/:id', (ctx) => {
    const product = getProduct(store, ctx.pathParams.id, 'id');
    if (store.list('price').some((pr) => pr.product === product.id)) {
      // Stripe refuses to delete a product that has prices; archive it (active=false) instead.
      throw invalidRequest('This product cannot be deleted because it has one or more user-created prices.', undefined, 'product_has_prices');
    }
    store.remove('product', product.id);
    store.emit('product.deleted', product);
    return { id: product.id, object: 'product', deleted: true };
  });

  router.add('GET', '/v1/products', (ctx) => {
    let items = store.list('product');
    const active = bool(ctx.params, 'active');
    if (active !== undefined) items = items.filter((p) => p.active === active);
    const ids = strList(ctx.params, 'ids');
    if (ids) items = items.filter((p) => ids.includes(p.id));
    return listOut(ctx, items);
  });
}
