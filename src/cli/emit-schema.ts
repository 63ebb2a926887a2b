import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { printedSchema } from '../graphql/print-schema';

/** `npm run schema:emit`: writes schema.graphql, the committed contract a test keeps current. */
printedSchema()
  .then((text) => writeFile(path.resolve(__dirname, '../../schema.graphql'), text))
  .then(() => console.log('wrote schema.graphql'))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
