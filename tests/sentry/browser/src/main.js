// The page's entry point: the unmodified @sentry/browser, configured from window.SHOP_CONFIG
// (the page sets it: the relay's DSN and tunnel, the release), then a Pay button whose click
// throws (an unknown coupon code).
import * as Sentry from '@sentry/browser';
import { checkout } from './checkout.js';

const config = window.SHOP_CONFIG;
Sentry.init({
  dsn: config.dsn,
  tunnel: config.tunnel,
  release: config.release,
  environment: 'e2e',
});
Sentry.setUser({ id: 'u-7' });

document.getElementById('pay').addEventListener('click', () => {
  const order = checkout(document.getElementById('coupon').value);
  document.getElementById('total').textContent = `${order.total} ${order.currency}`;
});
