//! Reception: find a person, enrol (with the club's refusals), cards (issue, activate, lost or
//! stolen, replace), leaving, privacy (export, objection, blocking), and the lists that enrolment
//! checks (the regulator's register, the club's own list, employees).

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Form;
use club_rules::CardState;
use club_rules::membership::EndReason;
use floor_protocol::CardNumber;
use serde::Deserialize;
use sqlx::Row;

use super::{done, uploaded, when};
use crate::app::AppState;
use crate::club::{self, NewExclusion, NewPerson};
use crate::enrolment::{self, Employee, Found, Refusal};
use crate::error::{Error, Result};
use crate::web::auth::StaffUser;
use crate::web::page::{Ctx, error_text, render};
use crate::web::{Access, Route, roles};
use crate::{ledger, reception};

pub(super) fn routes() -> Vec<Route> {
    let r = Access::Roles(roles::RECEPTION);
    vec![
        Route { method: Method::GET, path: "/reception", access: r, handler: get(search_page) },
        Route { method: Method::GET, path: "/reception/enrol", access: r, handler: get(enrol_page) },
        Route { method: Method::POST, path: "/reception/enrol", access: r, handler: post(enrol) },
        Route { method: Method::GET, path: "/reception/person/{id}", access: r, handler: get(person_page) },
        Route { method: Method::POST, path: "/reception/person/{id}/card", access: r, handler: post(issue_card) },
        Route { method: Method::POST, path: "/reception/person/{id}/leave", access: r, handler: post(leave) },
        Route { method: Method::GET, path: "/reception/person/{id}/export", access: r, handler: get(export) },
        Route { method: Method::POST, path: "/reception/person/{id}/objection", access: r, handler: post(objection) },
        Route { method: Method::POST, path: "/reception/person/{id}/block", access: r, handler: post(block) },
        Route { method: Method::POST, path: "/reception/person/{id}/own-list", access: r, handler: post(own_list) },
        Route { method: Method::POST, path: "/reception/card/{id}/activate", access: r, handler: post(activate) },
        Route { method: Method::POST, path: "/reception/card/{id}/report", access: r, handler: post(report) },
        Route { method: Method::POST, path: "/reception/card/{id}/replace", access: r, handler: post(replace) },
        Route { method: Method::GET, path: "/reception/lists", access: r, handler: get(lists_page) },
        Route { method: Method::POST, path: "/reception/register", access: r, handler: post(import_register) },
        Route { method: Method::POST, path: "/reception/employees", access: r, handler: post(add_employee) },
        Route { method: Method::POST, path: "/reception/employees/import", access: r, handler: post(import_employees) },
        Route { method: Method::POST, path: "/reception/employees/{id}/end", access: r, handler: post(end_employee) },
    ]
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    card: String,
}

#[derive(Template)]
#[template(path = "reception/search.html")]
struct SearchPage {
    ctx: Ctx,
    q: SearchQuery,
    searched: bool,
    found: Vec<Found>,
}

async fn search_page(State(state): State<AppState>, user: StaffUser, Query(q): Query<SearchQuery>) -> Response {
    let searched = !(q.name.trim().is_empty() && q.birth_date.trim().is_empty() && q.card.trim().is_empty());
    let found = match enrolment::search(&state.store, &q.name, &q.birth_date, &q.card).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    render(&SearchPage { ctx: Ctx::staff(&state, &user, "/reception").await, q, searched, found })
}

#[derive(Deserialize, Default, Clone)]
struct EnrolForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    personal_id: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    nationality: String,
    #[serde(default)]
    card: String,
}

#[derive(Template)]
#[template(path = "reception/enrol.html")]
struct EnrolPage {
    ctx: Ctx,
    f: EnrolForm,
    error: Option<String>,
}

async fn enrol_page(State(state): State<AppState>, user: StaffUser) -> Response {
    render(&EnrolPage { ctx: Ctx::staff(&state, &user, "/reception/enrol").await, f: EnrolForm::default(), error: None })
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() { None } else { Some(t.to_owned()) }
}

