// The shop's checkout, as its authors wrote it; the tests bundle and minify it with the SDK into
// assets/app.min.js, so the browser only ever sees minified names and positions.

const CART = { total: 4200, coupons: { WELCOME: { discount: 500 } } };

export function applyCoupon(cart, code) {
  const coupon = cart.coupons[code];
  return cart.total - coupon.discount;
}

export function checkout(code) {
  const total = applyCoupon(CART, code);
  return { total, currency: 'EUR' };
}
