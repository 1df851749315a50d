//! The i-Account cashier: deposits (card through the payment processor, bank transfer from an
//! imported statement, activation vouchers, cash at a casino desk), withdrawals (to the player's
//! own IBAN or at a desk; held for review above the AML threshold; cancellable while pending),
//! and bonuses.
//!
//! Key decision: a withdrawal takes its money from the balances when it is requested (a
//! `withdrawal` ledger entry), so what is waiting can never be staked or withdrawn twice; a
//! cancellation or rejection gives back exactly what was taken. Money already received (a
//! processor's success, a bank statement line) is always credited, whatever the limits: the gate
//! and the deposit limits are asked when a deposit is started, for the methods that have a start.
//!
//! Cash at a desk is recorded for the person's gaming day ([`cashdesk::record_cash`]) by the same
//! functions, in the same transaction as the movement: [`desk_deposit`], [`desk_withdrawal`],
//! [`sell_voucher`] and [`mark_paid`] of a desk withdrawal cannot move cash the day's total misses.
//!
//! Not here: the console pages (the cashier console calls these with the staff member as the
//! actor, after its identity check).

use club_rules::online;
use club_rules::{Money, Rules};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::{Delta, Entry, EntryKind, Refusal, WalletResult, gate, limit_rows, lock, period_index, post, usage};
use crate::audit::{self, Actor};
use crate::cashdesk::{self, CashKind, CashTotal};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::time;
use crate::store::Store;

/// Withdrawals above this are held for a manager's review (anti-money-laundering; our choice:
/// EUR 2,000, the threshold for customer due diligence at casinos in the EU AML directive).
pub fn aml_review_threshold() -> Money {
    Money::from_cents(200_000)
}

fn staff_only(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Staff { .. } => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

/// Checks the gate and the deposit limits for a deposit of `amount` starting now. Call after
/// [`lock`].
pub async fn deposit_allowed(tx: &mut Transaction<'static, Any>, account: &super::Account, amount: Money, now: Millis) -> WalletResult<()> {
    gate(tx, account, now).await?;
    let now_t = time(now)?;
    let limits = online::limits_in_force(&limit_rows(tx, account.id).await?, now_t);
    let used = usage(tx, account.id, now_t).await?;
    online::check_deposit(&limits, |p| used[period_index(p)], amount).map_err(super::refusal_from(account.balances.withdrawable()))
}

/// Records a completed deposit and credits it as deposited funds. Call after [`lock`].
pub(crate) async fn credit_deposit(
    tx: &mut Transaction<'static, Any>,
    account_id: i64,
    method: &str,
    amount: Money,
    provider_ref: &str,
    actor: &str,
    now: Millis,
) -> Result<i64> {
    let ledger_id = post(
        tx,
        account_id,
        &Entry {
            kind: EntryKind::Deposit,
            delta: Delta { bonus: 0, deposit: amount.cents(), winnings: 0 },
            reference: Some(provider_ref),
            round_id: None,
            actor,
        },
        true,
        now,
    )
    .await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deposits (account_id, method, amount_cents, state, provider_ref, ledger_id, created_at, completed_at) \
         VALUES ($1, $2, $3, 'completed', $4, $5, $6, $6) RETURNING id",
    )
    .bind(account_id)
    .bind(method)
    .bind(amount.cents())
    .bind(provider_ref)
    .bind(ledger_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// Cash paid in at a casino desk, recorded for the person's gaming day in the same transaction.
/// Returns the deposit's id and the person's cash for the day.
pub async fn desk_deposit(store: &Store, rules: &Rules, account_id: i64, amount: Money, actor: &Actor, now: Millis) -> WalletResult<(i64, CashTotal)> {
    staff_only(actor)?;
    let amount = super::positive(amount)?;
    let mut tx = store.begin().await?;
    let account = lock(&mut tx, account_id).await?;
    deposit_allowed(&mut tx, &account, amount, now).await?;
    let reference = format!("desk:{}", uuid::Uuid::new_v4());
    let id = credit_deposit(&mut tx, account_id, "desk", amount, &reference, &actor.code(), now).await?;
    audit::record(&mut tx, now, actor, "iaccount.desk_deposit", &format!("iaccount:{account_id}"), None::<()>, Some(amount.cents())).await?;
    let cash = cashdesk::record_cash(&mut tx, rules, account.person_id, CashKind::OnlineDeposit, amount, Some(&format!("iaccount_deposit:{id}")), actor, now).await?;
    tx.commit().await?;
    Ok((id, cash))
}

/// Where a withdrawal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalMethod {
    /// To the player's own IBAN (minimum EUR 10.00).
    Bank,
    /// In cash at a casino desk.
    Desk,
}

/// A withdrawal's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalState {
    Pending,
    Review,
    Paid,
    Cancelled,
    Rejected,
}