async fn enrol(State(state): State<AppState>, user: StaffUser, Form(f): Form<EnrolForm>) -> Response {
    let t = user.tr();
    let now = state.clock.now_ms();
    let person = NewPerson {
        first_name: f.first_name.trim().to_owned(),
        last_name: f.last_name.trim().to_owned(),
        birth_date: f.birth_date.trim().to_owned(),
        personal_id: opt(&f.personal_id),
        email: opt(&f.email),
        phone: opt(&f.phone),
        address: opt(&f.address),
        city: opt(&f.city),
        postal_code: opt(&f.postal_code),
        country: opt(&f.country),
        nationality: opt(&f.nationality),
        is_employee: false,
    };
    let card = opt(&f.card).map(CardNumber::new);
    // Required data (RULES.md: name, birth date, the identity number, address).
    let missing = [&person.personal_id, &person.address, &person.city, &person.country].iter().any(|v| v.is_none());
    let outcome = if missing {
        Err(Error::invalid(t.get("reception.required")))
    } else {
        enrolment::enrol(&state.store, &person, card.as_ref(), &user.actor(), now).await
    };
    let error = match outcome {
        Ok(Ok(e)) => {
            let text = t.fmt("reception.enrolled", &[("member_no", &club::member_number(e.member_id))]);
            return done(&state, &user, Ok(text), &format!("/reception/person/{}", e.person_id)).await;
        }
        Ok(Err(refusal)) => refusal_words(&t, refusal),
        Err(e) => error_text(&t, &e),
    };
    let page = EnrolPage { ctx: Ctx::for_user(&user, "/reception/enrol"), f, error: Some(error) };
    (StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response()
}

fn refusal_words(t: &crate::web::Tr, r: Refusal) -> String {
    t.get(&format!("reception.refused_{}", r.code())).to_owned()
}

struct CardRow {
    id: i64,
    number: String,
    state: String,
    issued_at: String,
    can_activate: bool,
    can_report: bool,
    can_replace: bool,
}

#[derive(Template)]
#[template(path = "reception/person.html")]
struct PersonPage {
    ctx: Ctx,
    person_id: i64,
    name: String,
    birth_date: String,
    personal_id: String,
    contact: String,
    objection: bool,
    data_blocked: bool,
    member: Option<super::MemberView>,
    cards: Vec<CardRow>,
    exclusions: Vec<String>,
}

/// The last four characters of a card number (the page never shows a whole one).
fn card_tail(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

async fn person_page(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    match load_person(&state, &user, id).await {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

async fn load_person(state: &AppState, user: &StaffUser, id: i64) -> Result<PersonPage> {
    let r = sqlx::query(
        "SELECT first_name, last_name, birth_date, personal_id, email, phone, address, city, postal_code, country, processing_objection, \
         data_blocked_at FROM persons WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(state.store.read())
    .await?
    .ok_or_else(|| Error::NotFound(format!("person {id}")))?;
    let member_id: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE person_id = $1").bind(id).fetch_optional(state.store.read()).await?;
    let member = match member_id {
        Some(m) => Some(super::member_view(state, m).await?),
        None => None,
    };
    let mut cards = Vec::new();
    if let Some(m) = member_id {
        for c in sqlx::query("SELECT id, card_number, state, issued_at FROM cards WHERE member_id = $1 ORDER BY id").bind(m).fetch_all(state.store.read()).await? {
            let st: String = c.try_get("state")?;
            let cs = CardState::from_code(&st);
            cards.push(CardRow {
                id: c.try_get("id")?,
                number: card_tail(&c.try_get::<String, _>("card_number")?),
                issued_at: when(state, c.try_get("issued_at")?),
                can_activate: cs == Some(CardState::Issued),
                can_report: matches!(cs, Some(CardState::Issued | CardState::Active)),
                can_replace: matches!(cs, Some(CardState::Issued | CardState::Active | CardState::BlockedLost | CardState::BlockedStolen)),
                state: st,
            });
        }
    }
    let now = state.clock.now_ms();
    let exclusions: Vec<String> = sqlx::query(
        "SELECT kind, starts_at, ends_at FROM exclusions WHERE person_id = $1 AND starts_at <= $2 AND (ends_at IS NULL OR ends_at > $2) ORDER BY id",
    )
    .bind(id)
    .bind(now)
    .fetch_all(state.store.read())
    .await?
    .iter()
    .map(|e| {
        let kind: String = e.try_get("kind")?;
        let until: Option<i64> = e.try_get("ends_at")?;
        Ok(format!("{} {}", user.tr().get(&format!("reception.exclusion_{kind}")), until.map(|u| format!("→ {}", when(state, u))).unwrap_or_default()))
    })
    .collect::<Result<_>>()?;
    let s = |k: &str| -> Result<String> { Ok(r.try_get::<Option<String>, _>(k)?.unwrap_or_default()) };
    let contact = [s("email")?, s("phone")?, format!("{} {} {} {}", s("address")?, s("postal_code")?, s("city")?, s("country")?).trim().to_owned()]
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    Ok(PersonPage {
        ctx: Ctx::staff(state, user, &format!("/reception/person/{id}")).await,
        person_id: id,
        name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
        birth_date: r.try_get("birth_date")?,
        personal_id: s("personal_id")?,
        contact,
        objection: r.try_get::<i64, _>("processing_objection")? == 1,
        data_blocked: r.try_get::<Option<i64>, _>("data_blocked_at")?.is_some(),
        member,
        cards,
        exclusions,
    })
}

#[derive(Deserialize)]
struct CardForm {
    card: String,
}

async fn member_of(state: &AppState, person: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM members WHERE person_id = $1")
        .bind(person)
        .fetch_optional(state.store.read())
        .await?
        .ok_or_else(|| Error::NotFound(format!("member for person {person}")))
}

async fn person_of_card(state: &AppState, card: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT m.person_id FROM cards c JOIN members m ON m.id = c.member_id WHERE c.id = $1")
        .bind(card)
        .fetch_optional(state.store.read())
        .await?
        .ok_or_else(|| Error::NotFound(format!("card {card}")))
}

async fn issue_card(State(state): State<AppState>, user: StaffUser, Path(person): Path<i64>, Form(f): Form<CardForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let member = member_of(&state, person).await?;
        let card = CardNumber::new(f.card.trim());
        let mut tx = state.store.begin().await?;
        let id = club::issue_card(&mut tx, member, &card, now).await?;
        crate::audit::record(&mut tx, now, &user.actor(), "card.issue", &format!("card:{id}"), None::<()>, Some(member)).await?;
        tx.commit().await?;
        Ok(t.get("reception.card_issued").to_owned())
    }
    .await;
    done(&state, &user, result, &format!("/reception/person/{person}")).await
}

async fn activate(State(state): State<AppState>, user: StaffUser, Path(card): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let person = match person_of_card(&state, card).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = club::set_card_state(&state.store, card, CardState::Active, &user.actor(), now).await.map(|()| user.tr().get("reception.card_activated").to_owned());
    done(&state, &user, result, &format!("/reception/person/{person}")).await
}

#[derive(Deserialize)]
struct ReportForm {
    what: String,
}

async fn report(State(state): State<AppState>, user: StaffUser, Path(card): Path<i64>, Form(f): Form<ReportForm>) -> Response {
    let now = state.clock.now_ms();
    let person = match person_of_card(&state, card).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let to = match f.what.as_str() {
        "lost" => Ok(CardState::BlockedLost),
        "stolen" => Ok(CardState::BlockedStolen),
        _ => Err(Error::invalid("lost or stolen")),
    };
    let result = match to {
        Ok(to) => club::set_card_state(&state.store, card, to, &user.actor(), now).await.map(|()| user.tr().get("reception.card_blocked").to_owned()),
        Err(e) => Err(e),
    };
    done(&state, &user, result, &format!("/reception/person/{person}")).await
}

async fn replace(State(state): State<AppState>, user: StaffUser, Path(card): Path<i64>, Form(f): Form<CardForm>) -> Response {
    let now = state.clock.now_ms();
    let person = match person_of_card(&state, card).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = reception::replace_card(&state.store, card, &CardNumber::new(f.card.trim()), &user.actor(), now)
        .await
        .map(|_| user.tr().get("reception.card_replaced").to_owned());
    done(&state, &user, result, &format!("/reception/person/{person}")).await
}

#[derive(Deserialize)]
struct LeaveForm {
    #[serde(default)]
    signed: Option<String>,
}

async fn leave(State(state): State<AppState>, user: StaffUser, Path(person): Path<i64>, Form(f): Form<LeaveForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        if f.signed.as_deref() != Some("yes") {
            return Err(Error::invalid(t.get("reception.leave_needs_signature")));
        }
        let member = member_of(&state, person).await?;
        ledger::end_membership(&state.store, &state.rules, member, EndReason::MemberRequest, &user.actor(), ledger::time(now)?).await?;
        reception::block_data(&state.store, person, &user.actor(), now).await?;
        Ok(t.get("reception.left").to_owned())
    }
    .await;
    done(&state, &user, result, &format!("/reception/person/{person}")).await
}

async fn export(State(state): State<AppState>, user: StaffUser, Path(person): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    match reception::export_person(&state.store, person, &user.actor(), now).await {
        Ok(json) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"person-{person}.json\"")),
            ],
            serde_json::to_string_pretty(&json).expect("json"),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn objection(State(state): State<AppState>, user: StaffUser, Path(person): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = reception::record_objection(&state.store, person, &user.actor(), now).await.map(|()| user.tr().get("reception.objection_recorded").to_owned());
    done(&state, &user, result, &format!("/reception/person/{person}")).await
}

async fn block(State(state): State<AppState>, user: StaffUser, Path(person): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = reception::block_data(&state.store, person, &user.actor(), now).await.map(|()| user.tr().get("reception.data_blocked").to_owned());
    done(&state, &user, result, &format!("/reception/person/{person}")).await
}

#[derive(Deserialize)]
struct OwnListForm {
    /// Days; empty: until lifted.
    #[serde(default)]
    days: String,
    #[serde(default)]
    reason: String,
}

async fn own_list(State(state): State<AppState>, user: StaffUser, Path(person): Path<i64>, Form(f): Form<OwnListForm>) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let ends_at = match f.days.trim() {
            "" => None,
            d => {
                let days: i64 = d.parse().map_err(|_| Error::invalid("days"))?;
                if days <= 0 {
                    return Err(Error::invalid("days"));
                }
                Some(now + days * 86_400_000)
            }
        };
        let e = NewExclusion::of_person(club_rules::gate::ExclusionKind::OwnRequest, person, now, ends_at, opt(&f.reason));
        club::add_exclusion(&state.store, &e, &user.actor(), now).await?;
        Ok(user.tr().get("reception.own_list_added").to_owned())
    }
    .await;
    done(&state, &user, result, &format!("/reception/person/{person}")).await
}

