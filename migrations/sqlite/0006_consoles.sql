-- Staff consoles (issue 8): web sessions, the employee list, the self-exclusion register's
-- imports, the pit's open ratings and tables, and the cash desk's record of cash per person per
-- gaming day.

-- A logged-in browser. `id` is the SHA-256 (hex) of the cookie's random 256-bit token, so a copy
-- of this table does not let anyone log in. `subject_kind` says whose session it is (a staff
-- member or an online player), `subject_id` which one. A session ends at `expires_at` (absolute),
-- after a configured idle time since `last_seen_at`, or at logout (`ended_at`).
CREATE TABLE web_sessions (
    id              TEXT    PRIMARY KEY,
    subject_kind    TEXT    NOT NULL CONSTRAINT web_sessions_subject_kind CHECK (subject_kind IN ('staff', 'player')),
    subject_id      BIGINT  NOT NULL,
    -- the synchronizer token every state-changing form of this session must carry
    csrf_token      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    last_seen_at    BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    ended_at        BIGINT,
    -- a one-time message for the next page (JSON), set after a form is handled
    flash           TEXT
);
CREATE INDEX web_sessions_subject ON web_sessions (subject_kind, subject_id);

-- People who may not join the club: employees of the operator or of a partner in the club,
-- contractors and students. A row applies until `ended_at`.
CREATE TABLE employees (
    id              INTEGER PRIMARY KEY,
    personal_id     TEXT,
    first_name      TEXT    NOT NULL,
    last_name       TEXT    NOT NULL,
    birth_date      TEXT    NOT NULL,
    employer        TEXT    NOT NULL,
    relation        TEXT    NOT NULL
        CONSTRAINT employees_relation CHECK (relation IN ('employee', 'partner', 'contractor', 'student')),
    ended_at        BIGINT,
    created_by      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX employees_name ON employees (last_name, first_name, birth_date);
CREATE INDEX employees_personal_id ON employees (personal_id);

-- Where an exclusion came from: `register:<the regulator's entry id>` for rows imported from the
-- register file, so that importing the same file again adds nothing.
ALTER TABLE exclusions ADD COLUMN source_key TEXT;
CREATE UNIQUE INDEX exclusions_source_key ON exclusions (source_key);

CREATE TABLE register_imports (
    id              INTEGER PRIMARY KEY,
    file_sha256     TEXT    NOT NULL,
    rows_read       BIGINT  NOT NULL,
    rows_added      BIGINT  NOT NULL,
    imported_by     TEXT    NOT NULL,
    imported_at     BIGINT  NOT NULL
);

-- The pit's tables and the game each one deals, with the table's own limits.
CREATE TABLE pit_tables (
    id              TEXT    PRIMARY KEY,
    game            TEXT    NOT NULL,
    seats           BIGINT  NOT NULL CONSTRAINT pit_tables_seats CHECK (seats BETWEEN 1 AND 12),
    min_bet_cents   BIGINT  NOT NULL CONSTRAINT pit_tables_min_bet CHECK (min_bet_cents > 0),
    max_bet_cents   BIGINT  NOT NULL,
    updated_by      TEXT    NOT NULL,
    updated_at      BIGINT  NOT NULL,
    CONSTRAINT pit_tables_bets CHECK (max_bet_cents >= min_bet_cents)
);

-- A rating in progress at a table seat: opened when the player's card is presented, closed into a
-- `table_ratings` row (and its points) by `rating_id`.
CREATE TABLE pit_ratings (
    id              INTEGER PRIMARY KEY,
    member_id       BIGINT  NOT NULL REFERENCES members (id),
    table_id        TEXT    NOT NULL REFERENCES pit_tables (id),
    seat            BIGINT  NOT NULL,
    game            TEXT    NOT NULL,
    opened_at       BIGINT  NOT NULL,
    opened_by       BIGINT  NOT NULL,
    closed_at       BIGINT,
    closed_by       BIGINT,
    rating_id       BIGINT  REFERENCES table_ratings (id)
);
CREATE UNIQUE INDEX pit_ratings_open_seat ON pit_ratings (table_id, seat) WHERE closed_at IS NULL;
CREATE UNIQUE INDEX pit_ratings_open_member ON pit_ratings (member_id) WHERE closed_at IS NULL;

-- Each average bet the croupier records for a rating, from its time on; the rating's average is
-- weighted by how long each one lasted. Append-only.
CREATE TABLE pit_bets (
    id              INTEGER PRIMARY KEY,
    pit_rating_id   BIGINT  NOT NULL REFERENCES pit_ratings (id),
    average_bet_cents BIGINT NOT NULL CONSTRAINT pit_bets_positive CHECK (average_bet_cents > 0),
    at              BIGINT  NOT NULL,
    recorded_by     BIGINT  NOT NULL
);
CREATE INDEX pit_bets_rating ON pit_bets (pit_rating_id, at);

-- Cash moved at the cash desk, per person and gaming day, kept for anti-money-laundering reports.
-- `day_total_cents` is the person's total for the day including this row; `reportable` is 1 once
-- that total reached the reporting threshold. Append-only.
CREATE TABLE cash_desk_records (
    id              INTEGER PRIMARY KEY,
    person_id       BIGINT  NOT NULL REFERENCES persons (id),
    gaming_day      TEXT    NOT NULL,
    kind            TEXT    NOT NULL
        CONSTRAINT cash_desk_records_kind CHECK (kind IN ('online_deposit', 'online_withdrawal', 'voucher_sale')),
    amount_cents    BIGINT  NOT NULL CONSTRAINT cash_desk_records_positive CHECK (amount_cents > 0),
    day_total_cents BIGINT  NOT NULL,
    reportable      BIGINT  NOT NULL,
    reference       TEXT,
    staff_id        BIGINT  NOT NULL,
    at              BIGINT  NOT NULL
);
CREATE INDEX cash_desk_records_day ON cash_desk_records (person_id, gaming_day);
CREATE INDEX cash_desk_records_reportable ON cash_desk_records (gaming_day) WHERE reportable = 1;

CREATE TRIGGER pit_bets_append_only_update BEFORE UPDATE ON pit_bets
BEGIN SELECT RAISE(ABORT, 'pit_bets is append-only'); END;
CREATE TRIGGER pit_bets_append_only_delete BEFORE DELETE ON pit_bets
BEGIN SELECT RAISE(ABORT, 'pit_bets is append-only'); END;
CREATE TRIGGER cash_desk_records_append_only_update BEFORE UPDATE ON cash_desk_records
BEGIN SELECT RAISE(ABORT, 'cash_desk_records is append-only'); END;
CREATE TRIGGER cash_desk_records_append_only_delete BEFORE DELETE ON cash_desk_records
BEGIN SELECT RAISE(ABORT, 'cash_desk_records is append-only'); END;