/// What a withdrawal request became.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Withdrawal {
    pub id: i64,
    pub state: WithdrawalState,
    /// Bonus voided because the wagering requirement was not met.
    #[schema(value_type = String)]
    pub bonus_voided: Money,
}

/// A withdrawal requested by the player: taken from the balances now (deposits first, then
/// winnings; bonus never), left pending for payment, or held for review above the AML threshold.
/// Allowed while self-excluded. Withdrawing before a bonus is wagered voids the bonus.
pub async fn request_withdrawal(store: &Store, account_id: i64, method: WithdrawalMethod, amount: Money, now: Millis) -> WalletResult<Withdrawal> {
    let mut tx = store.begin().await?;
    let w = withdraw(&mut tx, account_id, method, amount, "player", now).await?;
    tx.commit().await?;
    Ok(w)
}

async fn withdraw(
    tx: &mut Transaction<'static, Any>,
    account_id: i64,
    method: WithdrawalMethod,
    amount: Money,
    actor: &str,
    now: Millis,
) -> WalletResult<Withdrawal> {
    let account = lock(tx, account_id).await?;
    if matches!(account.state, super::AccountState::Unverified | super::AccountState::Blocked) {
        return Err(Refusal::Blocked.into());
    }
    let minimum = match method {
        WithdrawalMethod::Bank => online::minimum_bank_withdrawal(),
        WithdrawalMethod::Desk => Money::ZERO,
    };
    let split = online::split_withdrawal(&account.balances, amount, minimum).map_err(super::refusal_from(account.balances.withdrawable()))?;
    let voided = online::bonus_voided_by_withdrawal(account.balances.bonus, account.wagering_left);
    if voided > Money::ZERO {
        post(
            tx,
            account_id,
            &Entry { kind: EntryKind::BonusVoid, delta: Delta { bonus: -voided.cents(), ..Delta::default() }, reference: None, round_id: None, actor },
            false,
            now,
        )
        .await?;
        sqlx::query("UPDATE iaccounts SET wagering_left_cents = 0 WHERE id = $1").bind(account_id).execute(&mut **tx).await?;
    }
    let state = if amount > aml_review_threshold() { WithdrawalState::Review } else { WithdrawalState::Pending };
    let iban: Option<String> = match method {
        WithdrawalMethod::Bank => sqlx::query_scalar("SELECT iban FROM iaccounts WHERE id = $1").bind(account_id).fetch_one(&mut **tx).await?,
        WithdrawalMethod::Desk => None,
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO withdrawals (account_id, method, amount_cents, iban, state, deposit_cents, winnings_cents, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(account_id)
    .bind(method_code(method))
    .bind(amount.cents())
    .bind(iban)
    .bind(state_code(state))
    .bind(split.deposited.cents())
    .bind(split.winnings.cents())
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let reference = format!("withdrawal:{id}");
    post(
        tx,
        account_id,
        &Entry {
            kind: EntryKind::Withdrawal,
            delta: Delta { bonus: 0, deposit: -split.deposited.cents(), winnings: -split.winnings.cents() },
            reference: Some(&reference),
            round_id: None,
            actor,
        },
        true,
        now,
    )
    .await?;
    Ok(Withdrawal { id, state, bonus_voided: voided })
}

fn method_code(m: WithdrawalMethod) -> &'static str {
    match m {
        WithdrawalMethod::Bank => "bank",
        WithdrawalMethod::Desk => "desk",
    }
}

fn state_code(s: WithdrawalState) -> &'static str {
    match s {
        WithdrawalState::Pending => "pending",
        WithdrawalState::Review => "review",
        WithdrawalState::Paid => "paid",
        WithdrawalState::Cancelled => "cancelled",
        WithdrawalState::Rejected => "rejected",
    }
}

