// Writes a brotli (.br) and a gzip (.gz) copy next to every built text file of the UI, so the
// server sends them as they are (see src/stemtrace/server/web.py) instead of compressing the
// same megabytes of JavaScript per request. Built once, so both use their highest settings.
// Run after `vite build` (npm run build does); safe to re-run: the copies are rewritten.
// Usage: node scripts/compress-assets.mjs [DIR]   (default: the package's static/ folder)
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const staticDir = process.argv[2]
  ? resolve(process.argv[2])
  : fileURLToPath(new URL('../../src/stemtrace/server/static', import.meta.url));
// Below this a compressed copy saves less than its headers cost; the server's limit is the same.
const MIN_SIZE = 1024;
const TEXT = /\.(js|mjs|css|html|svg|json|txt|map|wasm)$/;

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

// index.html is served rewritten per --root-path, never as a file: no copy of it is used.
const skip = (path) => relative(staticDir, path) === 'index.html' || !TEXT.test(path);

let before = 0;
let afterBr = 0;
let afterGz = 0;
for (const path of [...files(staticDir)]) {
  if (path.endsWith('.br') || path.endsWith('.gz')) continue;
  for (const suffix of ['.br', '.gz']) rmSync(path + suffix, { force: true });
  if (skip(path) || statSync(path).size < MIN_SIZE) continue;
  const data = readFileSync(path);
  const br = brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
  const gz = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
  // A copy that is not smaller is never worth sending.
  if (br.length < data.length) writeFileSync(path + '.br', br);
  if (gz.length < data.length) writeFileSync(path + '.gz', gz);
  before += data.length;
  afterBr += Math.min(br.length, data.length);
  afterGz += Math.min(gz.length, data.length);
}
const kB = (n) => `${(n / 1024).toFixed(0)} kB`;
console.log(`compressed assets: ${kB(before)} -> br ${kB(afterBr)}, gzip ${kB(afterGz)}`);
