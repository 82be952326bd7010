// Builds dist/: monlight.esm.js (for bundlers, web-vitals inlined), monlight.iife.js (a script
// tag: window.Monlight), both minified with source maps, and the types (index.d.ts, and
// global.d.ts for window.Monlight). Prints raw and gzip sizes.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const dist = new URL('./dist/', import.meta.url).pathname;
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const common = {
  entryPoints: ['src/index.js'],
  bundle: true,
  minify: true,
  sourcemap: true,
  target: 'es2020',
  legalComments: 'none',
  logLevel: 'warning',
};
await esbuild.build({ ...common, format: 'esm', outfile: dist + 'monlight.esm.js' });
await esbuild.build({ ...common, format: 'iife', globalName: 'Monlight', outfile: dist + 'monlight.iife.js' });
copyFileSync('src/index.d.ts', dist + 'index.d.ts');
writeFileSync(dist + 'global.d.ts', `// The script-tag build: <script src=".../monlight.iife.js"> defines window.Monlight.
import * as MonlightSdk from './index';
declare global {
  interface Window { Monlight: typeof MonlightSdk; }
  const Monlight: typeof MonlightSdk;
}
export {};
`);
const sizes = {};
for (const name of ['monlight.esm.js', 'monlight.iife.js']) {
  const code = readFileSync(dist + name);
  sizes[name] = { raw: code.length, gzip: gzipSync(code, { level: 9 }).length };
  console.log(`${name}: ${sizes[name].raw} B raw, ${sizes[name].gzip} B gzip`);
}
writeFileSync(dist + 'sizes.json', JSON.stringify(sizes, null, 2) + '\n');