/// Cash paid out at a casino desk: paid at once and recorded for the person's gaming day, unless
/// above the AML threshold, where it waits for review like any other (and is recorded when
/// [`mark_paid`] pays it). Returns the withdrawal and, when paid now, the person's cash for the day.
pub async fn desk_withdrawal(store: &Store, rules: &Rules, account_id: i64, amount: Money, actor: &Actor, now: Millis) -> WalletResult<(Withdrawal, Option<CashTotal>)> {
    staff_only(actor)?;
    let mut tx = store.begin().await?;
    let mut w = withdraw(&mut tx, account_id, WithdrawalMethod::Desk, amount, &actor.code(), now).await?;
    let mut cash = None;
    if w.state == WithdrawalState::Pending {
        sqlx::query("UPDATE withdrawals SET state = 'paid', decided_at = $1, decided_by = $2 WHERE id = $3")
            .bind(now)
            .bind(actor.code())
            .bind(w.id)
            .execute(&mut *tx)
            .await?;
        w.state = WithdrawalState::Paid;
        let person: i64 = sqlx::query_scalar("SELECT person_id FROM iaccounts WHERE id = $1").bind(account_id).fetch_one(&mut *tx).await?;
        let reference = format!("iaccount_withdrawal:{}", w.id);
        cash = Some(cashdesk::record_cash(&mut tx, rules, person, CashKind::OnlineWithdrawal, amount, Some(&reference), actor, now).await?);
    }
    audit::record(&mut tx, now, actor, "iaccount.desk_withdrawal", &format!("iaccount:{account_id}"), None::<()>, Some(&w)).await?;
    tx.commit().await?;
    Ok((w, cash))
}

/// Gives back what a withdrawal took and moves it to `to` (cancelled by the player, rejected by
/// staff). Only while pending or in review.
/// Takes a pending or held withdrawal back into the account; with `staff`, audited as that staff
/// member's decision in the same transaction.
async fn give_back(
    store: &Store,
    account_id: Option<i64>,
    withdrawal_id: i64,
    to: WithdrawalState,
    actor: &str,
    staff: Option<(&Actor, &str)>,
    now: Millis,
) -> Result<()> {
    let row = sqlx::query("SELECT account_id FROM withdrawals WHERE id = $1")
        .bind(withdrawal_id)
        .fetch_optional(store.read())
        .await?
        .ok_or_else(|| Error::NotFound(format!("withdrawal {withdrawal_id}")))?;
    let owner: i64 = row.try_get("account_id")?;
    if account_id.is_some_and(|a| a != owner) {
        return Err(Error::NotFound(format!("withdrawal {withdrawal_id}")));
    }
    let mut tx = store.begin().await?;
    lock(&mut tx, owner).await?;
    let taken = sqlx::query(
        "UPDATE withdrawals SET state = $1, decided_at = $2, decided_by = $3 WHERE id = $4 AND state IN ('pending', 'review') \
         RETURNING deposit_cents, winnings_cents",
    )
    .bind(state_code(to))
    .bind(now)
    .bind(actor)
    .bind(withdrawal_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::Conflict("only a pending withdrawal can be cancelled".into()))?;
    let reference = format!("withdrawal:{withdrawal_id}");
    post(
        &mut tx,
        owner,
        &Entry {
            kind: EntryKind::WithdrawalCancel,
            delta: Delta { bonus: 0, deposit: taken.try_get("deposit_cents")?, winnings: taken.try_get("winnings_cents")? },
            reference: Some(&reference),
            round_id: None,
            actor,
        },
        false,
        now,
    )
    .await?;
    if let Some((staff, what)) = staff {
        audit::record(&mut tx, now, staff, what, &reference, None::<()>, None::<()>).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Moves a withdrawal from state `from` to `to` as `actor`'s decision, audited in the same
/// transaction; `conflict` is the error when it is not in `from`.
#[allow(clippy::too_many_arguments)]
async fn decide(tx: &mut Transaction<'static, Any>, withdrawal_id: i64, from: &str, to: &str, actor: &Actor, what: &str, conflict: &str, now: Millis) -> Result<()> {
    let n = sqlx::query("UPDATE withdrawals SET state = $1, decided_at = $2, decided_by = $3 WHERE id = $4 AND state = $5")
        .bind(to)
        .bind(now)
        .bind(actor.code())
        .bind(withdrawal_id)
        .bind(from)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(Error::Conflict(conflict.into()));
    }
    audit::record(tx, now, actor, what, &format!("withdrawal:{withdrawal_id}"), None::<()>, None::<()>).await?;
    Ok(())
}

/// The player cancels a withdrawal that is still pending or in review.
pub async fn cancel_withdrawal(store: &Store, account_id: i64, withdrawal_id: i64, now: Millis) -> Result<()> {
    give_back(store, Some(account_id), withdrawal_id, WithdrawalState::Cancelled, "player", None, now).await
}

/// Staff decide a withdrawal held for review: approved goes on to payment, rejected gives back.
pub async fn review_withdrawal(store: &Store, withdrawal_id: i64, approve: bool, actor: &Actor, now: Millis) -> Result<()> {
    staff_only(actor)?;
    if approve {
        let conflict = "the withdrawal is not in review";
        let mut tx = store.begin().await?;
        decide(&mut tx, withdrawal_id, "review", "pending", actor, "iaccount.withdrawal_approve", conflict, now).await?;
        tx.commit().await?;
        Ok(())
    } else {
        let staff = Some((actor, "iaccount.withdrawal_reject"));
        give_back(store, None, withdrawal_id, WithdrawalState::Rejected, &actor.code(), staff, now).await
    }
}

/// Marks a pending withdrawal paid, by the means the caller pays it with (`method`; a withdrawal
/// to be paid otherwise is refused): a bank withdrawal when its transfer was sent (the manager's
/// page), a desk withdrawal approved after review when the cash is handed over (the cashier desk,
/// after its identity check), which is then recorded for the person's gaming day in the same
/// transaction. Returns that day's total for a desk withdrawal.
pub async fn mark_paid(store: &Store, rules: &Rules, withdrawal_id: i64, method: WithdrawalMethod, actor: &Actor, now: Millis) -> Result<Option<CashTotal>> {
    staff_only(actor)?;
    let mut tx = store.begin().await?;
    let row = sqlx::query("SELECT w.method, w.amount_cents, a.person_id FROM withdrawals w JOIN iaccounts a ON a.id = w.account_id WHERE w.id = $1")
        .bind(withdrawal_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("withdrawal {withdrawal_id}")))?;
    if row.try_get::<String, _>("method")? != method_code(method) {
        return Err(Error::Conflict(format!("withdrawal {withdrawal_id} is not paid by {}", method_code(method))));
    }
    decide(&mut tx, withdrawal_id, "pending", "paid", actor, "iaccount.withdrawal_paid", "only a pending withdrawal can be paid", now).await?;
    let cash = match method {
        WithdrawalMethod::Desk => {
            let amount = Money::from_cents(row.try_get("amount_cents")?);
            let reference = format!("iaccount_withdrawal:{withdrawal_id}");
            Some(cashdesk::record_cash(&mut tx, rules, row.try_get("person_id")?, CashKind::OnlineWithdrawal, amount, Some(&reference), actor, now).await?)
        }
        WithdrawalMethod::Bank => None,
    };
    tx.commit().await?;
    Ok(cash)
}

