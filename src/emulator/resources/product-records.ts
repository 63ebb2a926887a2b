/** A product's record: create and look up (shared by the products and prices routes). */
import { invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, bool, str } from '../params';
import type { Obj, Store } from '../store';

export function getProduct(store: Store, id: string, param = 'product'): Obj {
  const p = store.get('product', id);
  if (!p) throw noSuch('product', id, param);
  return p;
}

export function createProduct(store: Store, p: Obj): Obj {
  const name = str(p, 'name');
  if (!name) throw invalidRequest('Missing required param: name.', 'name', 'parameter_missing');
  const id = str(p, 'id') ?? newId('prod_', 14);
  if (store.get('product', id)) {
    throw invalidRequest(`Product already exists.`, 'id', 'resource_already_exists');
  }
  const now = store.now();
  const product: Obj = {
    id,
    object: 'product',
    active: bool(p, 'active') ?? true,
    created: now,
    default_price: null,
    description: str(p, 'description') ?? null,
    images: [],
    livemode: false,
    marketing_features: [],
    metadata: applyMetadata({}, p),
    name,
    package_dimensions: null,
    shippable: null,
    statement_descriptor: null,
    tax_code: null,
    tax_details: null,
    type: 'service',
    unit_label: str(p, 'unit_label') ?? null,
    updated: now,
    url: str(p, 'url') ?? null,
  };
  store.insert('product', product);
  store.emit('product.created', product);
  return product;
}
