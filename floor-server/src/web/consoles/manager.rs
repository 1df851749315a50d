//! Management: the live floor dashboard, tier decisions (VIP-eligible list, annual reviews,
//! Chairman invitations), point corrections (large ones approved by a second person), bans, the
//! rules in force, and terminals (enrolment, revocation, online/offline, last event).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use club_rules::{MachineType, Money, Points, Tier};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sqlx::Row;

use super::{day_start, done, member_by_number, member_view, money, refusal_text, when};
use crate::app::AppState;
use crate::club::{self, NewExclusion};
use crate::error::{Error, Result};
use crate::ledger::{self, CorrectionOutcome};
use crate::terminals::{self, TerminalKind, TerminalSpec};
use crate::web::auth::StaffUser;
use crate::web::page::{Ctx, render};
use crate::web::{Access, Route, roles};

pub(super) fn routes() -> Vec<Route> {
    let m = Access::Roles(roles::MANAGER);
    let term = Access::Roles(roles::TERMINALS);
    vec![
        Route { method: Method::GET, path: "/manager", access: m, handler: get(dashboard) },
        Route { method: Method::GET, path: "/manager/members", access: m, handler: get(members_page) },
        Route { method: Method::POST, path: "/manager/member/{id}/tier", access: m, handler: post(set_tier) },
        Route { method: Method::POST, path: "/manager/chairman", access: m, handler: post(invite_chairman) },
        Route { method: Method::GET, path: "/manager/corrections", access: m, handler: get(corrections_page) },
        Route { method: Method::POST, path: "/manager/corrections", access: m, handler: post(request_correction) },
        Route { method: Method::POST, path: "/manager/corrections/{id}/approve", access: m, handler: post(approve_correction) },
        Route { method: Method::GET, path: "/manager/bans", access: m, handler: get(bans_page) },
        Route { method: Method::POST, path: "/manager/bans", access: m, handler: post(add_ban) },
        Route { method: Method::GET, path: "/manager/rules", access: m, handler: get(rules_page) },
        Route { method: Method::GET, path: "/manager/terminals", access: term, handler: get(terminals_page) },
        Route { method: Method::POST, path: "/manager/terminals", access: term, handler: post(enrol_terminal) },
        Route { method: Method::POST, path: "/manager/terminals/{id}/revoke", access: term, handler: post(revoke_terminal) },
    ]
}

fn page_or_error<T: Template>(r: Result<T>) -> Response {
    match r {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

// ---- dashboard ------------------------------------------------------------------------------

/// A bar of a chart: label, value, and its length in the drawing (0..=100).
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub length: i64,
    pub y: i64,
}

fn bars(items: Vec<(String, i64)>) -> Vec<Bar> {
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    items.into_iter().enumerate().map(|(i, (label, value))| Bar { label, length: value.max(0) * 100 / max, value, y: i as i64 * 24 }).collect()
}

/// The floor's figures now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub open_sessions: i64,
    pub points_earned_today: i64,
    pub points_redeemed_today: i64,
    pub free_play_liability: Money,
    pub members_per_tier: Vec<(Tier, i64)>,
    /// Points earned in each hour of the gaming day so far.
    pub earned_per_hour: Vec<i64>,
}

/// Reads the dashboard's figures at `now`.
pub async fn figures(state: &AppState, now: i64) -> Result<Figures> {
    let read = state.store.read();
    let start = day_start(state, now);
    let open_sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM card_sessions WHERE closed_at IS NULL AND refusal IS NULL").fetch_one(read).await?;
    let earned: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_ledger WHERE kind = 'earned' AND created_at >= $1 AND created_at <= $2")
        .bind(start)
        .bind(now)
        .fetch_one(read)
        .await?;
    let redeemed: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_ledger WHERE kind = 'redeemed' AND created_at >= $1 AND created_at <= $2")
        .bind(start)
        .bind(now)
        .fetch_one(read)
        .await?;
    let liability: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(free_play_cents), 0) AS BIGINT) FROM members").fetch_one(read).await?;
    let mut per_tier = Vec::new();
    for tier in [Tier::Bronze, Tier::Silver, Tier::Gold, Tier::VipExclusive, Tier::Chairman] {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE tier = $1 AND state = 'active'").bind(tier.code()).fetch_one(read).await?;
        per_tier.push((tier, n));
    }
    let mut per_hour = vec![0i64; 24];
    for r in sqlx::query(
        "SELECT (created_at - $1) / 3600000 AS hour, CAST(SUM(points) AS BIGINT) AS points FROM points_ledger WHERE kind = 'earned' AND created_at >= $1 AND created_at <= $2 \
         GROUP BY (created_at - $1) / 3600000",
    )
    .bind(start)
    .bind(now)
    .fetch_all(read)
    .await?
    {
        let hour: i64 = r.try_get("hour")?;
        if let Some(slot) = usize::try_from(hour).ok().and_then(|h| per_hour.get_mut(h)) {
            *slot = r.try_get("points")?;
        }
    }
    let hours_so_far = usize::try_from((now - start) / 3_600_000 + 1).unwrap_or(24).min(24);
    per_hour.truncate(hours_so_far);
    Ok(Figures {
        open_sessions,
        points_earned_today: earned,
        points_redeemed_today: -redeemed,
        free_play_liability: Money::from_cents(liability),
        members_per_tier: per_tier,
        earned_per_hour: per_hour,
    })
}

