"""Drives the fake Stripe (tests/src/fake_stripe.rs) with Stripe's official Python SDK,
`stripe` (installed by scripts/dev-services), so the fake is checked against the real
client's request encoding (bracketed form keys, Idempotency-Key, list paging) and its
answer and error handling (objects, lists, InvalidRequestError, IdempotencyError,
AuthenticationError) and webhook verification (`stripe.Webhook.construct_event`).

Usage:
  stripe_check.py api API_BASE SECRET_KEY
      customers, products, prices, a Checkout session paid through the hosted page,
      the billing portal, subscriptions and invoices listed, a plan change, cancel at
      period end, cancel now. Prints "ok" and exits 0; raises otherwise.
  stripe_check.py webhooks FILE WEBHOOK_SECRET
      FILE holds [{"payload": str, "signature": str}] as the fake delivered them; each
      must verify (300 s tolerance) and a tampered copy must not. Prints
      "ok <event types, comma separated>".
"""

import http.client
import json
import sys
import urllib.parse

import stripe


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def raises(kind, fn, check=None):
    try:
        fn()
    except kind as e:
        if check:
            check(e)
        return e
    raise AssertionError(f"expected {kind.__name__}")


def browser(method, url):
    """One request without following redirects: (status, headers, body)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    path = u.path + (f"?{u.query}" if u.query else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}
    conn.request(method, path, body="" if method == "POST" else None, headers=headers)
    r = conn.getresponse()
    return r.status, dict(r.getheaders()), r.read().decode()


def api(base, key):
    stripe.api_key = key
    stripe.api_base = base
    stripe.max_network_retries = 1

    # A wrong key: 401.
    raises(stripe.AuthenticationError,
           lambda: stripe.Customer.retrieve("cus_nobody", api_key="sk_test_wrong_key"),
           lambda e: expect(e.http_status == 401, f"wrong key status {e.http_status}"))

    customer = stripe.Customer.create(email="owner@example.com", name="Owner", metadata={"org_id": "org-1"})
    expect(customer.object == "customer" and customer.id.startswith("cus_"), f"customer {customer}")
    expect(customer.metadata["org_id"] == "org-1", f"metadata {customer.metadata}")
    stripe.Customer.modify(customer.id, metadata={"plan": "pro"})
    again = stripe.Customer.retrieve(customer.id)
    expect(again.metadata.to_dict() == {"org_id": "org-1", "plan": "pro"}, f"merged metadata {again.metadata}")

    # Errors as the SDK types them.
    raises(stripe.InvalidRequestError, lambda: stripe.Customer.create(email="x@example.com", bogus="1"),
           lambda e: expect(e.param == "bogus" and e.code == "parameter_unknown", f"unknown param {e}"))
    raises(stripe.InvalidRequestError, lambda: stripe.Price.retrieve("price_missing"),
           lambda e: expect(e.http_status == 404 and e.code == "resource_missing", f"missing {e}"))

    # Idempotency: the same key replays the first answer; other parameters are refused.
    first = stripe.Customer.create(email="idem@example.com", idempotency_key="check-key-1")
    replay = stripe.Customer.create(email="idem@example.com", idempotency_key="check-key-1")
    expect(first.id == replay.id, f"replayed {first.id} vs {replay.id}")
    raises(stripe.IdempotencyError,
           lambda: stripe.Customer.create(email="other@example.com", idempotency_key="check-key-1"))

    product = stripe.Product.create(name="Pro", metadata={"plan_id": "pro"})
    expect(product.object == "product" and product.name == "Pro", f"product {product}")
    monthly = stripe.Price.create(product=product.id, unit_amount=1500, currency="EUR",
                                  recurring={"interval": "month"}, metadata={"plan_id": "pro"})
    yearly = stripe.Price.create(product=product.id, unit_amount=15000, currency="eur",
                                 recurring={"interval": "year"})
    got = stripe.Price.retrieve(monthly.id)
    expect(got.recurring.interval == "month" and got.unit_amount == 1500 and got.currency == "eur"
           and got.type == "recurring" and got.product == product.id, f"price {got}")

    common = dict(
        mode="subscription",
        customer=customer.id,
        line_items=[{"price": monthly.id, "quantity": 1}],
        client_reference_id="org-1",
        success_url="http://127.0.0.1:9/billing?checkout={CHECKOUT_SESSION_ID}",
        cancel_url="http://127.0.0.1:9/billing",
        allow_promotion_codes=True,
        subscription_data={"metadata": {"org_id": "org-1", "plan_id": "pro"}},
        metadata={"org_id": "org-1"},
    )
    # Stripe Tax needs the customer's address or customer_update[address]=auto.
    raises(stripe.InvalidRequestError,
           lambda: stripe.checkout.Session.create(automatic_tax={"enabled": True}, **common),
           lambda e: expect(e.param == "automatic_tax[enabled]", f"tax {e}"))
    session = stripe.checkout.Session.create(automatic_tax={"enabled": True},
                                             customer_update={"address": "auto", "name": "auto"}, **common)
    expect(session.object == "checkout.session" and session.id.startswith("cs_test_"), f"session {session}")
    expect(session.status == "open" and session.url.startswith(base + "/checkout/"), f"session {session}")
    expect(session.allow_promotion_codes is True and session.automatic_tax.enabled is True, f"session {session}")
    got = stripe.checkout.Session.retrieve(session.id)
    expect(got.id == session.id and got.client_reference_id == "org-1" and got.subscription is None, f"{got}")

    # The hosted page, as a browser: a Pay button, then 303 to success_url.
    status, _, page = browser("GET", session.url)
    expect(status == 200 and 'id="pay"' in page, f"checkout page {status} {page[:200]}")
    status, headers, _ = browser("POST", session.url + "/pay")
    expect(status == 303, f"pay status {status}")
    expect(headers.get("location") == f"http://127.0.0.1:9/billing?checkout={session.id}", f"location {headers}")
    done = stripe.checkout.Session.retrieve(session.id)
    expect(done.status == "complete" and done.payment_status == "paid" and done.subscription, f"done {done}")
    status, _, _ = browser("POST", session.url + "/pay")
    expect(status == 410, f"a second payment is refused: {status}")

    portal = stripe.billing_portal.Session.create(customer=customer.id, return_url="http://127.0.0.1:9/billing")
    expect(portal.object == "billing_portal.session" and portal.url.startswith(base + "/portal/"), f"{portal}")
    status, _, page = browser("GET", portal.url)
    expect(status == 200 and 'id="return"' in page, f"portal page {status}")

    subs = stripe.Subscription.list(customer=customer.id, status="all", limit=1)
    expect(subs.object == "list" and len(subs.data) == 1 and subs.has_more is False, f"subs {subs}")
    sub = subs.data[0]
    expect(sub.id == done.subscription and sub.status == "active", f"sub {sub}")
    item = sub["items"]["data"][0]
    expect(item["price"]["id"] == monthly.id and item["quantity"] == 1, f"item {item}")
    expect(item["current_period_end"] - item["current_period_start"] == 30 * 86400, f"period {item}")
    expect(sub.metadata.to_dict() == {"org_id": "org-1", "plan_id": "pro"}, f"sub metadata {sub.metadata}")

    invoices = stripe.Invoice.list(customer=customer.id, limit=10)
    expect(len(invoices.data) == 1, f"invoices {invoices}")
    inv = invoices.data[0]
    expect(inv.status == "paid" and inv.amount_paid == 1500 and inv.currency == "eur", f"invoice {inv}")
    expect(inv.hosted_invoice_url.startswith(base + "/invoice/") and inv.number, f"invoice {inv}")
    expect(inv.parent.subscription_details.subscription == sub.id, f"invoice parent {inv.parent}")

    # Change the plan (a new interval: a new period and an invoice), then cancel.
    changed = stripe.Subscription.modify(sub.id, items=[{"id": item["id"], "price": yearly.id}],
                                         proration_behavior="create_prorations", metadata={"plan_id": "pro-year"})
    citem = changed["items"]["data"][0]
    expect(citem["price"]["id"] == yearly.id and citem["id"] == item["id"], f"changed {citem}")
    expect(citem["current_period_end"] - citem["current_period_start"] == 365 * 86400, f"yearly {citem}")
    expect(changed.metadata["plan_id"] == "pro-year", f"metadata {changed.metadata}")
    raises(stripe.InvalidRequestError,
           lambda: stripe.Subscription.modify(sub.id, items=[{"id": "si_other", "price": monthly.id}]),
           lambda e: expect(e.param == "items[0][id]", f"item id {e}"))
    ending = stripe.Subscription.modify(sub.id, cancel_at_period_end=True)
    expect(ending.cancel_at_period_end is True and ending.cancel_at == citem["current_period_end"], f"{ending}")
    expect(len(list(stripe.Invoice.list(customer=customer.id).auto_paging_iter())) == 2, "plan change invoiced")

    canceled = stripe.Subscription.cancel(sub.id)
    expect(canceled.status == "canceled" and canceled.ended_at, f"canceled {canceled}")
    expect(len(stripe.Subscription.list(customer=customer.id).data) == 0, "canceled ones are not listed by default")
    every = list(stripe.Subscription.list(customer=customer.id, status="all", limit=1).auto_paging_iter())
    expect([s.id for s in every] == [sub.id], f"status=all {every}")
    print("ok")


def webhooks(path, secret):
    with open(path) as f:
        deliveries = json.load(f)
    types = []
    for d in deliveries:
        event = stripe.Webhook.construct_event(d["payload"], d["signature"], secret)
        expect(event.object == "event" and event.id.startswith("evt_"), f"event {event}")
        expect(event.data.object.object, f"data.object {event}")
        types.append(event.type)
        raises(stripe.SignatureVerificationError,
               lambda: stripe.Webhook.construct_event(d["payload"] + " ", d["signature"], secret))
        raises(stripe.SignatureVerificationError,
               lambda: stripe.Webhook.construct_event(d["payload"], d["signature"], "whsec_wrong"))
    print("ok " + ",".join(types))


def main():
    mode = sys.argv[1]
    if mode == "api":
        api(sys.argv[2], sys.argv[3])
    elif mode == "webhooks":
        webhooks(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
