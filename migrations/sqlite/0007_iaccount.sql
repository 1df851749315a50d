-- The online i-Account (issue 9): accounts with three balances, the wallet ledger, game servers'
-- transactions, responsible-gaming limits and requests, deposits, vouchers, withdrawals.
--
-- iaccounts.bonus_cents / deposit_cents / winnings_cents are the cached sums of the account's
-- wallet_ledger entries, changed in the same transaction as each entry and never negative.
-- Code that changes an account first bumps iaccounts.lock_version (the row lock), like members.

CREATE TABLE iaccounts (
    id              INTEGER PRIMARY KEY,
    person_id       BIGINT  NOT NULL UNIQUE REFERENCES persons (id),
    -- the unique player identifier, given when identity and age are verified
    player_no       TEXT    UNIQUE,
    username        TEXT    NOT NULL UNIQUE,
    email           TEXT    NOT NULL UNIQUE,
    iban            TEXT    NOT NULL UNIQUE,
    password_hash   TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'unverified'
        CONSTRAINT iaccounts_state CHECK (state IN ('unverified', 'active', 'blocked', 'closed')),
    bonus_cents     BIGINT  NOT NULL DEFAULT 0 CONSTRAINT iaccounts_bonus_not_negative CHECK (bonus_cents >= 0),
    deposit_cents   BIGINT  NOT NULL DEFAULT 0 CONSTRAINT iaccounts_deposit_not_negative CHECK (deposit_cents >= 0),
    winnings_cents  BIGINT  NOT NULL DEFAULT 0 CONSTRAINT iaccounts_winnings_not_negative CHECK (winnings_cents >= 0),
    -- what regular bets must still stake before the bonus balance becomes winnings
    wagering_left_cents BIGINT NOT NULL DEFAULT 0 CONSTRAINT iaccounts_wagering_not_negative CHECK (wagering_left_cents >= 0),
    lock_version    BIGINT  NOT NULL DEFAULT 0,
    failed_logins   BIGINT  NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    -- the last payment transaction (deposit, stake, win, withdrawal): the inactivity rule's clock
    last_activity_at BIGINT NOT NULL,
    closed_at       BIGINT,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE wallet_ledger (
    id              INTEGER PRIMARY KEY,
    account_id      BIGINT  NOT NULL REFERENCES iaccounts (id),
    kind            TEXT    NOT NULL CONSTRAINT wallet_ledger_kind CHECK (kind IN (
        'deposit', 'bet', 'win', 'rollback', 'withdrawal', 'withdrawal_cancel', 'bonus_grant',
        'bonus_release', 'bonus_void', 'inactivity_payout', 'write_off')),
    -- signed changes of the three balances
    bonus_cents     BIGINT  NOT NULL,
    deposit_cents   BIGINT  NOT NULL,
    winnings_cents  BIGINT  NOT NULL,
    -- what caused it: a payment, a game server's transaction, a withdrawal
    reference       TEXT,
    round_id        TEXT,
    actor           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX wallet_ledger_account ON wallet_ledger (account_id, created_at);

CREATE TABLE game_servers (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    -- the HMAC-SHA256 key the server signs its requests with (needed in clear to verify)
    secret          TEXT    NOT NULL,
    -- where a player's browser starts a game (the token is added as ?token=...)
    launch_url      TEXT,
    created_at      BIGINT  NOT NULL,
    revoked_at      BIGINT
);

-- A player's game session: the token a game server authenticates with.
CREATE TABLE wallet_sessions (
    token_hash      TEXT    PRIMARY KEY,
    account_id      BIGINT  NOT NULL REFERENCES iaccounts (id),
    game_server     TEXT    NOT NULL REFERENCES game_servers (id),
    game            TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);

-- Every transaction a game server sent, once, with the first answer given: a repeat gets it again.
-- A rollback whose bet has not arrived stays here as a tombstone that refuses the bet later.
CREATE TABLE wallet_requests (
    game_server     TEXT    NOT NULL REFERENCES game_servers (id),
    txn_id          TEXT    NOT NULL,
    kind            TEXT    NOT NULL CONSTRAINT wallet_requests_kind CHECK (kind IN ('bet', 'win', 'rollback', 'end_round')),
    account_id      BIGINT  NOT NULL REFERENCES iaccounts (id),
    round_id        TEXT    NOT NULL,
    amount_cents    BIGINT  NOT NULL,
    ref_txn_id      TEXT,
    ledger_id       BIGINT  REFERENCES wallet_ledger (id),
    status          BIGINT  NOT NULL,
    reply           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (game_server, txn_id)
);
CREATE INDEX wallet_requests_ref ON wallet_requests (game_server, ref_txn_id);

-- Limits as history: the one in force for (kind, period) is the latest row already effective.
-- amount_cents NULL removes the limit.
CREATE TABLE iaccount_limits (
    id              INTEGER PRIMARY KEY,
    account_id      BIGINT  NOT NULL REFERENCES iaccounts (id),
    kind            TEXT    NOT NULL CONSTRAINT iaccount_limits_kind CHECK (kind IN ('deposit', 'stake', 'loss')),
    period          TEXT    NOT NULL CONSTRAINT iaccount_limits_period CHECK (period IN ('day', 'week', 'month')),
    amount_cents    BIGINT  CONSTRAINT iaccount_limits_amount CHECK (amount_cents IS NULL OR amount_cents >= 0),
    effective_at    BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX iaccount_limits_account ON iaccount_limits (account_id);

-- Requests that wait for the player's confirmation: a self-exclusion longer than 365 days
-- (3 days), closing the account (three weeks).
CREATE TABLE iaccount_requests (
    id              INTEGER PRIMARY KEY,
    account_id      BIGINT  NOT NULL REFERENCES iaccounts (id),
    kind            TEXT    NOT NULL CONSTRAINT iaccount_requests_kind CHECK (kind IN ('long_exclusion', 'close')),
    days            BIGINT,
    requested_at    BIGINT  NOT NULL,
    confirm_by      BIGINT  NOT NULL,
    confirmed_at    BIGINT,
    cancelled_at    BIGINT
);
CREATE INDEX iaccount_requests_account ON iaccount_requests (account_id);

-- Deposits by every method. provider_ref is the processor's, the bank's or the voucher's reference.
CREATE TABLE deposits (
    id              INTEGER PRIMARY KEY,
    account_id      BIGINT  NOT NULL REFERENCES iaccounts (id),
    method          TEXT    NOT NULL CONSTRAINT deposits_method CHECK (method IN ('card', 'bank_transfer', 'voucher', 'desk')),
    amount_cents    BIGINT  NOT NULL CONSTRAINT deposits_amount CHECK (amount_cents > 0),
    state           TEXT    NOT NULL CONSTRAINT deposits_state CHECK (state IN ('pending', 'completed', 'failed')),
    provider_ref    TEXT    NOT NULL UNIQUE,
    card_brand      TEXT,
    ledger_id       BIGINT  REFERENCES wallet_ledger (id),
    created_at      BIGINT  NOT NULL,
    completed_at    BIGINT
);
CREATE INDEX deposits_account ON deposits (account_id, created_at);

-- Every payment processor notification, once (duplicates are dropped on event_id).
CREATE TABLE psp_events (
    event_id        TEXT    PRIMARY KEY,
    provider_ref    TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    received_at     BIGINT  NOT NULL,
    body            TEXT    NOT NULL
);

-- Every imported bank statement line, once (on the bank's reference), with what became of it.
CREATE TABLE bank_statement_lines (
    bank_ref        TEXT    PRIMARY KEY,
    booked_on       TEXT    NOT NULL,
    amount_cents    BIGINT  NOT NULL,
    reference       TEXT    NOT NULL,
    account_id      BIGINT  REFERENCES iaccounts (id),
    outcome         TEXT    NOT NULL CONSTRAINT bank_statement_outcome CHECK (outcome IN ('credited', 'unmatched', 'refused')),
    imported_at     BIGINT  NOT NULL
);

-- Activation vouchers: the code is kept only as its SHA-256.
CREATE TABLE vouchers (
    id              INTEGER PRIMARY KEY,
    code_hash       TEXT    NOT NULL UNIQUE,
    amount_cents    BIGINT  NOT NULL CONSTRAINT vouchers_amount CHECK (amount_cents > 0),
    sold_by         TEXT    NOT NULL,
    sold_at         BIGINT  NOT NULL,
    redeemed_by     BIGINT  REFERENCES iaccounts (id),
    redeemed_at     BIGINT
);

CREATE TABLE withdrawals (
    id              INTEGER PRIMARY KEY,
    account_id      BIGINT  NOT NULL REFERENCES iaccounts (id),
    method          TEXT    NOT NULL CONSTRAINT withdrawals_method CHECK (method IN ('bank', 'desk')),
    amount_cents    BIGINT  NOT NULL CONSTRAINT withdrawals_amount CHECK (amount_cents > 0),
    iban            TEXT,
    state           TEXT    NOT NULL CONSTRAINT withdrawals_state CHECK (state IN ('pending', 'review', 'paid', 'cancelled', 'rejected')),
    -- the amounts taken from each balance when requested (given back on cancel)
    deposit_cents   BIGINT  NOT NULL,
    winnings_cents  BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    decided_at      BIGINT,
    decided_by      TEXT
);
CREATE INDEX withdrawals_account ON withdrawals (account_id, created_at);

CREATE TRIGGER wallet_ledger_append_only_update BEFORE UPDATE ON wallet_ledger
BEGIN SELECT RAISE(ABORT, 'wallet_ledger is append-only'); END;
CREATE TRIGGER wallet_ledger_append_only_delete BEFORE DELETE ON wallet_ledger
BEGIN SELECT RAISE(ABORT, 'wallet_ledger is append-only'); END;
CREATE TRIGGER wallet_requests_append_only_update BEFORE UPDATE ON wallet_requests
BEGIN SELECT RAISE(ABORT, 'wallet_requests is append-only'); END;
CREATE TRIGGER wallet_requests_append_only_delete BEFORE DELETE ON wallet_requests
BEGIN SELECT RAISE(ABORT, 'wallet_requests is append-only'); END;
CREATE TRIGGER iaccount_limits_append_only_update BEFORE UPDATE ON iaccount_limits
BEGIN SELECT RAISE(ABORT, 'iaccount_limits is append-only'); END;
CREATE TRIGGER iaccount_limits_append_only_delete BEFORE DELETE ON iaccount_limits
BEGIN SELECT RAISE(ABORT, 'iaccount_limits is append-only'); END;
CREATE TRIGGER psp_events_append_only_update BEFORE UPDATE ON psp_events
BEGIN SELECT RAISE(ABORT, 'psp_events is append-only'); END;
CREATE TRIGGER psp_events_append_only_delete BEFORE DELETE ON psp_events
BEGIN SELECT RAISE(ABORT, 'psp_events is append-only'); END;
CREATE TRIGGER bank_statement_lines_append_only_update BEFORE UPDATE ON bank_statement_lines
BEGIN SELECT RAISE(ABORT, 'bank_statement_lines is append-only'); END;
CREATE TRIGGER bank_statement_lines_append_only_delete BEFORE DELETE ON bank_statement_lines
BEGIN SELECT RAISE(ABORT, 'bank_statement_lines is append-only'); END;
