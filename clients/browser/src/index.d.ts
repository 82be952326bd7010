/** An error report as sent to the relay's POST /api/browser/errors (and given to beforeSend). */
export interface MonlightEvent {
  type: string;
  message: string;
  /** The browser's own error.stack, untouched (the relay maps it with the uploaded source maps). */
  stack?: string;
  url: string;
  user_agent?: string;
  session_id: string;
  release?: string;
  /** RFC 3339. */
  timestamp: string;
  context: {
    user_id?: string;
    user?: MonlightUser;
    environment?: string;
    /** How it was caught: onerror, unhandledrejection, console or manual. */
    mechanism?: string;
    /** captureMessage's level. */
    level?: string;
    [key: string]: unknown;
  };
}

export interface MonlightUser {
  id?: string | number;
  email?: string;
  username?: string;
  [key: string]: unknown;
}

export interface MonlightOptions {
  /** The relay's public DSN key (safe to embed in a page). */
  dsn: string;
  /** The relay's URL, e.g. "https://relay.example.com". */
  endpoint: string;
  /** Sent with every error so the relay picks this release's source maps. */
  release?: string;
  /** Sent as context.environment. */
  environment?: string;
  /** Share of errors sent, 0–1 (default 1). */
  sampleRate?: number;
  /** Share of page loads whose Web Vitals and request timings are sent, 0–1 (default 1). */
  metricsSampleRate?: number;
  /** Change an event, or return null/false to drop it. If it throws, the event is dropped. */
  beforeSend?: (event: MonlightEvent) => MonlightEvent | null | false | undefined;
  /** Also report console.error calls (default false). */
  captureConsole?: boolean;
  /** Time fetch and XMLHttpRequest as http_client_duration_ms (default true). */
  captureHttp?: boolean;
  /** Errors sent per page load at most (default 50). */
  maxErrors?: number;
  /** Errors waiting to be sent at most (default 30; metric points: 10 times that). */
  maxQueue?: number;
  /** Milliseconds metric points wait to be batched (default 5000). Errors wait 0.5 s. */
  flushInterval?: number;
}

/** Starts the SDK (a second call is ignored). Returns whether it runs. */
export function init(options: MonlightOptions): boolean;
export function captureException(error: unknown, context?: Record<string, unknown>): void;
export function captureMessage(message: string, level?: 'debug' | 'info' | 'warning' | 'error' | string): void;
/** Sent as context.user_id (and context.user) with every later error; null forgets it. */
export function setUser(user: MonlightUser | null): void;
/** Merged into every later error's context; null or undefined removes it. */
export function setContext(name: string, value: unknown): void;
/** Sends what is queued now (unless backing off). */
export function flush(): Promise<void>;
/** This tab's session id (kept in sessionStorage). */
export function getSessionId(): string | undefined;
export const version: string;
