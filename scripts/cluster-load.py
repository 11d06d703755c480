#!/usr/bin/env python3
"""Buyers for scripts/cluster-test.sh and scripts/bench-cluster.sh: real
checkouts through the TLS proxy, one thread and one HTTPS connection per
buyer, standard library only.

  cluster-load.py --base URL --ca CA.crt race --users N --prefix P --session S --offer O --expect K
      N logged-in buyers each put one ticket in the cart, then all check out
      at once; exactly K must get an order (the others "sold out", 409), and
      the K pay. Prints a JSON summary; exits 1 on any other outcome.
  cluster-load.py --base URL --ca CA.crt load --users N --prefix P --session S --offer O --until FILE
        [--tolerate-before FILE] [--home-share X] [--ready FILE]
      N buyers buy one ticket after another (and load the home page) until
      FILE exists. Every request is timed; a failed payment is sent again
      with the same idempotency key, as a buyer pressing again would. Exits 1
      if any request failed, except, with --tolerate-before, requests that
      started before the Unix time written in that file (plus 0.2 s: the kill follows it)
      (those in flight on a node killed at that time). --ready FILE is
      created once every buyer is logged in.
  cluster-load.py --base URL --ca CA.crt home --seconds S --clients C
      The home page as fast as C clients can: req/s and p99 (benchmark).

Buyers log in as P0@example.com ... with the password in JO_LOAD_PASSWORD.
"""

import argparse
import http.client
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.parse

CARD_OK = "4242 4242 4242 4242"


class Failure(Exception):
    pass


