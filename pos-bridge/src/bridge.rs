//! The bridge: the till's local API on one side, the floor server on the other.
//!
//! Key decisions:
//! - The member at the till is whoever's card the terminal read last ([`Bridge::card_read`]);
//!   the till never handles card numbers. Prices and settlements are for that member.
//! - The server decides every price, discount, limit and point (`club_rules` on the floor
//!   server); the bridge checks the shape of what the till sends (known SKUs from its cached
//!   catalogue, quantities, amounts, tenders adding up offline) so mistakes are answered at once.
//! - Settle, void and refund are idempotent by the till's ticket number on the server. A settle
//!   repeated after the first succeeded answers 409 `already_settled` with the first settlement.
//! - Offline: a ticket paid only in money is recorded as a `Purchase` event through
//!   [`Floor::record`] (the agent's outbox) and earns when it reaches the server, under the same
//!   receipt key an online settle uses, so it can never earn twice. Paying with points, voids and
//!   refunds need the server and are refused with `points_offline` / `offline`.
//!
//! Not here: the card reader (the agent calls [`Bridge::card_read`]), the connection to the
//! server ([`Floor`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request as HttpRequest, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use floor_protocol::{
    CardNumber, CatalogueArticle, ErrorCode, OutletLine, OutletTicket, Purchase, ReceiptLine, Reply, Request, Reversal,
    TenderKind, TerminalEvent,
};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use utoipa::OpenApi;

use crate::api::*;
use crate::floor::Floor;

/// How the bridge behaves.
#[derive(Clone)]
pub struct BridgeConfig {
    /// The token the till sends as `Authorization: Bearer <token>`.
    pub token: SecretString,
    /// The outlet of this till, for tickets that do not name one.
    pub outlet: PosOutlet,
    /// How often the catalogue is fetched again (default 5 minutes).
    pub catalogue_refresh: Duration,
    /// How long a card read counts as "the member at the till" without another read (default
    /// 15 minutes).
    pub card_valid_for: Duration,
}

impl BridgeConfig {
    pub fn new(token: SecretString, outlet: PosOutlet) -> BridgeConfig {
        BridgeConfig { token, outlet, catalogue_refresh: Duration::from_secs(300), card_valid_for: Duration::from_secs(900) }
    }
}

impl std::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeConfig").field("outlet", &self.outlet).finish_non_exhaustive()
    }
}

/// The most lines a ticket may have, and the largest quantity of a line.
pub const MAX_LINES: usize = 200;
pub const MAX_QUANTITY: i64 = 1000;

/// A ticket's lines as priced online and the money due for each.
type Quoted = (Vec<OutletLine>, Vec<Decimal>);

struct Inner<F> {
    floor: F,
    config: BridgeConfig,
    card: Mutex<Option<(CardNumber, Instant)>>,
    catalogue: RwLock<Option<(Arc<Vec<CatalogueArticle>>, Instant)>>,
    /// The money per line of tickets priced online, for settling them offline at the same prices.
    priced: Mutex<HashMap<String, Quoted>>,
    /// Tickets recorded offline by this bridge, to refuse a replay at once.
    recorded_offline: Mutex<HashSet<String>>,
}

/// The bridge between a till and the floor server. Cheap to clone.
pub struct Bridge<F> {
    inner: Arc<Inner<F>>,
}

impl<F> Clone for Bridge<F> {
    fn clone(&self) -> Self {
        Bridge { inner: self.inner.clone() }
    }
}

