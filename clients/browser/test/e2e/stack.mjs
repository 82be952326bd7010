// The real stack for the SDK's end-to-end tests: error-tracker, metrics-collector and
// browser-relay (target/debug, started by tests/browser/harness.mjs), a page server on
// 127.0.0.1 serving the built SDK (dist/monlight.iife.js), a minified app bundle built here with
// esbuild (source map uploaded with bin/monlight-upload-sourcemaps) and the test pages.
import { execFile } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import * as esbuild from 'esbuild';
import { startMetrics, startRelay, startService } from '../../../../tests/browser/harness.mjs';

export const SDK_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const APP = join(SDK_ROOT, 'test/e2e/fixtures/app');
export const PROJECT = 'shop-web';
export const RELEASE = 'shop-web@2.4.0';
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** 1-based line of the first `needle` in a fixture source file. */
export function lineOf(file, needle) {
  const text = readFileSync(join(APP, file), 'utf8');
  const index = text.indexOf(needle);
  assert.ok(index >= 0, `${needle} in ${file}`);
  return text.slice(0, index).split('\n').length;
}

/** The app, bundled and minified by esbuild with a source map, into a temp dir. */
async function buildApp(dir) {
  const result = await esbuild.build({
    absWorkingDir: APP, entryPoints: { 'app.min': 'src/main.js' }, outdir: APP, bundle: true, minify: true,
    sourcemap: true, format: 'iife', target: 'es2020', write: false, logLevel: 'silent',
  });
  for (const file of result.outputFiles) writeFileSync(join(dir, file.path.slice(APP.length + 1)), file.contents);
  const js = readFileSync(join(dir, 'app.min.js'), 'utf8');
  assert.doesNotMatch(js, /computeTotal|lineTotal/, 'really minified');
}

/** An SVG of w×h, the LCP candidate: busy enough (a few KB of random circles) for Chromium, which
 * leaves low-entropy images (< 0.05 bit per displayed pixel) out of LCP. Deterministic. */