#[derive(Template)]
#[template(path = "manager/dashboard.html")]
struct Dashboard {
    ctx: Ctx,
    f: Figures,
    liability: String,
    tiers: Vec<Bar>,
    hours: Vec<Bar>,
    updated: String,
}

async fn dashboard(State(state): State<AppState>, user: StaffUser) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    page_or_error(
        async {
            let f = figures(&state, now).await?;
            let tiers = bars(f.members_per_tier.iter().map(|(tier, n)| (t.get(&format!("tier.{}", tier.code())).to_owned(), *n)).collect());
            let first = state.rules.config().calendar.gaming_day_starts_at_hour as usize;
            let hours = bars(f.earned_per_hour.iter().enumerate().map(|(h, p)| (format!("{:02}:00", (first + h) % 24), *p)).collect());
            Ok(Dashboard { ctx: Ctx::staff(&state, &user, "/manager").await, liability: money(&f.free_play_liability), f, tiers, hours, updated: when(&state, now) })
        }
        .await,
    )
}

// ---- members and tiers ----------------------------------------------------------------------

struct Listed {
    member_id: i64,
    member_no: String,
    name: String,
    tier: String,
    reason: String,
    since: String,
}

#[derive(Template)]
#[template(path = "manager/members.html")]
struct MembersPage {
    ctx: Ctx,
    listed: Vec<Listed>,
}

async fn members_page(State(state): State<AppState>, user: StaffUser) -> Response {
    page_or_error(
        async {
            let mut listed = Vec::new();
            for l in ledger::review_list(&state.store).await? {
                let m = member_view(&state, l.member_id).await?;
                listed.push(Listed {
                    member_id: l.member_id,
                    member_no: m.member_no,
                    name: m.name,
                    tier: m.tier,
                    reason: l.reason,
                    since: l.anniversary.map(|d| d.to_string()).unwrap_or_else(|| when(&state, l.listed_at)),
                });
            }
            Ok(MembersPage { ctx: Ctx::staff(&state, &user, "/manager/members").await, listed })
        }
        .await,
    )
}

#[derive(Deserialize)]
struct TierForm {
    tier: String,
}

async fn set_tier(State(state): State<AppState>, user: StaffUser, Path(member): Path<i64>, Form(f): Form<TierForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let tier = Tier::from_code(&f.tier).ok_or_else(|| Error::invalid("tier"))?;
        match ledger::manager_review(&state.store, &state.rules, member, tier, &user.actor(), ledger::time(now)?).await? {
            Ok(_) => Ok(t.fmt("manager.tier_set", &[("tier", t.get(&format!("tier.{}", tier.code())))])),
            Err(refused) => Err(Error::invalid(refusal_text(&t, &refused))),
        }
    }
    .await;
    done(&state, &user, result, "/manager/members").await
}

#[derive(Deserialize)]
struct NumberForm {
    number: String,
}

async fn invite_chairman(State(state): State<AppState>, user: StaffUser, Form(f): Form<NumberForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let member = member_by_number(&state, &f.number).await?;
        match ledger::invite_chairman(&state.store, &state.rules, member, &user.actor(), ledger::time(now)?).await? {
            Ok(_) => Ok(t.get("manager.chairman_invited").to_owned()),
            Err(refused) => Err(Error::invalid(refusal_text(&t, &refused))),
        }
    }
    .await;
    done(&state, &user, result, "/manager/members").await
}

// ---- corrections ----------------------------------------------------------------------------

struct Pending {
    id: i64,
    member_no: String,
    points: i64,
    reason: String,
    requested_by: String,
    at: String,
    mine: bool,
}