impl<F: Floor> Bridge<F> {
    pub fn new(floor: F, config: BridgeConfig) -> Bridge<F> {
        Bridge {
            inner: Arc::new(Inner {
                floor,
                config,
                card: Mutex::new(None),
                catalogue: RwLock::new(None),
                priced: Mutex::new(HashMap::new()),
                recorded_offline: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// A club card was read at this till: its holder is now the member at the till.
    pub fn card_read(&self, card: CardNumber) {
        *self.inner.card.lock().expect("card lock") = Some((card, Instant::now()));
    }

    /// The card was taken away (or the sale is over): no member at the till.
    pub fn card_removed(&self) {
        *self.inner.card.lock().expect("card lock") = None;
    }

    fn current_card(&self) -> Result<CardNumber, Failure> {
        let card = self.inner.card.lock().expect("card lock").clone();
        match card {
            Some((card, at)) if at.elapsed() < self.inner.config.card_valid_for => Ok(card),
            _ => Err(Failure::new(StatusCode::CONFLICT, "no_member", "no club card was read at this till")),
        }
    }

    /// Fetches the catalogue from the server now.
    pub async fn refresh_catalogue(&self) -> Result<Arc<Vec<CatalogueArticle>>, Failure> {
        match self.inner.floor.request(Request::Catalogue).await {
            Ok(Reply::Catalogue { articles }) => {
                let articles = Arc::new(articles);
                *self.inner.catalogue.write().expect("catalogue lock") = Some((articles.clone(), Instant::now()));
                Ok(articles)
            }
            Ok(other) => Err(from_reply(other, Context::Other)),
            Err(e) => Err(Failure::offline(e.to_string())),
        }
    }

    /// Refreshes the catalogue every `catalogue_refresh` until `stop` resolves.
    pub fn spawn_catalogue_refresh(&self, stop: impl Future<Output = ()> + Send + 'static) -> tokio::task::JoinHandle<()> {
        let bridge = self.clone();
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut every = tokio::time::interval(bridge.inner.config.catalogue_refresh);
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = every.tick() => {
                        if let Err(e) = bridge.refresh_catalogue().await {
                            tracing::warn!(error = %e.body.message, "catalogue refresh failed; keeping the cached one");
                        }
                    }
                }
            }
        })
    }

    /// The cached catalogue, fetched when there is none yet.
    async fn catalogue(&self) -> Result<Arc<Vec<CatalogueArticle>>, Failure> {
        let cached = self.inner.catalogue.read().expect("catalogue lock").clone();
        match cached {
            Some((c, _)) => Ok(c),
            None => self.refresh_catalogue().await,
        }
    }

    /// Checks a ticket's shape against the cached catalogue (fetched again once, when it is more
    /// than a few seconds old and an SKU is not in it) and turns it into the wire form.
    async fn ticket(&self, t: &PosTicket) -> Result<OutletTicket, Failure> {
        check_ticket_id(&t.id)?;
        if t.lines.is_empty() {
            return Err(Failure::invalid("a ticket needs at least one line"));
        }
        if t.lines.len() > MAX_LINES {
            return Err(Failure::invalid(format!("a ticket has at most {MAX_LINES} lines")));
        }
        let mut lines = Vec::with_capacity(t.lines.len());
        for (i, l) in t.lines.iter().enumerate() {
            let n = i + 1;
            if l.quantity < 1 || l.quantity > MAX_QUANTITY {
                return Err(Failure::invalid(format!("line {n} ({}): quantity must be 1 to {MAX_QUANTITY}, not {}", l.sku, l.quantity)));
            }
            check_amount(l.unit_price, &format!("line {n} ({}): unit price", l.sku))?;
            lines.push(OutletLine {
                sku: l.sku.trim().to_owned(),
                name: l.name.clone(),
                category: l.category.clone(),
                quantity: l.quantity as u32,
                unit_price: l.unit_price,
                already_discounted: l.already_discounted,
                pay_with: match l.pay_with {
                    PosPayWith::Money => floor_protocol::PayWith::Money,
                    PosPayWith::Points => floor_protocol::PayWith::Points,
                },
            });
        }
        let mut catalogue = self.catalogue().await?;
        let fresh = |c: &Arc<Vec<CatalogueArticle>>, sku: &str| c.iter().any(|a| a.sku == sku);
        if let Some(missing) = lines.iter().find(|l| !fresh(&catalogue, &l.sku)) {
            let age = self.inner.catalogue.read().expect("catalogue lock").as_ref().map(|(_, at)| at.elapsed());
            if age.is_some_and(|a| a > Duration::from_secs(5)) {
                catalogue = self.refresh_catalogue().await.unwrap_or(catalogue);
            }
            if !fresh(&catalogue, &missing.sku) {
                return Err(unknown_sku(&missing.sku));
            }
        }
        let outlet = match t.outlet.unwrap_or(self.inner.config.outlet) {
            PosOutlet::Bar => floor_protocol::Outlet::Bar,
            PosOutlet::Restaurant => floor_protocol::Outlet::Restaurant,
            PosOutlet::Hotel => floor_protocol::Outlet::Hotel,
            PosOutlet::Showcase => floor_protocol::Outlet::Showcase,
        };
        Ok(OutletTicket { id: t.id.clone(), outlet, lines })
    }