/// The withdrawals of an account that a desk may pay out now: at a desk, approved after review.
pub async fn payable_at_desk(store: &Store, account_id: i64) -> Result<Vec<(i64, Money)>> {
    let rows = sqlx::query("SELECT id, amount_cents FROM withdrawals WHERE account_id = $1 AND method = 'desk' AND state = 'pending' ORDER BY id")
        .bind(account_id)
        .fetch_all(store.read())
        .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, Money::from_cents(r.try_get("amount_cents")?)))).collect()
}

fn voucher_hash(code: &str) -> String {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// Sells an activation voucher at a desk to `buyer` (a person), who pays cash: recorded for the
/// buyer's gaming day in the same transaction. Returns its code (shown once, printed for the
/// buyer) and the buyer's cash for the day.
pub async fn sell_voucher(store: &Store, rules: &Rules, buyer: i64, amount: Money, actor: &Actor, now: Millis) -> WalletResult<(String, CashTotal)> {
    staff_only(actor)?;
    let amount = super::positive(amount)?;
    // 16 characters from an alphabet without look-alikes: about 80 bits.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let raw: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    let code = format!("{}-{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12], &raw[12..16]);
    let mut tx = store.begin().await?;
    let id: i64 = sqlx::query_scalar("INSERT INTO vouchers (code_hash, amount_cents, sold_by, sold_at) VALUES ($1, $2, $3, $4) RETURNING id")
        .bind(voucher_hash(&code))
        .bind(amount.cents())
        .bind(actor.code())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    audit::record(&mut tx, now, actor, "iaccount.voucher_sold", &format!("voucher:{id}"), None::<()>, Some(amount.cents())).await?;
    let cash = cashdesk::record_cash(&mut tx, rules, buyer, CashKind::VoucherSale, amount, Some(&format!("voucher:{id}")), actor, now).await?;
    tx.commit().await?;
    Ok((code, cash))
}

/// The player redeems a voucher code: its amount is deposited, once.
pub async fn redeem_voucher(store: &Store, account_id: i64, code: &str, now: Millis) -> WalletResult<Money> {
    let mut tx = store.begin().await?;
    let account = lock(&mut tx, account_id).await?;
    let row = sqlx::query("SELECT id, amount_cents FROM vouchers WHERE code_hash = $1 AND redeemed_at IS NULL")
        .bind(voucher_hash(code))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound("no unused voucher with this code".into()))?;
    let id: i64 = row.try_get("id")?;
    let amount = Money::from_cents(row.try_get("amount_cents")?);
    deposit_allowed(&mut tx, &account, amount, now).await?;
    let n = sqlx::query("UPDATE vouchers SET redeemed_by = $1, redeemed_at = $2 WHERE id = $3 AND redeemed_at IS NULL")
        .bind(account_id)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(Error::Conflict("the voucher was used meanwhile".into()).into());
    }
    credit_deposit(&mut tx, account_id, "voucher", amount, &format!("voucher:{id}"), "player", now).await?;
    tx.commit().await?;
    Ok(amount)
}

