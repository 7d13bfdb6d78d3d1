// The billing pages: the page that answers a Subscribe or "Manage billing" form sends
// the browser on to Stripe (Checkout or the billing portal). A form cannot redirect
// there itself: the CSP's form-action allows only the panel. The link stays as a
// fallback when scripts do not run.
const go = document.querySelector('a[data-go]');
if (go && /^https?:\/\//.test(go.href)) {
  location.assign(go.href);
}