    async fn member(&self) -> Result<MemberAtTill, Failure> {
        let card = self.current_card()?;
        match self.inner.floor.request(Request::Balance { card }).await {
            Ok(Reply::Balance { name, tier, points, .. }) => Ok(MemberAtTill { name, tier: tier.code().to_owned(), points }),
            Ok(other) => Err(from_reply(other, Context::Other)),
            Err(e) => Err(Failure::offline(e.to_string())),
        }
    }

    async fn price(&self, t: PosTicket) -> Result<PricedTicket, Failure> {
        let ticket = self.ticket(&t).await?;
        let card = self.current_card()?;
        let reply = self
            .inner
            .floor
            .request(Request::OutletPrice { card, ticket: ticket.clone() })
            .await
            .map_err(|e| Failure::offline(format!("{e}; member prices are not available now")))?;
        match reply {
            Reply::OutletPriced { tier, lines, money_due, points_due, points_available } => {
                let money = lines.iter().map(|l| l.money).collect();
                self.inner.priced.lock().expect("priced lock").insert(ticket.id.clone(), (ticket.lines.clone(), money));
                Ok(PricedTicket {
                    ticket: ticket.id,
                    tier: tier.code().to_owned(),
                    lines: lines.into_iter().map(priced_line).collect(),
                    money_due: eur(money_due),
                    points_due,
                    points_available,
                })
            }
            other => Err(from_reply(other, Context::Ticket)),
        }
    }

    async fn settle(&self, s: SettleRequest) -> Result<(StatusCode, Settlement), Failure> {
        let ticket = self.ticket(&s.ticket).await?;
        let card = self.current_card()?;
        let mut money = Vec::new();
        let mut points = 0i64;
        for t in &s.tenders {
            match t {
                PosTender::Cash { amount } | PosTender::Card { amount } => {
                    check_amount(*amount, "a tender amount")?;
                    let kind = if matches!(t, PosTender::Cash { .. }) { TenderKind::Cash } else { TenderKind::Card };
                    money.push(floor_protocol::Tender { kind, amount: *amount });
                }
                PosTender::Points { points: p } => {
                    if *p < 0 {
                        return Err(Failure::invalid("a points tender cannot be negative"));
                    }
                    points = points.checked_add(*p).ok_or_else(|| Failure::invalid("too many points"))?;
                }
            }
        }
        let request = Request::OutletSettle { card: card.clone(), ticket: ticket.clone(), tenders: money.clone(), points };
        match self.inner.floor.request(request).await {
            Ok(Reply::OutletSettled { ticket, money_due, points_spent, points_earned, points_balance, repeated, .. }) => {
                let settlement = Settlement {
                    ticket,
                    money_due: eur(money_due),
                    points_spent,
                    points_earned: Some(points_earned),
                    points_balance: Some(points_balance),
                    offline: false,
                };
                if repeated {
                    let mut f = Failure::new(StatusCode::CONFLICT, "already_settled", "this ticket was already settled; nothing changed");
                    f.body.settlement = Some(Box::new(settlement));
                    return Err(f);
                }
                self.inner.priced.lock().expect("priced lock").remove(&settlement.ticket);
                Ok((StatusCode::OK, settlement))
            }
            Ok(other) => Err(from_reply(other, Context::Ticket)),
            Err(offline) => self.settle_offline(card, ticket, money, points, offline.0).await,
        }
    }