/// Grants a bonus that must be staked `wagering_times` times in regular bets before it becomes
/// withdrawable winnings.
pub async fn grant_bonus(store: &Store, account_id: i64, amount: Money, wagering_times: u32, actor: &Actor, now: Millis) -> WalletResult<()> {
    staff_only(actor)?;
    let amount = super::positive(amount)?;
    let mut tx = store.begin().await?;
    lock(&mut tx, account_id).await?;
    post(
        &mut tx,
        account_id,
        &Entry {
            kind: EntryKind::BonusGrant,
            delta: Delta { bonus: amount.cents(), ..Delta::default() },
            reference: None,
            round_id: None,
            actor: &actor.code(),
        },
        false,
        now,
    )
    .await?;
    sqlx::query("UPDATE iaccounts SET wagering_left_cents = wagering_left_cents + $1 WHERE id = $2")
        .bind(amount.cents() * i64::from(wagering_times))
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut tx, now, actor, "iaccount.bonus_grant", &format!("iaccount:{account_id}"), None::<()>, Some((amount.cents(), wagering_times)))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What an imported bank statement did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Imported {
    pub credited: usize,
    pub unmatched: usize,
    /// Lines already imported before (by the bank's reference): skipped.
    pub repeated: usize,
    /// Every line of the file, in order, with what became of it (for the staff page).
    #[serde(skip)]
    pub lines: Vec<StatementLine>,
}

/// One line of an imported statement and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub bank_ref: String,
    pub booked_on: String,
    pub amount: Money,
    pub reference: String,
    pub outcome: LineOutcome,
}

/// What became of a statement line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    /// Credited to the account with this player number.
    Credited { account_id: i64 },
    /// Not credited: the reference is empty.
    NoReference,
    /// Not credited: no account has this player number (a typo, or a payment not for us).
    NoSuchPlayer,
    /// Imported before (same bank reference): skipped, nothing credited again.
    Repeated,
}