#[derive(Template)]
#[template(path = "reception/lists.html")]
struct ListsPage {
    ctx: Ctx,
    employees: Vec<enrolment::EmployeeRow>,
    imports: Vec<(String, i64, i64, String)>,
}

async fn lists_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let result = async {
        let employees = enrolment::employees(&state.store).await?;
        let imports = sqlx::query("SELECT imported_at, rows_read, rows_added, imported_by FROM register_imports ORDER BY id DESC LIMIT 10")
            .fetch_all(state.store.read())
            .await?
            .iter()
            .map(|r| Ok((when(&state, r.try_get("imported_at")?), r.try_get("rows_read")?, r.try_get("rows_added")?, r.try_get("imported_by")?)))
            .collect::<Result<Vec<_>>>()?;
        Ok::<_, Error>(ListsPage { ctx: Ctx::staff(&state, &user, "/reception/lists").await, employees, imports })
    }
    .await;
    match result {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

async fn import_register(State(state): State<AppState>, user: StaffUser, m: Multipart) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let bytes = uploaded(m).await?;
        let r = enrolment::import_register(&state.store, &bytes, &user.actor(), now).await?;
        Ok(t.fmt("reception.imported", &[("rows", &r.rows.to_string()), ("added", &r.added.to_string())]))
    }
    .await;
    done(&state, &user, result, "/reception/lists").await
}

async fn import_employees(State(state): State<AppState>, user: StaffUser, m: Multipart) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let bytes = uploaded(m).await?;
        let r = enrolment::import_employees(&state.store, &bytes, &user.actor(), now).await?;
        Ok(t.fmt("reception.imported", &[("rows", &r.rows.to_string()), ("added", &r.added.to_string())]))
    }
    .await;
    done(&state, &user, result, "/reception/lists").await
}

async fn add_employee(State(state): State<AppState>, user: StaffUser, Form(e): Form<Employee>) -> Response {
    let now = state.clock.now_ms();
    let result = enrolment::add_employee(&state.store, &e, &user.actor(), now).await.map(|_| user.tr().get("reception.employee_added").to_owned());
    done(&state, &user, result, "/reception/lists").await
}

async fn end_employee(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = enrolment::end_employee(&state.store, id, &user.actor(), now).await.map(|()| user.tr().get("reception.employee_ended").to_owned());
    done(&state, &user, result, "/reception/lists").await
}