    /// A ticket paid in money only goes to the outbox as a `Purchase`; anything with points is
    /// refused.
    async fn settle_offline(
        &self,
        card: CardNumber,
        ticket: OutletTicket,
        tenders: Vec<floor_protocol::Tender>,
        points: i64,
        why: String,
    ) -> Result<(StatusCode, Settlement), Failure> {
        if points != 0 || ticket.lines.iter().any(|l| l.pay_with == floor_protocol::PayWith::Points) {
            tracing::warn!(reason = %why, "paying with points refused: the floor server is not reachable");
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "points_offline",
                "Paying with points is not possible right now (the club server cannot be reached). Please take another payment.",
            ));
        }
        if self.inner.recorded_offline.lock().expect("offline lock").contains(&ticket.id) {
            return Err(Failure::new(StatusCode::CONFLICT, "already_settled", "this ticket was already recorded; nothing changed"));
        }
        // The member's prices when this ticket was priced online with the same lines; else list.
        let cached = self.inner.priced.lock().expect("priced lock").get(&ticket.id).cloned();
        let amounts: Vec<Decimal> = match cached {
            Some((lines, money)) if lines == ticket.lines => money,
            _ => ticket.lines.iter().map(|l| l.unit_price * Decimal::from(l.quantity)).collect(),
        };
        let due: Decimal = amounts.iter().sum();
        let paid: Decimal = tenders.iter().map(|t| t.amount).sum();
        if paid != due {
            return Err(Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("the tenders add up to {paid} but the ticket is {due}"),
            ));
        }
        let purchase = Purchase {
            receipt: ticket.id.clone(),
            card,
            lines: ticket
                .lines
                .iter()
                .zip(&amounts)
                .map(|(l, amount)| ReceiptLine {
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    category: l.category.clone(),
                    quantity: 1,
                    unit_price: *amount,
                    already_discounted: l.already_discounted,
                })
                .collect(),
            tenders,
        };
        self.inner
            .floor
            .record(TerminalEvent::Purchase(purchase))
            .await
            .map_err(|e| Failure::offline(format!("the sale could not be recorded: {e}")))?;
        self.inner.recorded_offline.lock().expect("offline lock").insert(ticket.id.clone());
        tracing::info!("ticket recorded offline; its points are decided when the server receives it");
        Ok((StatusCode::ACCEPTED, Settlement {
            ticket: ticket.id,
            money_due: eur(due),
            points_spent: 0,
            points_earned: None,
            points_balance: None,
            offline: true,
        }))
    }

    async fn reverse(&self, id: String, reversal: Reversal) -> Result<Reversed, Failure> {
        check_ticket_id(&id)?;
        let reply = self
            .inner
            .floor
            .request(Request::OutletReverse { ticket: id, reversal })
            .await
            .map_err(|e| Failure::offline(format!("{e}; a void or refund needs the club server")))?;
        match reply {
            Reply::OutletReversed { ticket, reversal, points_returned, points_taken_back, points_balance, repeated } => {
                if repeated {
                    return Err(Failure::new(StatusCode::CONFLICT, "already_reversed", "this ticket was already voided or refunded; nothing changed"));
                }
                let reversal = match reversal {
                    Reversal::Void => "void",
                    Reversal::Refund => "refund",
                };
                Ok(Reversed { ticket, reversal: reversal.to_owned(), points_returned, points_taken_back, points_balance })
            }
            other => Err(from_reply(other, Context::Reversal)),
        }
    }

    /// The till's API: `/v1/...` behind the token, `/openapi.json` open.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v1/member", get(member_handler::<F>))
            .route("/v1/catalogue", get(catalogue_handler::<F>))
            .route("/v1/tickets/price", post(price_handler::<F>))
            .route("/v1/tickets/settle", post(settle_handler::<F>))
            .route("/v1/tickets/{id}/void", post(void_handler::<F>))
            .route("/v1/tickets/{id}/refund", post(refund_handler::<F>))
            .route_layer(middleware::from_fn_with_state(self.clone(), require_token::<F>))
            .with_state(self.clone());
        Router::new().route("/openapi.json", get(openapi)).merge(api)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves. By default the bridge listens on