/// Imports a bank statement of incoming transfers, a CSV file with a header line and the columns
/// `booked_on,amount,reference,bank_ref`: the booking date (`YYYY-MM-DD`), the amount in EUR with
/// a decimal point (`25.00`), the payment reference the player gave (their player number), and
/// the bank's unique id of the line. Each line is credited once (on `bank_ref`); a line whose
/// reference names no account is recorded as unmatched for staff. A malformed file changes
/// nothing.
pub async fn import_bank_statement(store: &Store, csv: &str, actor: &Actor, now: Millis) -> Result<Imported> {
    staff_only(actor)?;
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(h) if h.trim() == "booked_on,amount,reference,bank_ref" => {}
        _ => return Err(Error::invalid("the first line must be: booked_on,amount,reference,bank_ref")),
    }
    let mut parsed = Vec::new();
    for (i, line) in lines.enumerate() {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let [booked_on, amount, reference, bank_ref] = cols[..] else {
            return Err(Error::invalid(format!("line {}: expected 4 columns", i + 2)));
        };
        chrono::NaiveDate::parse_from_str(booked_on, "%Y-%m-%d").map_err(|_| Error::invalid(format!("line {}: date", i + 2)))?;
        let amount = amount
            .parse::<Decimal>()
            .ok()
            .and_then(|d| Money::from_decimal(d).ok())
            .filter(|m| *m > Money::ZERO)
            .ok_or_else(|| Error::invalid(format!("line {}: amount", i + 2)))?;
        if bank_ref.is_empty() {
            return Err(Error::invalid(format!("line {}: bank_ref", i + 2)));
        }
        parsed.push((booked_on.to_owned(), amount, reference.to_owned(), bank_ref.to_owned()));
    }
    let mut done = Imported::default();
    let mut tx = store.begin().await?;
    for (booked_on, amount, reference, bank_ref) in parsed {
        let line = |outcome| StatementLine { bank_ref: bank_ref.clone(), booked_on: booked_on.clone(), amount, reference: reference.clone(), outcome };
        let seen: Option<i64> = sqlx::query_scalar("SELECT 1 FROM bank_statement_lines WHERE bank_ref = $1").bind(&bank_ref).fetch_optional(&mut *tx).await?;
        if seen.is_some() {
            done.repeated += 1;
            done.lines.push(line(LineOutcome::Repeated));
            continue;
        }
        let account: Option<i64> = if reference.is_empty() {
            None
        } else {
            sqlx::query_scalar("SELECT id FROM iaccounts WHERE player_no = $1").bind(&reference).fetch_optional(&mut *tx).await?
        };
        let outcome = match account {
            Some(id) => {
                lock(&mut tx, id).await?;
                credit_deposit(&mut tx, id, "bank_transfer", amount, &format!("bank:{bank_ref}"), &actor.code(), now).await?;
                done.credited += 1;
                done.lines.push(line(LineOutcome::Credited { account_id: id }));
                "credited"
            }
            None => {
                done.unmatched += 1;
                done.lines.push(line(if reference.is_empty() { LineOutcome::NoReference } else { LineOutcome::NoSuchPlayer }));
                "unmatched"
            }
        };
        sqlx::query(
            "INSERT INTO bank_statement_lines (bank_ref, booked_on, amount_cents, reference, account_id, outcome, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&bank_ref)
        .bind(&booked_on)
        .bind(amount.cents())
        .bind(&reference)
        .bind(account)
        .bind(outcome)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(&mut tx, now, actor, "iaccount.bank_import", "bank_statement", None::<()>, Some(&done)).await?;
    tx.commit().await?;
    Ok(done)
}

/// A withdrawal waiting for staff: held for review, or approved (or under the threshold) and
/// waiting to be paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWithdrawal {
    pub id: i64,
    pub account_id: i64,
    pub player_no: Option<String>,
    pub name: String,
    pub method: WithdrawalMethod,
    /// Where a bank withdrawal goes (the player's own IBAN, given at registration).
    pub iban: Option<String>,
    pub amount: Money,
    pub state: WithdrawalState,
    pub requested_at: Millis,
}

/// The withdrawals a manager must act on, oldest first: in review (to approve or reject) and
/// pending bank transfers (to mark paid once sent). Pending desk withdrawals are not listed: the
/// cashier desk pays them out (`payable_at_desk`).
pub async fn open_withdrawals(store: &Store) -> Result<Vec<OpenWithdrawal>> {
    let rows = sqlx::query(
        "SELECT w.id, w.account_id, a.player_no, p.first_name, p.last_name, w.method, w.iban, w.amount_cents, w.state, w.created_at \
         FROM withdrawals w JOIN iaccounts a ON a.id = w.account_id JOIN persons p ON p.id = a.person_id \
         WHERE w.state = 'review' OR (w.state = 'pending' AND w.method = 'bank') ORDER BY w.created_at, w.id",
    )
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            let method: String = r.try_get("method")?;
            let state: String = r.try_get("state")?;
            Ok(OpenWithdrawal {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                player_no: r.try_get("player_no")?,
                name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                method: if method == "desk" { WithdrawalMethod::Desk } else { WithdrawalMethod::Bank },
                iban: r.try_get("iban")?,
                amount: Money::from_cents(r.try_get("amount_cents")?),
                state: if state == "review" { WithdrawalState::Review } else { WithdrawalState::Pending },
                requested_at: r.try_get("created_at")?,
            })
        })
        .collect()
}
