-- Foundation: persons, members, cards, terminals, sessions, events, points ledger, staff, audit.

CREATE TABLE persons (
    id              INTEGER PRIMARY KEY,
    first_name      TEXT    NOT NULL,
    last_name       TEXT    NOT NULL,
    birth_date      TEXT    NOT NULL,
    personal_id     TEXT    UNIQUE,
    email           TEXT,
    phone           TEXT,
    address         TEXT,
    city            TEXT,
    postal_code     TEXT,
    country         TEXT,
    nationality     TEXT,
    sex             TEXT,
    id_doc_type     TEXT,
    id_doc_number   TEXT,
    id_doc_country  TEXT,
    id_doc_issuer   TEXT,
    iban            TEXT,
    is_employee     BIGINT  NOT NULL DEFAULT 0,
    marketing_opt_out BIGINT NOT NULL DEFAULT 0,
    processing_objection BIGINT NOT NULL DEFAULT 0,
    data_blocked_at BIGINT,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX persons_name ON persons (last_name, first_name, birth_date);

CREATE TABLE members (
    id              INTEGER PRIMARY KEY,
    person_id       BIGINT  NOT NULL UNIQUE REFERENCES persons (id),
    member_no       TEXT    NOT NULL UNIQUE,
    state           TEXT    NOT NULL DEFAULT 'active'
        CONSTRAINT members_state CHECK (state IN ('active', 'self_excluded', 'banned', 'left', 'terminated')),
    tier            TEXT    NOT NULL DEFAULT 'bronze'
        CONSTRAINT members_tier CHECK (tier IN ('bronze', 'silver', 'gold', 'vip_exclusive', 'chairman')),
    joined_at       BIGINT  NOT NULL,
    state_changed_at BIGINT NOT NULL,
    ended_reason    TEXT,
    -- cached sum of the member's points ledger, updated in the same transaction as each entry
    points_balance  BIGINT  NOT NULL DEFAULT 0 CONSTRAINT members_points_not_negative CHECK (points_balance >= 0),
    -- bumped at the start of every write transaction about this member: takes the row lock on
    -- PostgreSQL, so concurrent floor-server processes serialise on one member
    lock_version    BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE cards (
    id              INTEGER PRIMARY KEY,
    card_number     TEXT    NOT NULL UNIQUE,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    state           TEXT    NOT NULL DEFAULT 'issued'
        CONSTRAINT cards_state CHECK (state IN ('issued', 'active', 'blocked_lost', 'blocked_stolen', 'replaced', 'revoked')),
    issued_at       BIGINT  NOT NULL,
    activated_at    BIGINT,
    state_changed_at BIGINT NOT NULL,
    replaced_by     BIGINT  REFERENCES cards (id)
);
CREATE INDEX cards_member ON cards (member_id);

-- The register of self-excluded persons, the club's own list and entry bans. A row applies from
-- starts_at until ends_at (NULL: until lifted). Matched on person, or on personal id / name and
-- birth date for register rows that name someone we do not know yet.
CREATE TABLE exclusions (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL CONSTRAINT exclusions_kind CHECK (kind IN ('register', 'own_request', 'ban')),
    person_id       BIGINT  REFERENCES persons (id),
    personal_id     TEXT,
    first_name      TEXT,
    last_name       TEXT,
    birth_date      TEXT,
    starts_at       BIGINT  NOT NULL,
    ends_at         BIGINT,
    reason          TEXT,
    created_by      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX exclusions_person ON exclusions (person_id);
CREATE INDEX exclusions_personal_id ON exclusions (personal_id);

CREATE TABLE terminals (
    id              TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL CONSTRAINT terminals_kind CHECK (kind IN ('slot', 'bar', 'table')),
    machine_type    TEXT    CONSTRAINT terminals_machine_type CHECK (machine_type IN ('slot', 'electronic_roulette', 'video_poker')),
    location        TEXT    NOT NULL,
    -- SHA-256 of the terminal's random 256-bit secret (high entropy: a slow hash adds nothing)
    secret_hash     TEXT    NOT NULL,
    enrolled_at     BIGINT  NOT NULL,
    revoked_at      BIGINT,
    -- the last event sequence number committed for this terminal
    last_seq        BIGINT  NOT NULL DEFAULT 0,
    last_seen_at    BIGINT,
    CONSTRAINT terminals_slot_has_machine_type CHECK ((kind = 'slot') = (machine_type IS NOT NULL))
);

CREATE TABLE card_sessions (
    id              TEXT    PRIMARY KEY,
    terminal_id     TEXT    NOT NULL REFERENCES terminals (id),
    card_id         BIGINT  REFERENCES cards (id),
    member_id       BIGINT  REFERENCES members (id),
    opened_at       BIGINT  NOT NULL,
    closed_at       BIGINT,
    close_reason    TEXT,
    offline         BIGINT  NOT NULL DEFAULT 0,
    -- set when the card was refused: the session exists only as a record of the attempt
    refusal         TEXT,
    games           BIGINT  NOT NULL DEFAULT 0,
    wagered_cents   BIGINT  NOT NULL DEFAULT 0,
    won_cents       BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX card_sessions_member ON card_sessions (member_id, opened_at);
CREATE INDEX card_sessions_open ON card_sessions (terminal_id) WHERE closed_at IS NULL;

-- Every terminal event, once per (terminal, seq), with the first answer given to it.
CREATE TABLE terminal_events (
    terminal_id     TEXT    NOT NULL REFERENCES terminals (id),
    seq             BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    session_id      TEXT,
    occurred_at     BIGINT  NOT NULL,
    received_at     BIGINT  NOT NULL,
    body            TEXT    NOT NULL,
    reply           TEXT    NOT NULL,
    PRIMARY KEY (terminal_id, seq)
);

-- Append-only: a balance is the sum of its entries; a correction is a new entry.
CREATE TABLE points_ledger (
    id              INTEGER PRIMARY KEY,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    kind            TEXT    NOT NULL,
    points          BIGINT  NOT NULL,
    category        TEXT,
    terminal_id     TEXT,
    seq             BIGINT,
    reason          TEXT,
    staff_id        BIGINT,
    rule_version    TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX points_ledger_member ON points_ledger (member_id, created_at);

CREATE TABLE staff_users (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    display_name    TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    -- comma-separated role codes
    roles           TEXT    NOT NULL,
    language        TEXT    NOT NULL DEFAULT 'en',
    failed_logins   BIGINT  NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    disabled_at     BIGINT,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    at              BIGINT  NOT NULL,
    actor           TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    subject         TEXT,
    before          TEXT,
    after           TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Commands for terminals (block a card, show a message) that every floor-server process picks up
-- and pushes to the terminals connected to it.
CREATE TABLE terminal_broadcasts (
    id              INTEGER PRIMARY KEY,
    created_at      BIGINT  NOT NULL,
    message         TEXT    NOT NULL
);

CREATE TRIGGER points_ledger_append_only_update BEFORE UPDATE ON points_ledger
BEGIN SELECT RAISE(ABORT, 'points_ledger is append-only'); END;
CREATE TRIGGER points_ledger_append_only_delete BEFORE DELETE ON points_ledger
BEGIN SELECT RAISE(ABORT, 'points_ledger is append-only'); END;
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER terminal_events_append_only_update BEFORE UPDATE ON terminal_events
BEGIN SELECT RAISE(ABORT, 'terminal_events is append-only'); END;
CREATE TRIGGER terminal_events_append_only_delete BEFORE DELETE ON terminal_events
BEGIN SELECT RAISE(ABORT, 'terminal_events is append-only'); END;
