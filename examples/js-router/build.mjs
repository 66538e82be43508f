// node build.mjs OUT.wasm: router.js → a WebAssembly component for the
// `router` world of the repository's WIT package.
import { componentize } from '@bytecodealliance/componentize-js';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT.wasm');
  process.exit(2);
}
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const { component } = await componentize(await readFile(here('router.js'), 'utf8'), {
  witPath: here('../../wit'),
  worldName: 'router',
  // A router needs none of these; leaving them out keeps its imports to
  // what the host grants every plugin anyway.
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});
await writeFile(`${out}.tmp`, component);
await rename(`${out}.tmp`, out);
