-- Terminal agent (issue 6): member PINs for redemption at a machine, redemptions made at a
-- machine (so a failed transfer can give the points back), and cards presented at tables.

-- One PIN per member (argon2id hash). `failed_tries` counts wrong PINs since the last good one;
-- at the limit `locked_at` is set and only staff can unlock.
CREATE TABLE member_pins (
    member_id       BIGINT  PRIMARY KEY REFERENCES members (id),
    pin_hash        TEXT    NOT NULL,
    failed_tries    BIGINT  NOT NULL DEFAULT 0 CONSTRAINT member_pins_tries CHECK (failed_tries >= 0),
    locked_at       BIGINT,
    updated_at      BIGINT  NOT NULL
);

-- A cashback made at a machine, named by the transfer id the terminal chose. `state`: 'sent'
-- while the machine transfer is under way or done, 'reversed' once a failed transfer has given
-- the points back (once only).
CREATE TABLE machine_redemptions (
    transfer_id     TEXT    PRIMARY KEY,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    terminal_id     TEXT    NOT NULL REFERENCES terminals (id),
    points          BIGINT  NOT NULL CONSTRAINT machine_redemptions_points CHECK (points > 0),
    amount_cents    BIGINT  NOT NULL CONSTRAINT machine_redemptions_amount CHECK (amount_cents > 0),
    state           TEXT    NOT NULL CONSTRAINT machine_redemptions_state CHECK (state IN ('sent', 'reversed')),
    created_at      BIGINT  NOT NULL,
    reversed_at     BIGINT
);
CREATE INDEX machine_redemptions_member ON machine_redemptions (member_id, created_at);

-- Cards presented at a table terminal: what the pit console shows as the players at a table.
-- Append-only.
CREATE TABLE table_presence (
    id              INTEGER PRIMARY KEY,
    terminal_id     TEXT    NOT NULL REFERENCES terminals (id),
    seq             BIGINT  NOT NULL,
    card_id         BIGINT  REFERENCES cards (id),
    member_id       BIGINT  REFERENCES members (id),
    seat            BIGINT,
    refusal         TEXT,
    presented_at    BIGINT  NOT NULL,
    CONSTRAINT table_presence_event UNIQUE (terminal_id, seq)
);
CREATE INDEX table_presence_table ON table_presence (terminal_id, presented_at);

CREATE TRIGGER table_presence_no_update BEFORE UPDATE ON table_presence
BEGIN
    SELECT RAISE(ABORT, 'table_presence is append-only');
END;
CREATE TRIGGER table_presence_no_delete BEFORE DELETE ON table_presence
BEGIN
    SELECT RAISE(ABORT, 'table_presence is append-only');
END;
