// The stack for the @sentry/browser test: the error-tracker and the browser-relay (release builds,
// on port 0 in temp dirs), the page's bundle (src/ + @sentry/browser, minified by esbuild with a
// source map) and a page server on 127.0.0.1, the one origin the relay's CORS_ORIGINS allows.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import * as esbuild from 'esbuild';
// Node built-ins only: shared with the UI tests without their node_modules.
import { startService } from '../../browser/service.mjs';
import { chromium } from 'playwright-core';

export const HERE = fileURLToPath(new URL('.', import.meta.url));
export const PROJECT = 'shop-web';
export const RELEASE = 'shop-web@3.1.0';
export const DSN_KEY = '5e17c0de5e17c0de5e17c0de5e17c0de';
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// No network here: without these flags Chromium tries to reach Google's services (see
// tests/browser/harness.mjs).
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 60_000,
  });
}

/** 1-based line of the first `needle` in src/`file`. */
export function lineOf(file, needle) {
  const text = readFileSync(join(HERE, 'src', file), 'utf8');
  const index = text.indexOf(needle);
  assert.ok(index >= 0, `${needle} in ${file}`);
  return text.slice(0, index).split('\n').length;
}

/** src/main.js + @sentry/browser → {js, map}: one minified IIFE and its source map. */
async function bundle() {
  const result = await esbuild.build({
    absWorkingDir: HERE, entryPoints: { 'app.min': 'src/main.js' }, outdir: join(HERE, 'assets'),
    bundle: true, minify: true, sourcemap: true, format: 'iife', target: 'es2020', write: false, logLevel: 'silent',
  });
  const out = (suffix) => result.outputFiles.find((f) => f.path.endsWith(suffix)).text;
  const js = out('app.min.js');
  assert.doesNotMatch(js, /applyCoupon/, 'really minified');
  return { js, map: out('app.min.js.map') };
}

/**
 * Starts everything: {pageOrigin, tracker, relay, dsn, tunnel, bundle, stop()}. The page server
 * answers /checkout (the shop page) and /assets/app.min.js (not its map: the browser never sees
 * the original sources).
 */
export async function startStack() {
  const stack = { bundle: await bundle() };
  const server = createServer((request, response) => {
    const url = new URL(request.url, 'http://x');
    const send = (status, type, body) => {
      response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      response.end(body);
    };
    if (url.pathname === '/assets/app.min.js') return send(200, 'text/javascript', stack.bundle.js);
    if (url.pathname === '/checkout') {
      const config = { dsn: stack.dsn, tunnel: stack.tunnel, release: RELEASE };
      return send(200, 'text/html; charset=utf-8', `<!doctype html>
<html><head><meta charset="utf-8"><title>Checkout</title>
<script>window.SHOP_CONFIG = ${JSON.stringify(config)};</script>
</head><body>
<input id="coupon" value="SPRING"> <button id="pay">Pay</button> <span id="total"></span>
<script src="/assets/app.min.js"></script>
</body></html>`);
    }
    send(404, 'text/plain', 'not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  stack.server = server;
  stack.pageOrigin = `http://127.0.0.1:${server.address().port}`;

  const stops = [];
  stack.stop = async () => {
    server.closeAllConnections();
    server.close();
    for (const stop of stops.reverse()) await stop();
  };
  try {
    stack.tracker = await startService({
      service: 'error-tracker', build: 'release', apiKey: 'sentry-e2e-tracker-key',
    });
    stops.push(stack.tracker.stop);
    stack.relay = await startService({
      service: 'browser-relay', build: 'release', apiKey: 'sentry-e2e-relay-admin',
      env: () => ({
        ADMIN_API_KEY: 'sentry-e2e-relay-admin',
        ERROR_TRACKER_URL: stack.tracker.url,
        ERROR_TRACKER_API_KEY: stack.tracker.apiKey,
        // Nothing here sends metrics: a closed port will do.
        METRICS_COLLECTOR_URL: 'http://127.0.0.1:9',
        METRICS_COLLECTOR_API_KEY: 'unused-metrics-key',
        CORS_ORIGINS: stack.pageOrigin,
        DSN_KEYS: `${PROJECT}:${DSN_KEY}`,
      }),
    });
    stops.push(stack.relay.stop);
  } catch (e) {
    await stack.stop();
    throw e;
  }
  const relayHost = new URL(stack.relay.url).host;
  stack.dsn = `http://${DSN_KEY}@${relayHost}/1`;
  stack.tunnel = `${stack.relay.url}/api/browser/sentry`;
  return stack;
}

/**
 * Polls the error-tracker until a group of PROJECT satisfies `ready(group)`; returns
 * {group, detail}. Fails after `timeoutMs` with what it last saw and the relay's log.
 */
export async function waitForGroup(stack, ready, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let list = null;
  while (Date.now() < deadline) {
    list = await stack.tracker.api('GET', `/api/errors?project=${PROJECT}&resolved=all`);
    const group = list.errors.find(ready);
    if (group) return { group, detail: await stack.tracker.api('GET', `/api/errors/${group.id}`) };
    await sleep(100);
  }
  throw new Error(`no ${what} in ${timeoutMs} ms; last ${JSON.stringify(list)}\nrelay:\n${stack.relay.log()}\nerror-tracker:\n${stack.tracker.log()}`);
}
