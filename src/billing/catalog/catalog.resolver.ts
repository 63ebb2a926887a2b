import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { toPriceType, toProductType } from './catalog.mapper';
import { CatalogService } from './catalog.service';
import { PriceType, ProductType } from './catalog.type';

@Resolver(() => ProductType)
export class CatalogResolver {
  @Query(() => [ProductType], { description: 'The catalog. Public: no token needed.' })
  async products(
    @Ctx() ctx: GraphQLContext,
    @Arg('includeInactive', () => Boolean, { defaultValue: false }) includeInactive: boolean,
  ): Promise<ProductType[]> {
    const products = await ctx.loaders.catalog.products(includeInactive);
    return products.map(toProductType);
  }

  @Query(() => ProductType, { nullable: true, description: 'One product by id or by plan code.' })
  async product(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID, { nullable: true }) id?: string | null,
    @Arg('code', () => String, { nullable: true }) code?: string | null,
  ): Promise<ProductType | null> {
    const product = await new CatalogService(ctx.em).findProduct({ id, code });
    return product ? toProductType(product) : null;
  }

  @FieldResolver(() => [PriceType])
  async prices(
    @Root() product: ProductType,
    @Ctx() ctx: GraphQLContext,
    @Arg('includeInactive', () => Boolean, { defaultValue: false }) includeInactive: boolean,
  ): Promise<PriceType[]> {
    const loader = includeInactive ? ctx.loaders.allPricesByProduct : ctx.loaders.activePricesByProduct;
    const prices = await loader.load(product.id);
    return prices.map((p) => toPriceType(p, p.meter?.getEntity().eventName ?? null));
  }
}