/// loopback only (see the binary); the till is on the same machine.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await
}

fn check_ticket_id(id: &str) -> Result<(), Failure> {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(Failure::invalid("a ticket number is 1-64 letters, digits, '-', '_' or '.'")) }
}

fn check_amount(amount: Decimal, what: &str) -> Result<(), Failure> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(Failure::invalid(format!("{what} cannot be negative: {amount}")));
    }
    if amount.normalize().scale() > 2 {
        return Err(Failure::invalid(format!("{what} has fractions of a cent: {amount}")));
    }
    Ok(())
}

/// Money as the till shows it: always two decimals ("0.00", "6.30").
fn eur(amount: Decimal) -> Decimal {
    let mut d = amount;
    d.rescale(2);
    d
}

fn unknown_sku(sku: &str) -> Failure {
    Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_sku", format!("the article {sku:?} is not in the club catalogue"))
}

fn priced_line(l: floor_protocol::PricedOutletLine) -> PricedLine {
    PricedLine {
        sku: l.sku,
        quantity: i64::from(l.quantity),
        pay_with: match l.pay_with {
            floor_protocol::PayWith::Money => PosPayWith::Money,
            floor_protocol::PayWith::Points => PosPayWith::Points,
        },
        discount_percent: l.discount_percent,
        free_drink: l.free_drink,
        money: eur(l.money),
        points: l.points,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Ticket,
    Reversal,
    Other,
}

/// The server's refusal or failure as the till's error.
fn from_reply(reply: Reply, context: Context) -> Failure {
    match reply {
        Reply::Refused { text, .. } => Failure::new(StatusCode::FORBIDDEN, "refused", text),
        Reply::Failed { code, message } => match code {
            ErrorCode::NotFound if context == Context::Ticket => Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_sku", message),
            ErrorCode::NotFound => Failure::new(StatusCode::NOT_FOUND, "not_found", message),
            ErrorCode::Invalid | ErrorCode::Malformed => Failure::invalid(message),
            ErrorCode::Declined => Failure::new(StatusCode::CONFLICT, "declined", message),
            ErrorCode::Conflict => Failure::new(StatusCode::CONFLICT, "conflict", message),
            _ => Failure::offline(message),
        },
        other => {
            tracing::error!(reply = ?other, "unexpected reply from the floor server");
            Failure::offline("unexpected answer from the club server")
        }
    }
}

async fn require_token<F: Floor>(State(bridge): State<Bridge<F>>, request: HttpRequest, next: Next) -> Response {
    let expected = bridge.inner.config.token.expose_secret().as_bytes();
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::as_bytes);
    match given {
        Some(g) if !expected.is_empty() && bool::from(g.ct_eq(expected)) => next.run(request).await,
        _ => Failure::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required").into_response(),
    }
}

/// A JSON body, or a 400 in the API's error shape.
fn body<T>(parsed: Result<Json<T>, JsonRejection>) -> Result<T, Failure> {
    parsed.map(|Json(v)| v).map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))
}

#[utoipa::path(get, path = "/v1/member", tag = "pos",
    responses((status = 200, body = MemberAtTill), (status = 409, description = "no card read", body = ApiError),
              (status = 403, description = "the club refuses the card", body = ApiError), (status = 503, body = ApiError)),
    security(("token" = [])))]
/// Who is at my till: the member whose card was read last.
async fn member_handler<F: Floor>(State(b): State<Bridge<F>>) -> Result<Json<MemberAtTill>, Failure> {
    b.member().await.map(Json)
}