#[derive(Template)]
#[template(path = "manager/corrections.html")]
struct CorrectionsPage {
    ctx: Ctx,
    pending: Vec<Pending>,
    threshold: i64,
}

async fn corrections_page(State(state): State<AppState>, user: StaffUser) -> Response {
    page_or_error(
        async {
            let pending = sqlx::query(
                "SELECT r.id, r.points, r.reason, r.requested_by, r.requested_at, m.member_no, COALESCE(s.display_name, '?') AS by_name \
                 FROM correction_requests r JOIN members m ON m.id = r.member_id LEFT JOIN staff_users s ON s.id = r.requested_by \
                 WHERE r.approved_at IS NULL ORDER BY r.id",
            )
            .fetch_all(state.store.read())
            .await?
            .iter()
            .map(|r| {
                Ok(Pending {
                    id: r.try_get("id")?,
                    member_no: r.try_get("member_no")?,
                    points: r.try_get("points")?,
                    reason: r.try_get("reason")?,
                    requested_by: r.try_get("by_name")?,
                    at: when(&state, r.try_get("requested_at")?),
                    mine: r.try_get::<i64, _>("requested_by")? == user.id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            Ok(CorrectionsPage {
                ctx: Ctx::staff(&state, &user, "/manager/corrections").await,
                pending,
                threshold: state.rules.config().corrections.approval_above_points.0,
            })
        }
        .await,
    )
}

#[derive(Deserialize)]
struct CorrectionForm {
    number: String,
    points: String,
    reason: String,
}

async fn request_correction(State(state): State<AppState>, user: StaffUser, Form(f): Form<CorrectionForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        if f.reason.trim().is_empty() {
            return Err(Error::invalid(t.get("manager.reason_required")));
        }
        let points: i64 = f.points.trim().parse().map_err(|_| Error::invalid(t.get("manager.points")))?;
        let member = member_by_number(&state, &f.number).await?;
        match ledger::request_correction(&state.store, &state.rules, member, Points(points), f.reason.trim(), &user.actor(), ledger::time(now)?).await? {
            Ok(CorrectionOutcome::Applied) => Ok(t.get("manager.correction_applied").to_owned()),
            Ok(CorrectionOutcome::Pending { .. }) => Ok(t.get("manager.correction_pending").to_owned()),
            Err(refused) => Err(Error::invalid(refusal_text(&t, &refused))),
        }
    }
    .await;
    done(&state, &user, result, "/manager/corrections").await
}

async fn approve_correction(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        match ledger::approve_correction(&state.store, &state.rules, id, &user.actor(), ledger::time(now)?).await? {
            Ok(()) => Ok(t.get("manager.correction_approved").to_owned()),
            Err(refused) => Err(Error::invalid(refusal_text(&t, &refused))),
        }
    }
    .await;
    done(&state, &user, result, "/manager/corrections").await
}

// ---- bans -----------------------------------------------------------------------------------

struct BanRow {
    name: String,
    kind: String,
    from: String,
    until: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "manager/bans.html")]
struct BansPage {
    ctx: Ctx,
    bans: Vec<BanRow>,
}

async fn bans_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let now = state.clock.now_ms();
    page_or_error(
        async {
            let bans = sqlx::query(
                "SELECT e.kind, e.starts_at, e.ends_at, e.reason, COALESCE(p.first_name, e.first_name, '') AS first_name, \
                 COALESCE(p.last_name, e.last_name, '') AS last_name FROM exclusions e LEFT JOIN persons p ON p.id = e.person_id \
                 WHERE e.kind IN ('ban', 'own_request') AND (e.ends_at IS NULL OR e.ends_at > $1) ORDER BY e.id DESC LIMIT 200",
            )
            .bind(now)
            .fetch_all(state.store.read())
            .await?
            .iter()
            .map(|r| {
                Ok(BanRow {
                    name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                    kind: r.try_get("kind")?,
                    from: when(&state, r.try_get("starts_at")?),
                    until: r.try_get::<Option<i64>, _>("ends_at")?.map(|t| when(&state, t)).unwrap_or_default(),
                    reason: r.try_get::<Option<String>, _>("reason")?.unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
            Ok(BansPage { ctx: Ctx::staff(&state, &user, "/manager/bans").await, bans })
        }
        .await,
    )
}

#[derive(Deserialize)]
struct BanForm {
    number: String,
    #[serde(default)]
    days: String,
    reason: String,
}

async fn add_ban(State(state): State<AppState>, user: StaffUser, Form(f): Form<BanForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        if f.reason.trim().is_empty() {
            return Err(Error::invalid(t.get("manager.reason_required")));
        }
        let member = member_by_number(&state, &f.number).await?;
        let person = member_view(&state, member).await?.person_id;
        let ends_at = match f.days.trim() {
            "" => None,
            d => Some(now + d.parse::<i64>().ok().filter(|d| *d > 0).ok_or_else(|| Error::invalid("days"))? * 86_400_000),
        };
        let e = NewExclusion::of_person(club_rules::gate::ExclusionKind::Ban, person, now, ends_at, Some(f.reason.trim().to_owned()));
        club::add_exclusion(&state.store, &e, &user.actor(), now).await?;
        Ok(t.get("manager.ban_added").to_owned())
    }
    .await;
    done(&state, &user, result, "/manager/bans").await
}

// ---- rules ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "manager/rules.html")]
struct RulesPage {
    ctx: Ctx,
    version: String,
    text: String,
}

async fn rules_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let text = toml::to_string_pretty(state.rules.config()).unwrap_or_else(|e| format!("# {e}"));
    render(&RulesPage { ctx: Ctx::staff(&state, &user, "/manager/rules").await, version: state.rules.version().as_str().to_owned(), text })
}

// ---- terminals ------------------------------------------------------------------------------

struct TerminalRow {
    id: String,
    kind: String,
    machine_type: String,
    location: String,
    online: bool,
    revoked: bool,
    last_seen: String,
    last_event: String,
    last_seq: i64,
}

#[derive(Template)]
#[template(path = "manager/terminals.html")]
struct TerminalsPage {
    ctx: Ctx,
    terminals: Vec<TerminalRow>,
    secret: Option<(String, String)>,
}

async fn terminals_list(state: &AppState, now: i64) -> Result<Vec<TerminalRow>> {
    let mut out = Vec::new();
    for t in terminals::list(&state.store).await? {
        let last_event: Option<i64> =
            sqlx::query_scalar("SELECT MAX(received_at) FROM terminal_events WHERE terminal_id = $1").bind(&t.id).fetch_one(state.store.read()).await?;
        out.push(TerminalRow {
            online: t.is_online(now),
            last_seen: t.last_seen_at.map(|s| when(state, s)).unwrap_or_default(),
            last_event: last_event.map(|s| when(state, s)).unwrap_or_default(),
            id: t.id,
            kind: t.kind,
            machine_type: t.machine_type.unwrap_or_default(),
            location: t.location,
            revoked: t.revoked,
            last_seq: t.last_seq,
        });
    }
    Ok(out)
}

async fn terminals_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let now = state.clock.now_ms();
    page_or_error(
        async { Ok(TerminalsPage { ctx: Ctx::staff(&state, &user, "/manager/terminals").await, terminals: terminals_list(&state, now).await?, secret: None }) }.await,
    )
}

#[derive(Deserialize)]
struct TerminalForm {
    id: String,
    kind: String,
    #[serde(default)]
    machine_type: String,
    location: String,
}

async fn enrol_terminal(State(state): State<AppState>, user: StaffUser, Form(f): Form<TerminalForm>) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let kind = TerminalKind::from_code(f.kind.trim()).ok_or_else(|| Error::invalid("kind"))?;
        let machine_type = match (kind, f.machine_type.trim()) {
            (TerminalKind::Slot, code) => Some(MachineType::from_code(code).ok_or_else(|| Error::invalid("machine type"))?),
            _ => None,
        };
        let spec = TerminalSpec { id: f.id.trim().to_owned(), kind, machine_type, location: f.location.trim().to_owned() };
        let creds = terminals::enrol(&state.store, &spec, &user.actor(), now).await?;
        Ok((creds.terminal_id.clone(), creds.secret.expose_secret().to_owned()))
    }
    .await;
    match result {
        // The secret is shown once, on this answer, and never stored in clear.
        Ok(secret) => match terminals_list(&state, now).await {
            Ok(terminals) => render(&TerminalsPage { ctx: Ctx::for_user(&user, "/manager/terminals"), terminals, secret: Some(secret) }),
            Err(e) => e.into_response(),
        },
        Err(e) => done(&state, &user, Err(e), "/manager/terminals").await,
    }
}

async fn revoke_terminal(State(state): State<AppState>, user: StaffUser, Path(id): Path<String>) -> Response {
    let now = state.clock.now_ms();
    let result = terminals::revoke(&state.store, &id, &user.actor(), now).await.map(|()| user.tr().get("manager.terminal_revoked").to_owned());
    done(&state, &user, result, "/manager/terminals").await
}
