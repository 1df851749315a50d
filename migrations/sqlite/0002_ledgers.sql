-- The club's ledgers (issue 3): points lots, carry-over, free play, tier history, the manager's
-- review list, correction requests and table ratings.
--
-- The ledgers (points_ledger, free_play_ledger, tier_events) stay append-only. What changes as
-- lots are spent lives beside them in small mutable tables (points_lots, free_play_grants), each
-- row keyed by the id of the ledger entry that opened the lot and holding a cached `remaining`
-- that is always the sum of that lot's entries. members.points_balance and
-- members.free_play_cents are the cached sums of the two ledgers.

-- Which lot an entry opened or changed (NULL: it opened the lot whose id is its own id), when an
-- opened lot expires, the second person who approved a correction, and a key that makes a repeat
-- of a job or an event write nothing.
ALTER TABLE points_ledger ADD COLUMN lot_id BIGINT;
ALTER TABLE points_ledger ADD COLUMN expires_at BIGINT;
ALTER TABLE points_ledger ADD COLUMN approved_by BIGINT;
ALTER TABLE points_ledger ADD COLUMN source_key TEXT;
CREATE UNIQUE INDEX points_ledger_source_key ON points_ledger (source_key);
CREATE INDEX points_ledger_earned ON points_ledger (member_id, kind, created_at);

ALTER TABLE members ADD COLUMN free_play_cents BIGINT NOT NULL DEFAULT 0
    CONSTRAINT members_free_play_not_negative CHECK (free_play_cents >= 0);
-- The anniversary (YYYY-MM-DD) of the last annual review; NULL before the first.
ALTER TABLE members ADD COLUMN last_reviewed_on TEXT;

CREATE TABLE points_lots (
    lot_id          BIGINT  PRIMARY KEY REFERENCES points_ledger (id),
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    category        TEXT    NOT NULL,
    opened_at       BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    remaining       BIGINT  NOT NULL CONSTRAINT points_lots_not_negative CHECK (remaining >= 0)
);
CREATE INDEX points_lots_open ON points_lots (member_id, opened_at) WHERE remaining > 0;
CREATE INDEX points_lots_expiring ON points_lots (expires_at) WHERE remaining > 0;

-- What has not yet made a whole point, per member and earning category: machine types in cents
-- wagered, the table category as a decimal fraction of a point (text, exact).
CREATE TABLE points_carry (
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    category        TEXT    NOT NULL,
    carry_cents     BIGINT  NOT NULL DEFAULT 0 CONSTRAINT points_carry_cents CHECK (carry_cents >= 0),
    carry_points    TEXT    NOT NULL DEFAULT '0',
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (member_id, category)
);

CREATE TABLE free_play_ledger (
    id              INTEGER PRIMARY KEY,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    kind            TEXT    NOT NULL
        CONSTRAINT free_play_ledger_kind CHECK (kind IN ('issued', 'sent', 'returned', 'expired', 'deleted')),
    amount_cents    BIGINT  NOT NULL,
    -- the grant changed (NULL: this entry opened a grant, whose id is its own id)
    lot_id          BIGINT,
    expires_at      BIGINT,
    -- points a cashback spent, for `issued`
    points          BIGINT,
    -- the machine transfer an entry belongs to, for `sent` and `returned`
    transfer_id     TEXT,
    reason          TEXT,
    staff_id        BIGINT,
    rule_version    TEXT    NOT NULL,
    source_key      TEXT    UNIQUE,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX free_play_ledger_member ON free_play_ledger (member_id, created_at);
CREATE INDEX free_play_ledger_transfer ON free_play_ledger (transfer_id);

CREATE TABLE free_play_grants (
    lot_id          BIGINT  PRIMARY KEY REFERENCES free_play_ledger (id),
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    opened_at       BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    remaining_cents BIGINT  NOT NULL CONSTRAINT free_play_grants_not_negative CHECK (remaining_cents >= 0)
);
CREATE INDEX free_play_grants_open ON free_play_grants (member_id, opened_at) WHERE remaining_cents > 0;
CREATE INDEX free_play_grants_expiring ON free_play_grants (expires_at) WHERE remaining_cents > 0;

-- Every tier decision: promotions, reviews (annual or a manager's), VIP eligibility, listings.
CREATE TABLE tier_events (
    id              INTEGER PRIMARY KEY,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    kind            TEXT    NOT NULL
        CONSTRAINT tier_events_kind CHECK (kind IN ('promoted', 'reviewed', 'eligible_for_vip', 'listed_for_review')),
    from_tier       TEXT,
    to_tier         TEXT,
    staff_id        BIGINT,
    anniversary     TEXT,
    rule_version    TEXT    NOT NULL,
    source_key      TEXT    UNIQUE,
    at              BIGINT  NOT NULL
);
CREATE INDEX tier_events_member ON tier_events (member_id, at);

-- The manager's list: members eligible for VIP Exclusive, VIP and Chairman members at their
-- anniversary. A row is open until a manager reviews the member.
CREATE TABLE review_list (
    id              INTEGER PRIMARY KEY,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    reason          TEXT    NOT NULL CONSTRAINT review_list_reason CHECK (reason IN ('vip_eligible', 'anniversary')),
    -- the anniversary for `anniversary` rows, '' for eligibility
    anniversary     TEXT    NOT NULL DEFAULT '',
    listed_at       BIGINT  NOT NULL,
    done_at         BIGINT,
    done_by         BIGINT,
    CONSTRAINT review_list_once UNIQUE (member_id, reason, anniversary)
);

CREATE TABLE correction_requests (
    id              INTEGER PRIMARY KEY,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    points          BIGINT  NOT NULL,
    reason          TEXT    NOT NULL,
    requested_by    BIGINT  NOT NULL,
    requested_at    BIGINT  NOT NULL,
    approved_by     BIGINT,
    approved_at     BIGINT,
    CONSTRAINT correction_requests_second_person CHECK (approved_by IS NULL OR approved_by <> requested_by)
);
CREATE INDEX correction_requests_pending ON correction_requests (member_id) WHERE approved_at IS NULL;

CREATE TABLE table_ratings (
    id              INTEGER PRIMARY KEY,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    game            TEXT    NOT NULL,
    seconds         BIGINT  NOT NULL,
    average_bet_cents BIGINT NOT NULL,
    theoretical_win_cents BIGINT,
    points          BIGINT  NOT NULL,
    -- why no points were given, when none were
    no_points       TEXT,
    -- JSON list of what the pit boss should check
    flags           TEXT    NOT NULL,
    rated_by        BIGINT  NOT NULL,
    rule_version    TEXT    NOT NULL,
    at              BIGINT  NOT NULL
);
CREATE INDEX table_ratings_member ON table_ratings (member_id, at);

CREATE TRIGGER free_play_ledger_append_only_update BEFORE UPDATE ON free_play_ledger
BEGIN SELECT RAISE(ABORT, 'free_play_ledger is append-only'); END;
CREATE TRIGGER free_play_ledger_append_only_delete BEFORE DELETE ON free_play_ledger
BEGIN SELECT RAISE(ABORT, 'free_play_ledger is append-only'); END;
CREATE TRIGGER tier_events_append_only_update BEFORE UPDATE ON tier_events
BEGIN SELECT RAISE(ABORT, 'tier_events is append-only'); END;
CREATE TRIGGER tier_events_append_only_delete BEFORE DELETE ON tier_events
BEGIN SELECT RAISE(ABORT, 'tier_events is append-only'); END;
