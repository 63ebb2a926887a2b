/**
 * Writes `stripe-params.generated.ts`: for each request type named in ROUTE_PARAM_TYPES, the
 * parameters the installed `stripe` SDK declares for it (names, nesting, scalar kinds, enum
 * values, required keys), read from the SDK's TypeScript declarations with the compiler API.
 * Run with `npm run emulator:params` after upgrading `stripe`; a test fails while it is stale.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { ROUTE_PARAM_TYPES } from './routes';
import type { ParamNode } from './validate';

const ROOT = path.resolve(__dirname, '..', '..', '..');
export const GENERATED_FILE = path.join(__dirname, 'stripe-params.generated.ts');
/** Deeper than this, values are taken as they come (Stripe's own trees rarely go further). */
const MAX_DEPTH = 7;

/** Request types the SDK declares but does not re-export from its `Stripe` namespace. */
const DECLARED_IN: Record<string, string> = {
  'V2.Billing.MeterEventStreamCreateParams': 'V2/Billing/MeterEventStream',
};

function typeNames(): string[] {
  return [...new Set(Object.values(ROUTE_PARAM_TYPES).filter((t): t is string => t !== null))].sort();
}

/** The parameter trees of every listed request type, keyed by type name. */
export function buildSpecs(): Record<string, ParamNode> {
  const names = typeNames();
  const virtual = path.join(ROOT, '__emulator_param_types__.ts');
  const imports = Object.entries(DECLARED_IN).map(([n, file], i) => `import type { ${n.split('.')[0]} as D${i} } from './node_modules/stripe/cjs/resources/${file}.js';`);
  const ref = (n: string) => {
    const i = Object.keys(DECLARED_IN).indexOf(n);
    return i < 0 ? `Stripe.${n}` : `D${i}.${n.split('.').slice(1).join('.')}`;
  };
  const source = `import Stripe from 'stripe';\n${imports.join('\n')}\n${names.map((n, i) => `export type T${i} = ${ref(n)};`).join('\n')}\n`;
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, ...rest) =>
    path.resolve(file) === virtual ? ts.createSourceFile(file, source, lang) : getSourceFile(file, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => path.resolve(file) === virtual || fileExists(file);
  const program = ts.createProgram([virtual], options, host);
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(virtual);
  if (!sf) throw new Error('virtual source file missing');
  const aliases = new Map<string, ts.Type>();
  ts.forEachChild(sf, (node) => {
    if (ts.isTypeAliasDeclaration(node)) aliases.set(node.name.text, checker.getTypeAtLocation(node.name));
  });
  const out: Record<string, ParamNode> = {};
  const missing: string[] = [];
  names.forEach((n, i) => {
    const t = aliases.get(`T${i}`);
    if (!t || t.flags & ts.TypeFlags.Any) missing.push(n);
    else out[n] = nodeOf(checker, t, 0);
  });
  if (missing.length) throw new Error(`stripe does not declare ${missing.join(', ')}`);
  return out;
}

function isEmptyLiteral(t: ts.Type): boolean {
  return !!(t.flags & ts.TypeFlags.StringLiteral) && (t as ts.StringLiteralType).value === '';
}