function svg(w, h) {
  let seed = 7;
  const r = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  let shapes = '';
  for (let i = 0; i < 260; i++) {
    shapes += `<circle cx="${(r() * w).toFixed(1)}" cy="${(r() * h).toFixed(1)}" r="${(4 + r() * 40).toFixed(1)}" fill="hsl(${(r() * 360) | 0},70%,${(40 + r() * 30) | 0}%)"/>`;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><rect width="${w}" height="${h}" fill="#1e3a8a"/>${shapes}</svg>`;
}

/**
 * Starts everything. `relayEnv` adds relay variables (e.g. RATE_LIMIT). `pages` maps a path to
 * a function (config, url) → the HTML body after the SDK's script tag and init.
 * Returns {pageOrigin, relay, dsnKey, errorTracker, metrics, requests (what the relay
 * received from pages, via the page server's log? no: see the tests), stop()}.
 */
export async function startStack({ relayEnv = {}, pages = {}, init = {} } = {}) {
  const dist = join(SDK_ROOT, 'dist/monlight.iife.js');
  if (!existsSync(dist)) throw new Error(`${dist} is missing: run npm run build in clients/browser first`);
  const sdk = readFileSync(dist, 'utf8');
  const buildDir = mkdtempSync(join(tmpdir(), 'monlight-sdk-app-'));
  await buildApp(buildDir);

  const stack = { buildDir };
  const server = createServer(async (request, response) => {
    const url = new URL(request.url, 'http://x');
    const send = (status, type, body) => {
      response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      response.end(body);
    };
    const delay = Number(url.searchParams.get('delay') || 0);
    if (delay) await sleep(delay);
    if (url.pathname === '/monlight.iife.js') return send(200, 'text/javascript', sdk);
    if (url.pathname.startsWith('/assets/')) {
      const file = join(buildDir, url.pathname.slice('/assets/'.length));
      if (/^[\w.-]+$/.test(url.pathname.slice(8)) && existsSync(file)) return send(200, 'text/javascript', readFileSync(file));
    }
    if (url.pathname === '/favicon.ico') return send(204, 'image/x-icon', '');
    if (url.pathname === '/img/hero.svg') return send(200, 'image/svg+xml', svg(800, 400));
    if (url.pathname.startsWith('/api/')) return send(200, 'application/json', '{"ok":true}');
    const page = pages[url.pathname] || pages['*'];
    if (page) {
      const options = { dsn: stack.dsnKey, endpoint: stack.endpoint, release: RELEASE, environment: 'e2e', ...init };
      return send(200, 'text/html; charset=utf-8', `<!doctype html>
<html><head><meta charset="utf-8"><title>Shop ${url.pathname}</title>
<style>body { font: 16px sans-serif; margin: 0; padding: 8px; } img { display: block; }</style>
<script src="/monlight.iife.js"></script>
<script>Monlight.init(${JSON.stringify(options)}); Monlight.setUser({ id: 'u-7' });</script>
</head><body>
${page(url)}
</body></html>`);
    }
    send(404, 'text/plain', 'not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  stack.server = server;
  stack.pageOrigin = `http://127.0.0.1:${server.address().port}`;
  stack.errorTracker = await startService({ service: 'error-tracker' });
  stack.metrics = await startMetrics();
  stack.relay = await startRelay({ errorTracker: stack.errorTracker, metrics: stack.metrics, corsOrigins: [stack.pageOrigin], env: relayEnv });
  stack.dsnKey = await stack.relay.createKey(PROJECT);
  await startRecorder(stack);

  stack.stop = async () => {
    stack.recorder.closeAllConnections?.();
    stack.recorder.close();
    server.closeAllConnections?.();
    server.close();
    await stack.relay?.stop();
    await stack.metrics?.stop();
    await stack.errorTracker?.stop();
    rmSync(buildDir, { recursive: true, force: true });
  };
  return stack;
}

/**
 * The SDK's endpoint: a pass-through proxy in front of the relay that records every request the
 * pages make (a beacon sent while the tab closes is invisible to Playwright):
 * stack.received = [{method, path (with query), type (Content-Type), key (X-Monlight-Key), status, body}].
 */
async function startRecorder(stack) {
  const target = new URL(stack.relay.url);
  stack.received = [];
  stack.recorder = createServer((request, response) => {
    const chunks = [];
    request.on('data', (c) => chunks.push(c));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry = {
        method: request.method, path: request.url, type: request.headers['content-type'] || null,
        key: request.headers['x-monlight-key'] || null, status: null, body: body.toString('utf8'),
      };
      if (request.method !== 'OPTIONS') stack.received.push(entry);
      const headers = { ...request.headers, host: target.host };
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers }, (answer) => {
        entry.status = answer.statusCode;
        response.writeHead(answer.statusCode, answer.headers);
        answer.pipe(response);
      });
      upstream.on('error', () => { response.writeHead(502); response.end(); });
      upstream.end(body);
    });
  });
  await new Promise((resolve) => stack.recorder.listen(0, '127.0.0.1', resolve));
  stack.endpoint = `http://127.0.0.1:${stack.recorder.address().port}`;
}

/** Waits until `ready(stack.received)` holds. */
export async function waitForReceived(stack, ready, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (ready(stack.received)) return stack.received;
    await sleep(50);
  }
  throw new Error('the relay did not receive what was expected: ' + JSON.stringify(stack.received).slice(0, 2000));
}

/** Runs the package's own upload helper, as a user's CI would. */
export async function uploadMaps(stack, urlPrefix = '/assets/') {
  const { stdout } = await promisify(execFile)(process.execPath, [
    join(SDK_ROOT, 'bin/monlight-upload-sourcemaps'), '--relay', stack.relay.url, '--admin-key', stack.relay.apiKey,
    '--release', RELEASE, '--project', PROJECT, '--url-prefix', urlPrefix, stack.buildDir,
  ]);
  return stdout;
}

/** Polls the error-tracker until a group has an occurrence of `session`. */
export async function waitForSession(stack, session, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let list = null;
  while (Date.now() < deadline) {
    list = await stack.errorTracker.api('GET', '/api/errors?' + new URLSearchParams({ session_id: session, resolved: 'all' }));
    if (list.errors.length > 0) {
      const detail = await stack.errorTracker.api('GET', `/api/errors/${list.errors[0].id}`);
      const occurrence = detail.occurrences.find((o) => o.extra?.session_id === session);
      if (occurrence) return { list: list.errors, group: list.errors[0], detail, occurrence };
    }
    await sleep(100);
  }
  const health = await fetch(stack.relay.url + '/health').then((r) => r.text()).catch((e) => String(e));
  throw new Error(`no error of session ${session} in ${timeoutMs} ms; last ${JSON.stringify(list)}; relay ${health}\n${stack.relay.log()}`);
}

