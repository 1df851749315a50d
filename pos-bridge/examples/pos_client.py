#!/usr/bin/env python3
"""A POS client for pos-bridge: rings up a member's evening at the bar and the restaurant.

Run against a bridge whose till has just read a Gold member's card:

    python3 pos_client.py --url http://127.0.0.1:8088 --token TOKEN

Standard library only. Each step checks the bridge's answer and the script stops with exit
status 1 at the first unexpected one. The last line printed is a JSON summary.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request


class Till:
    def __init__(self, url, token):
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method, path, body=None, token=True, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def line(sku, name, category, quantity, unit_price, pay_with="money", already_discounted=False):
    return {
        "sku": sku,
        "name": name,
        "category": category,
        "quantity": quantity,
        "unit_price": unit_price,
        "already_discounted": already_discounted,
        "pay_with": pay_with,
    }


def expect(step, got, status, **fields):
    code, body = got
    ok = code == status and all(body.get(k) == v for k, v in fields.items())
    text = json.dumps(body)
    print(f"{'ok ' if ok else 'BAD'} {step}: {code} {text if len(text) < 400 else text[:400] + ' ...'}")
    if not ok:
        print(f"    expected {status} with {fields}", file=sys.stderr)
        sys.exit(1)
    return body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    args = ap.parse_args()
    till = Till(args.url, args.token)

    doc = expect("openapi document", till.call("GET", "/openapi.json", token=False), 200)
    assert "/v1/tickets/settle" in doc["paths"], "the document lists the settle endpoint"
    expect("no token, no answer", till.call("GET", "/v1/member", token=False), 401, error="unauthorized")
    till_wrong = Till(args.url, "wrong-token-wrong-token")
    expect("a wrong token", till_wrong.call("GET", "/v1/member"), 401, error="unauthorized")
    member = expect("who is at my till", till.call("GET", "/v1/member"), 200, name="Ana", tier="gold")
    start = member["points"]

    # A free coffee.
    coffee = {"id": "T-COFFEE", "lines": [line("ESPRESSO", "Espresso", "coffee", 1, "2.00")]}
    priced = expect("price a coffee", till.call("POST", "/v1/tickets/price", coffee), 200, money_due="0.00", points_due=0)
    assert priced["lines"][0]["free_drink"] is True
    expect("settle the coffee", till.call("POST", "/v1/tickets/settle", {"ticket": coffee, "tenders": []}), 200,
           points_earned=0)

    # Two beers and cigarettes with cash: 30 % off the beers, points on the beers only.
    beers = {"id": "T-BEERS", "lines": [line("BEER-BTL", "Bottled beer", "beer", 2, "4.50"),
                                         line("CIG-PACK", "Cigarettes", "tobacco", 1, "5.50", already_discounted=True)]}
    priced = expect("price beers and cigarettes", till.call("POST", "/v1/tickets/price", beers), 200, money_due="11.80")
    assert [l["discount_percent"] for l in priced["lines"]] == [30, 0]
    assert [l["money"] for l in priced["lines"]] == ["6.30", "5.50"]
    settle_beers = {"ticket": beers, "tenders": [{"kind": "cash", "amount": "11.80"}]}
    expect("pay beers and cigarettes in cash", till.call("POST", "/v1/tickets/settle", settle_beers), 200,
           points_earned=1, points_balance=start + 1)

    # Dinner paid with points at 30 % off.
    dinner = {"id": "T-DINNER", "outlet": "restaurant",
              "lines": [line("DINNER-MENU", "Three-course dinner", "food", 1, "45.00", pay_with="points")]}
    expect("price dinner in points", till.call("POST", "/v1/tickets/price", dinner), 200, money_due="0.00",
           points_due=315)
    expect("pay dinner with points",
           till.call("POST", "/v1/tickets/settle", {"ticket": dinner, "tenders": [{"kind": "points", "points": 315}]}),
           200, points_spent=315, points_balance=start + 1 - 315)

    # The showcase: one article a day.
    deck = {"id": "T-SHOW-1", "outlet": "showcase",
            "lines": [line("CARDS-DECK", "Playing cards", "showcase", 1, "0.00", pay_with="points")]}
    expect("take a showcase article",
           till.call("POST", "/v1/tickets/settle", {"ticket": deck, "tenders": [{"kind": "points", "points": 210}]}),
           200, points_spent=210)
    pen = {"id": "T-SHOW-2", "outlet": "showcase",
           "lines": [line("PEN", "Engraved pen", "showcase", 1, "0.00", pay_with="points")]}
    expect("a second showcase article the same day",
           till.call("POST", "/v1/tickets/settle", {"ticket": pen, "tenders": [{"kind": "points", "points": 1750}]}),
           409, error="declined")

    # The dinner is refunded: its points come back.
    expect("refund the dinner", till.call("POST", "/v1/tickets/T-DINNER/refund"), 200, points_returned=315,
           points_taken_back=0, points_balance=start + 1 - 210)
    expect("refund it again", till.call("POST", "/v1/tickets/T-DINNER/refund"), 409, error="already_reversed")

    # Bad input: clear errors, nothing earned or spent twice.
    unknown = {"id": "T-BAD-1", "lines": [line("CAVIAR", "Caviar", "food", 1, "90.00")]}
    expect("an unknown SKU", till.call("POST", "/v1/tickets/price", unknown), 422, error="unknown_sku")
    for q in (0, -2):
        bad = {"id": "T-BAD-Q", "lines": [line("BEER-BTL", "Bottled beer", "beer", q, "4.50")]}
        expect(f"quantity {q}", till.call("POST", "/v1/tickets/price", bad), 422, error="invalid")
    short = {"ticket": {"id": "T-BAD-2", "lines": [line("BEER-BTL", "Bottled beer", "beer", 2, "4.50")]},
             "tenders": [{"kind": "cash", "amount": "5.00"}]}
    expect("tenders that do not add up", till.call("POST", "/v1/tickets/settle", short), 422, error="invalid")
    expect("a replayed settle", till.call("POST", "/v1/tickets/settle", settle_beers), 409, error="already_settled")
    expect("not JSON", till.call("POST", "/v1/tickets/settle", raw=b"{not json"), 400, error="bad_request")
    expect("a void of an unknown ticket", till.call("POST", "/v1/tickets/T-NONE/void"), 404, error="not_found")

    member = expect("the balance at the end", till.call("GET", "/v1/member"), 200)
    print(json.dumps({"start": start, "end": member["points"]}))


if __name__ == "__main__":
    main()