function nodeOf(checker: ts.TypeChecker, type: ts.Type, depth: number): ParamNode {
  const parts = type.isUnion() ? type.types : [type];
  const objects: ts.Type[] = [];
  const literals: string[] = [];
  let hasString = false;
  let hasNumber = false;
  let hasBoolean = false;
  let emptyable = false;
  let openEnum = false;
  for (const p of parts) {
    if (p.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined)) continue;
    if (isEmptyLiteral(p)) {
      emptyable = true;
      continue;
    }
    if (p.flags & ts.TypeFlags.StringLiteral) literals.push((p as ts.StringLiteralType).value);
    else if (p.flags & ts.TypeFlags.BooleanLike) hasBoolean = true;
    else if (p.flags & ts.TypeFlags.NumberLike) hasNumber = true;
    else if (p.flags & ts.TypeFlags.String) hasString = true;
    // OtherString (`string & Record<never, never>`) marks an open enum: Stripe's server still refuses
    // values it does not know, so the listed literals are the accepted ones.
    else if (p.flags & ts.TypeFlags.Intersection) openEnum = true;
    else if (checker.isArrayType(p)) {
      const el = checker.getTypeArguments(p as ts.TypeReference)[0];
      const elNode = nodeOf(checker, el, depth);
      if (typeof elNode === 'object' && !Array.isArray(elNode)) objects.push(el);
      else if (Array.isArray(elNode)) literals.push(...elNode);
      else if (elNode === 'n') hasNumber = true;
      else if (elNode === 'b') hasBoolean = true;
      else hasString = true;
    } else if (p.flags & ts.TypeFlags.Object) objects.push(p);
    else hasString = true;
  }
  if (objects.length) {
    if (depth >= MAX_DEPTH) return '*';
    const merged: Record<string, ParamNode> = {};
    const required = new Set<string>();
    let map = false;
    for (const o of objects) {
      const props = checker.getPropertiesOfType(o);
      if (props.length === 0 && (checker.getIndexInfosOfType(o).length > 0 || o.getStringIndexType())) map = true;
      for (const prop of props) {
        const decl = prop.valueDeclaration ?? prop.declarations?.[0];
        if (!decl) continue;
        const pt = checker.getTypeOfSymbolAtLocation(prop, decl);
        merged[prop.name] = nodeOf(checker, pt, depth + 1);
        if (!(prop.flags & ts.SymbolFlags.Optional) && objects.length === 1) required.add(prop.name);
      }
    }
    if (map && Object.keys(merged).length === 0) return 'm';
    const node: Record<string, ParamNode> = {};
    for (const k of Object.keys(merged).sort()) node[k] = merged[k];
    if (required.size) node['!'] = [...required].sort();
    if (hasString || hasNumber || hasBoolean || literals.length) node['~'] = 'scalar';
    return node;
  }
  if (hasString || (openEnum && !literals.length) || (literals.length && hasBoolean)) return 's';
  if (literals.length) {
    // `#n`: a number is accepted too (`trial_end: 'now' | number`).
    const values = [...(emptyable ? [''] : []), ...[...new Set(literals)].sort(), ...(hasNumber ? ['#n'] : [])];
    return values;
  }
  if (hasNumber && hasBoolean) return '*';
  if (hasNumber) return 'n';
  if (hasBoolean) return 'b';
  return '*';
}

/**
 * The top-level field names of SDK object types (`Customer`, `Checkout.Session`, ...), split into
 * those always present and those the type marks optional (expandable or version-dependent).
 */
export function objectFields(names: string[]): Record<string, { required: string[]; optional: string[] }> {
  const virtual = path.join(ROOT, '__emulator_object_types__.ts');
  const source = `import Stripe from 'stripe';\n${names.map((n, i) => `export type T${i} = Stripe.${n};`).join('\n')}\n`;
  const options: ts.CompilerOptions = { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, strict: true, esModuleInterop: true, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, ...rest) => (path.resolve(file) === virtual ? ts.createSourceFile(file, source, lang) : getSourceFile(file, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => path.resolve(file) === virtual || fileExists(file);
  const program = ts.createProgram([virtual], options, host);
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(virtual);
  if (!sf) throw new Error('virtual source file missing');
  const out: Record<string, { required: string[]; optional: string[] }> = {};
  let i = 0;
  ts.forEachChild(sf, (node) => {
    if (!ts.isTypeAliasDeclaration(node)) return;
    const t = checker.getTypeAtLocation(node.name);
    const required: string[] = [];
    const optional: string[] = [];
    for (const prop of checker.getPropertiesOfType(t)) (prop.flags & ts.SymbolFlags.Optional ? optional : required).push(prop.name);
    out[names[i++]] = { required: required.sort(), optional: optional.sort() };
  });
  return out;
}

export function render(specs: Record<string, ParamNode>): string {
  return (
    '// Generated by src/emulator/spec/generate.ts from the installed `stripe` SDK\'s request types; do not edit.\n' +
    "import type { ParamNode } from './validate';\n\n" +
    // One request type a line, so an SDK upgrade shows as a readable diff.
    `export const STRIPE_PARAMS: Record<string, ParamNode> = {\n${Object.entries(specs)
      .map(([name, node]) => `  ${JSON.stringify(name)}: ${JSON.stringify(node)},`)
      .join('\n')}\n};\n`
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
  const text = render(buildSpecs());
  fs.writeFileSync(GENERATED_FILE, text);
  process.stdout.write(`wrote ${path.relative(ROOT, GENERATED_FILE)} (${text.length} bytes)\n`);
}
