/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';

// The bundle is written straight into the Python package so the wheel serves it
// with no Node.js at runtime. `base: './'` keeps asset URLs relative, so the app
// works when the server is mounted under a --root-path prefix.
const outDir = fileURLToPath(new URL('../src/stemtrace/server/static', import.meta.url));

// The API explorer at /api/docs runs Swagger UI from these copies, not from a CDN,
// so it works air-gapped and under a strict Content-Security-Policy.
function apiDocsAssets(): Plugin {
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve('swagger-ui-dist/package.json'));
  return {
    name: 'stemtrace-api-docs-assets',
    apply: 'build',
    closeBundle() {
      const target = join(outDir, 'api-docs');
      mkdirSync(target, { recursive: true });
      for (const file of ['swagger-ui-bundle.js', 'swagger-ui.css', 'LICENSE']) {
        copyFileSync(join(dist, file), join(target, file));
      }
    },
  };
}

export default defineConfig({
  base: './',
  plugins: [react(), apiDocsAssets()],
  build: {
    outDir,
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 2500,
    // A module-preload polyfill would be an inline script; the CSP forbids those.
    modulePreload: { polyfill: false },
  },
  worker: { format: 'es' },
  server: {
    proxy: { '/api': process.env.STEMTRACE_API ?? 'http://127.0.0.1:8000' },
  },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    environment: 'node',
  },
});
