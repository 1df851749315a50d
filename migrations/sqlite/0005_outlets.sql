-- Outlet redemption (issue 7 and issue 3's bars, restaurants, hotel and showcase): the catalogue
-- of articles with their point prices and flags, and the tickets settled at outlets.
--
-- A ticket row is written once when it is settled and marked once when it is voided or refunded
-- (`reversed_at`); the points it spent, earned and gave back are entries in points_ledger keyed
-- `outlet:<ticket row id>:...`, so the ledger stays the record.

CREATE TABLE catalogue (
    sku                 TEXT    PRIMARY KEY,
    name                TEXT    NOT NULL,
    category            TEXT    NOT NULL,
    -- points per unit before the tier discount; NULL: not for points
    points_price        BIGINT  CONSTRAINT catalogue_points_price CHECK (points_price IS NULL OR points_price > 0),
    showcase            BIGINT  NOT NULL DEFAULT 0 CONSTRAINT catalogue_showcase CHECK (showcase IN (0, 1)),
    member_free         BIGINT  NOT NULL DEFAULT 0 CONSTRAINT catalogue_member_free CHECK (member_free IN (0, 1)),
    already_discounted  BIGINT  NOT NULL DEFAULT 0 CONSTRAINT catalogue_already_discounted CHECK (already_discounted IN (0, 1)),
    active              BIGINT  NOT NULL DEFAULT 1 CONSTRAINT catalogue_active CHECK (active IN (0, 1)),
    updated_at          BIGINT  NOT NULL
);

CREATE TABLE outlet_tickets (
    id                  INTEGER PRIMARY KEY,
    terminal_id         TEXT    NOT NULL REFERENCES terminals (id),
    ticket              TEXT    NOT NULL,
    member_id           BIGINT  NOT NULL REFERENCES members (id),
    outlet              TEXT    NOT NULL CONSTRAINT outlet_tickets_outlet CHECK (outlet IN ('bar', 'restaurant', 'hotel', 'showcase')),
    -- the gaming day (YYYY-MM-DD, the casino calendar) the showcase limit counts in
    day                 TEXT    NOT NULL,
    showcase_items      BIGINT  NOT NULL DEFAULT 0,
    money_due_cents     BIGINT  NOT NULL CONSTRAINT outlet_tickets_money CHECK (money_due_cents >= 0),
    points_spent        BIGINT  NOT NULL CONSTRAINT outlet_tickets_points CHECK (points_spent >= 0),
    points_earned       BIGINT  NOT NULL DEFAULT 0,
    -- how many points_ledger entries the settlement spent (keys outlet:<id>:spend:<i>)
    spend_entries       BIGINT  NOT NULL DEFAULT 0,
    -- the request as settled (JSON), so a repeat can be told from a different sale
    request             TEXT    NOT NULL,
    -- the first answer (JSON)
    reply               TEXT    NOT NULL,
    rule_version        TEXT    NOT NULL,
    settled_at          BIGINT  NOT NULL,
    reversal            TEXT    CONSTRAINT outlet_tickets_reversal CHECK (reversal IN ('void', 'refund')),
    reversed_at         BIGINT,
    reversal_reply      TEXT,
    CONSTRAINT outlet_tickets_once UNIQUE (terminal_id, ticket)
);
CREATE INDEX outlet_tickets_showcase ON outlet_tickets (member_id, day) WHERE showcase_items > 0;