#[utoipa::path(get, path = "/v1/catalogue", tag = "pos",
    responses((status = 200, body = [CatalogueItem]), (status = 503, body = ApiError)), security(("token" = [])))]
/// The club catalogue as last fetched from the server.
async fn catalogue_handler<F: Floor>(State(b): State<Bridge<F>>) -> Result<Json<Vec<CatalogueItem>>, Failure> {
    let c = b.catalogue().await?;
    Ok(Json(
        c.iter()
            .map(|a| CatalogueItem {
                sku: a.sku.clone(),
                name: a.name.clone(),
                category: a.category.clone(),
                points_price: a.points_price,
                showcase: a.showcase,
                member_free: a.member_free,
                already_discounted: a.already_discounted,
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/tickets/price", tag = "pos", request_body = PosTicket,
    responses((status = 200, body = PricedTicket), (status = 400, body = ApiError), (status = 422, body = ApiError),
              (status = 403, body = ApiError), (status = 409, body = ApiError), (status = 503, body = ApiError)),
    security(("token" = [])))]
/// Prices a ticket for the member at the till: tier discount, free drinks, point prices.
async fn price_handler<F: Floor>(State(b): State<Bridge<F>>, t: Result<Json<PosTicket>, JsonRejection>) -> Result<Json<PricedTicket>, Failure> {
    b.price(body(t)?).await.map(Json)
}

#[utoipa::path(post, path = "/v1/tickets/settle", tag = "pos", request_body = SettleRequest,
    responses((status = 200, body = Settlement), (status = 202, description = "recorded offline", body = Settlement),
              (status = 400, body = ApiError), (status = 422, body = ApiError), (status = 403, body = ApiError),
              (status = 409, description = "already settled, a limit, too few points", body = ApiError),
              (status = 503, description = "offline; `points_offline` when points were asked", body = ApiError)),
    security(("token" = [])))]
/// Settles a ticket with its tenders: money tenders pay the money due, a points tender the points due.
async fn settle_handler<F: Floor>(State(b): State<Bridge<F>>, s: Result<Json<SettleRequest>, JsonRejection>) -> Result<Response, Failure> {
    let (status, settlement) = b.settle(body(s)?).await?;
    Ok((status, Json(settlement)).into_response())
}

#[utoipa::path(post, path = "/v1/tickets/{id}/void", tag = "pos", params(("id" = String, Path, description = "the ticket number")),
    responses((status = 200, body = Reversed), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 503, body = ApiError)),
    security(("token" = [])))]
/// Voids a settled ticket: its points come back, its earned points are taken back.
async fn void_handler<F: Floor>(State(b): State<Bridge<F>>, Path(id): Path<String>) -> Result<Json<Reversed>, Failure> {
    b.reverse(id, Reversal::Void).await.map(Json)
}

#[utoipa::path(post, path = "/v1/tickets/{id}/refund", tag = "pos", params(("id" = String, Path, description = "the ticket number")),
    responses((status = 200, body = Reversed), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 503, body = ApiError)),
    security(("token" = [])))]
/// Refunds a settled ticket, as a void does.
async fn refund_handler<F: Floor>(State(b): State<Bridge<F>>, Path(id): Path<String>) -> Result<Json<Reversed>, Failure> {
    b.reverse(id, Reversal::Refund).await.map(Json)
}

struct TokenScheme;

impl utoipa::Modify for TokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The OpenAPI document of the till's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "pos-bridge", description = "The club's local API for a bar, restaurant, hotel or showcase till."),
    paths(member_handler, catalogue_handler, price_handler, settle_handler, void_handler, refund_handler),
    components(schemas(PosOutlet, PosPayWith, PosLine, PosTicket, PosTender, SettleRequest, MemberAtTill, CatalogueItem,
                       PricedLine, PricedTicket, Settlement, Reversed, ApiError)),
    modifiers(&TokenScheme)
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
