// Starting a Monlight service binary for a test: a temp dir, a free port, its API, its log.
// Node built-ins only, so test suites with their own node_modules (tests/sentry/browser)
// import it too.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const DATABASES = {
  'error-tracker': 'errors.db', 'log-viewer': 'logs.db', 'metrics-collector': 'metrics.db',
  'browser-relay': 'browser-relay.db',
};

/**
 * Starts target/<options.build || 'debug'>/<service> (error-tracker by default; $ERROR_TRACKER_BIN, $LOG_VIEWER_BIN,
 * $METRICS_COLLECTOR_BIN or $BROWSER_RELAY_BIN override the path) with PORT=0 and resolves once it logs
 * `listening on 127.0.0.1:PORT`. `options.env` adds variables; `options.setup(dir)` runs first
 * (e.g. to write fake containers into the temp dir). `stop()` sends SIGTERM (SIGKILL after
 * 5 s) and removes the temp dir; `log()` is everything it printed, for failure messages.
 */
export async function startService(options = {}) {
  const service = options.service || 'error-tracker';
  const override = {
    'error-tracker': process.env.ERROR_TRACKER_BIN,
    'log-viewer': process.env.LOG_VIEWER_BIN,
    'metrics-collector': process.env.METRICS_COLLECTOR_BIN,
    'browser-relay': process.env.BROWSER_RELAY_BIN,
  }[service];
  const build = options.build || 'debug';
  const bin = override || join(REPO_ROOT, 'target', build, service);
  if (!existsSync(bin)) {
    const flag = build === 'release' ? ' --release' : '';
    throw new Error(`${bin} is missing: run cargo build${flag} -p ${service} first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'monlight-browser-'));
  const apiKey = options.apiKey || 'browser-test-key-' + process.pid;
  if (options.setup) await options.setup(dir);
  const child = spawn(bin, [], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      BIND: '127.0.0.1',
      API_KEY: apiKey,
      DATABASE_PATH: join(dir, DATABASES[service]),
      RATE_LIMIT: '0',
      LOG_LEVEL: 'info',
      ...(options.env ? options.env(dir) : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${service} did not start in 20 s:\n` + output)), 20_000);
    child.stderr.on('data', (chunk) => {
      output += chunk;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${service} exited with ${code} before listening:\n${output}`));
    });
  });

  const url = `http://127.0.0.1:${port}`;
  async function api(method, path, body) {
    const response = await fetch(url + path, {
      method,
      headers: { 'X-API-Key': apiKey, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} → ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async function stop() {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  }

  return { url, apiKey, api, stop, dir, log: () => output };
}
