import { existsSync } from 'node:fs';
import path from 'node:path';

/** The directory holding package.json, found from this file (works from src/ and from dist/src/). */
export function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}