class Buyer:
    """A browser-like client: cookies, no automatic redirects."""

    def __init__(self, base, ctx, log):
        url = urllib.parse.urlsplit(base)
        self.tls = url.scheme == "https"
        self.host, self.port = url.hostname, url.port or (443 if self.tls else 80)
        self.origin = f"{url.scheme}://{url.netloc}"
        self.ctx = ctx
        self.conn = None
        self.cookies = {}
        self.csrf = ""
        self.log = log

    def _connect(self):
        if self.tls:
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        else:
            # Benchmarks only: a node directly, beside the same through the proxy.
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method, path, form=None, op=None):
        """One request; (status, location, body). Never retried here."""
        headers = {"User-Agent": "cluster-load"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
        started = time.time()
        try:
            if self.conn is None:
                self._connect()
            self.conn.request(method, path, body=body, headers=headers)
            res = self.conn.getresponse()
            data = res.read().decode("utf-8", "replace")
            for k, v in res.getheaders():
                if k.lower() == "set-cookie":
                    name, _, rest = v.partition("=")
                    value = rest.split(";", 1)[0]
                    if "max-age=0" in v.lower() or value == "":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = value
            if res.getheader("connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
        except (OSError, http.client.HTTPException) as e:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            self.log(started, time.time(), op or path, False, f"{type(e).__name__}: {e}")
            raise Failure(f"{method} {path}: {e}") from e
        ok = res.status < 500
        self.log(started, time.time(), op or path, ok, str(res.status))
        if not ok:
            raise Failure(f"{method} {path}: {res.status} {data[:200]}")
        m = re.search(r'name="csrf" value="([^"]*)"', data)
        if m:
            self.csrf = m.group(1)
        return res.status, res.getheader("location", ""), data

    def expect(self, method, path, status, form=None, op=None):
        got, location, body = self.request(method, path, form, op)
        if got != status:
            raise Failure(f"{method} {path}: expected {status}, got {got}: {body[:300]}")
        return location, body

    def login(self, email, password):
        self.expect("GET", "/login", 200)
        to, _ = self.expect("POST", "/login", 303,
                            {"csrf": self.csrf, "email": email, "password": password}, "login")
        if to != "/":
            raise Failure(f"login of {email}: redirected to {to}")
        # Login rotates the CSRF cookie: read the token again.
        self.expect("GET", "/cart", 200)

    def add(self, session, offer):
        to, _ = self.expect("POST", "/cart/add", 303,
                            {"csrf": self.csrf, "session_id": session, "offer_id": offer,
                             "quantity": "1"}, "cart/add")
        if not to.startswith("/cart"):
            raise Failure(f"add: redirected to {to}")

    def pay(self, pay_path):
        _, page = self.expect("GET", pay_path, 200, op="pay page")
        m = re.search(r'name="idem" value="([^"]*)"', page)
        if not m:
            raise Failure("no idempotency key on the payment page")
        form = {"csrf": self.csrf, "idem": m.group(1), "card_holder": "Marie Curie",
                "card_number": CARD_OK, "card_expiry": "12/39", "card_cvv": "123"}
        try:
            to, _ = self.expect("POST", pay_path, 303, form, "pay")
        except Failure:
            # The buyer presses "pay" again: same key, so at most one payment.
            time.sleep(0.2)
            to, _ = self.expect("POST", pay_path, 303, form, "pay again")
        order = pay_path[: -len("/pay")]
        if to != order:
            raise Failure(f"pay: redirected to {to}")
        _, page = self.expect("GET", order, 200, op="order page")
        if "/ticket.pdf" not in page:
            raise Failure(f"no ticket on {order}")

    def buy(self, session, offer):
        self.add(session, offer)
        pay_path, _ = self.expect("POST", "/checkout", 303, {"csrf": self.csrf}, "checkout")
        self.pay(pay_path)


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []

    def __call__(self, start, end, op, ok, detail):
        with self.lock:
            self.rows.append((start, end, op, ok, detail))


def context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def logged_in(args, ctx, log):
    password = os.environ.get("JO_LOAD_PASSWORD", "")
    buyers = [Buyer(args.base, ctx, log) for _ in range(args.users)]
    errors = []

    def login(i):
        try:
            buyers[i].login(f"{args.prefix}{i}@example.com", password)
        except Failure as e:
            errors.append(str(e))

    threads = [threading.Thread(target=login, args=(i,)) for i in range(args.users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"cluster-load: login failed: {errors[0]}")
    return buyers


def race(args, ctx):
    log = Log()
    buyers = logged_in(args, ctx, log)
    for b in buyers:
        b.add(args.session, args.offer)
    barrier = threading.Barrier(len(buyers))
    results = [None] * len(buyers)

    def checkout(i):
        b = buyers[i]
        barrier.wait()
        try:
            status, to, body = b.request("POST", "/checkout", {"csrf": b.csrf}, "checkout")
            results[i] = (status, to, body)
        except Failure as e:
            results[i] = (0, "", str(e))

    threads = [threading.Thread(target=checkout, args=(i,)) for i in range(len(buyers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [(buyers[i], r[1]) for i, r in enumerate(results) if r[0] == 303]
    sold_out = sum(1 for r in results if r[0] == 409 and "il ne reste pas assez de places" in r[2])
    other = [r[0] for r in results if r[0] not in (303, 409)]
    for b, pay_path in winners:
        b.pay(pay_path)
    summary = {"buyers": len(buyers), "orders": len(winners), "sold_out": sold_out,
               "other": other}
    print(json.dumps(summary))
    if len(winners) != args.expect or sold_out != len(buyers) - args.expect or other:
        raise SystemExit(f"cluster-load: race: expected {args.expect} orders, got {summary}")


def load(args, ctx):
    log = Log()
    buyers = logged_in(args, ctx, log)
    with log.lock:
        log.rows.clear()
    if args.ready:
        # The caller waits for this before it kills or restarts a node.
        open(args.ready, "w").close()
    stop = threading.Event()
    flows = [0]
    lock = threading.Lock()

    def run(b):
        n = 0
        while not stop.is_set():
            try:
                if args.home_share and n % max(1, round(1 / args.home_share)) == 0:
                    b.expect("GET", "/", 200, op="home")
                b.buy(args.session, args.offer)
                with lock:
                    flows[0] += 1
            except Failure:
                # Already logged; the buyer starts again (a new cart).
                time.sleep(0.05)
            n += 1

    threads = [threading.Thread(target=run, args=(b,)) for b in buyers]
    started = time.time()
    for t in threads:
        t.start()
    while not os.path.exists(args.until):
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    tolerate = None
    if args.tolerate_before and os.path.exists(args.tolerate_before):
        with open(args.tolerate_before) as f:
            tolerate = float(f.read().strip()) + 0.2
    failed = [r for r in log.rows if not r[3]]
    counted = [r for r in failed if tolerate is None or r[0] >= tolerate]
    summary = {"requests": len(log.rows), "purchases": flows[0], "seconds": round(elapsed, 1),
               "failed": len(failed), "failed_after_tolerance": len(counted),
               "first_failures": [f"{r[2]}: {r[4]}" for r in (counted or failed)[:5]]}
    print(json.dumps(summary))
    if counted or flows[0] == 0:
        raise SystemExit(f"cluster-load: load: {len(counted)} failed requests")


def home(args, ctx):
    log = Log()
    stop = threading.Event()

    def run():
        b = Buyer(args.base, ctx, log)
        while not stop.is_set():
            try:
                b.expect("GET", "/", 200, op="home")
            except Failure:
                pass

    threads = [threading.Thread(target=run) for _ in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    ok = sorted(r[1] - r[0] for r in log.rows if r[3])
    p99 = ok[int(len(ok) * 0.99)] * 1000 if ok else float("nan")
    print(json.dumps({"requests": len(log.rows), "ok": len(ok),
                      "req_per_s": round(len(ok) / args.seconds, 1), "p99_ms": round(p99, 2)}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True)
    p.add_argument("--ca", required=True)
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("race", "load"):
        s = sub.add_parser(name)
        s.add_argument("--users", type=int, required=True)
        s.add_argument("--prefix", required=True)
        s.add_argument("--session", required=True)
        s.add_argument("--offer", required=True)
        if name == "race":
            s.add_argument("--expect", type=int, required=True)
        else:
            s.add_argument("--until", required=True)
            s.add_argument("--tolerate-before")
            s.add_argument("--ready", help="file created once every buyer is logged in")
            s.add_argument("--home-share", type=float, default=0.0)
    s = sub.add_parser("home")
    s.add_argument("--seconds", type=float, default=5)
    s.add_argument("--clients", type=int, default=8)
    args = p.parse_args()
    ctx = context(args.ca)
    {"race": race, "load": load, "home": home}[args.mode](args, ctx)


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        sys.exit(f"cluster-load: {e}")
