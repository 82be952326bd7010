// @monlight/browser: init() once, as early as possible in the page.
import { onCLS, onFCP, onINP, onLCP, onTTFB } from 'web-vitals';
import { createClient, VERSION } from './client.js';

let client = null;

export { VERSION as version };

/** Starts the SDK (a second call is ignored). Returns whether it runs. */
export function init(options) {
  try {
    if (!client && typeof window !== 'undefined') client = createClient(options, [onLCP, onINP, onCLS, onFCP, onTTFB]);
  } catch (e) {
    // never into the page
  }
  return !!client;
}

export const captureException = (error, context) => { if (client) client.captureException(error, context); };
export const captureMessage = (message, level) => { if (client) client.captureMessage(message, level); };
export const setUser = (user) => { if (client) client.setUser(user); };
export const setContext = (name, value) => { if (client) client.setContext(name, value); };
export const flush = () => (client ? client.flush() : Promise.resolve());
export const getSessionId = () => (client ? client.sessionId() : undefined);
