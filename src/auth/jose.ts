import { runInThisContext } from 'node:vm';
import type * as Jose from 'jose' with { 'resolution-mode': 'import' };

/**
 * jose 6 ships as ES modules only. This project compiles to CommonJS and Node (>= 20.19) loads
 * ES modules through `require`, but Jest's sandboxed loader refuses to on Node 20 and wraps
 * `node:module` and `process` as well. So jose is loaded with Node's own `require`, taken from
 * the real `process` of the main context: the same module in the server, the CLI and Jest.
 *
 * Inside Jest, jose then lives outside the sandbox's globals: hand it KeyObjects, CryptoKeys
 * and strings (checked by tag or type), never Uint8Arrays, and map its errors by `code`.
 */
const realProcess = runInThisContext('process') as NodeJS.Process;
const nodeRequire = realProcess.getBuiltinModule('node:module').createRequire(__filename);

export const jose: typeof Jose = nodeRequire('jose');
