//! The outlet catalogue: the articles bars, restaurants, the hotel desk and the showcase sell
//! to members, with their point prices and flags.
//!
//! Key decision: the catalogue holds what the club decides about an article (category, point
//! price, showcase, members' free drink, already discounted, active); money prices belong to the
//! till and arrive with each ticket line. An article is never deleted (tickets refer to it by
//! SKU); it is made inactive. Every change is audited with the article before and after.
//!
//! Not here: pricing (`club_rules::pricing`), the manager console's pages (they call these
//! functions).

use club_rules::Points;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::{Store, flag};

/// An article as the catalogue holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub sku: String,
    pub name: String,
    /// The category (`coffee`, `draft_beer`, `tobacco`, `food`, `showcase`, `hotel`, ...).
    pub category: String,
    /// Points per unit before the tier discount; `None`: not for points.
    #[serde(default)]
    pub points_price: Option<i64>,
    #[serde(default)]
    pub showcase: bool,
    /// A members' free drink at the bar (besides the rules' configured categories).
    #[serde(default)]
    pub member_free: bool,
    #[serde(default)]
    pub already_discounted: bool,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl Article {
    /// Checks one article; the error names it.
    pub fn validate(&self) -> Result<()> {
        let ok_code = |s: &str| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok_code(&self.sku) {
            return Err(Error::invalid(format!("SKU {:?}: 1-64 letters, digits, '-', '_' or '.'", self.sku)));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(Error::invalid(format!("{}: the name must be 1-200 characters", self.sku)));
        }
        if !ok_code(&self.category) {
            return Err(Error::invalid(format!("{}: the category must be 1-64 letters, digits, '-', '_' or '.'", self.sku)));
        }
        if let Some(p) = self.points_price
            && p <= 0
        {
            return Err(Error::invalid(format!("{}: a point price must be positive", self.sku)));
        }
        if self.showcase && self.points_price.is_none() {
            return Err(Error::invalid(format!("{}: a showcase article needs a point price", self.sku)));
        }
        Ok(())
    }

    /// The rules' view of the article, with the till's money price per unit.
    pub fn for_pricing(&self, price: club_rules::Money, already_discounted_at_till: bool) -> club_rules::pricing::Article {
        club_rules::pricing::Article {
            sku: self.sku.clone(),
            category: self.category.clone(),
            price,
            points_price: self.points_price.map(Points),
            already_discounted: self.already_discounted || already_discounted_at_till,
            member_free: self.member_free,
        }
    }
}

/// A catalogue file for `floor-server catalogue import`: CSV with a header row (`sku,name,
/// category,points_price,showcase,member_free,already_discounted,active`; empty
/// `points_price` = not for points; flags `true`/`false`, `active` defaults to true) or TOML with
/// `[[article]]` tables of the same fields.
pub fn parse_file(path: &std::path::Path, text: &str) -> Result<Vec<Article>> {
    let articles = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => parse_csv(text)?,
        Some("toml") => {
            #[derive(Deserialize)]
            struct File {
                article: Vec<Article>,
            }
            toml::from_str::<File>(text).map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?.article
        }
        _ => return Err(Error::invalid("a catalogue file ends in .csv or .toml")),
    };
    for a in &articles {
        a.validate()?;
    }
    let mut skus = std::collections::BTreeSet::new();
    if let Some(dup) = articles.iter().find(|a| !skus.insert(a.sku.as_str())) {
        return Err(Error::invalid(format!("SKU {} appears twice", dup.sku)));
    }
    Ok(articles)
}

/// Parses the CSV form of a catalogue.
pub fn parse_csv(text: &str) -> Result<Vec<Article>> {
    #[derive(Deserialize)]
    struct Row {
        sku: String,
        name: String,
        category: String,
        points_price: Option<i64>,
        #[serde(default)]
        showcase: Option<bool>,
        #[serde(default)]
        member_free: Option<bool>,
        #[serde(default)]
        already_discounted: Option<bool>,
        #[serde(default)]
        active: Option<bool>,
    }
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    reader
        .deserialize::<Row>()
        .enumerate()
        .map(|(i, row)| {
            let r = row.map_err(|e| Error::invalid(format!("catalogue line {}: {e}", i + 2)))?;
            Ok(Article {
                sku: r.sku,
                name: r.name,
                category: r.category,
                points_price: r.points_price,
                showcase: r.showcase.unwrap_or(false),
                member_free: r.member_free.unwrap_or(false),
                already_discounted: r.already_discounted.unwrap_or(false),
                active: r.active.unwrap_or(true),
            })
        })
        .collect()
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Article> {
    Ok(Article {
        sku: r.try_get("sku")?,
        name: r.try_get("name")?,
        category: r.try_get("category")?,
        points_price: r.try_get("points_price")?,
        showcase: r.try_get::<i64, _>("showcase")? != 0,
        member_free: r.try_get::<i64, _>("member_free")? != 0,
        already_discounted: r.try_get::<i64, _>("already_discounted")? != 0,
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

/// One article by SKU, active or not, inside a transaction.
pub(crate) async fn get_in(tx: &mut Transaction<'static, Any>, sku: &str) -> Result<Option<Article>> {
    let row = sqlx::query(
        "SELECT sku, name, category, points_price, showcase, member_free, already_discounted, active FROM catalogue WHERE sku = $1",
    ).bind(sku).fetch_optional(&mut **tx).await?;
    row.as_ref().map(from_row).transpose()
}

/// The active articles, by SKU.
pub async fn active(store: &Store) -> Result<Vec<Article>> {
    let rows = sqlx::query(
        "SELECT sku, name, category, points_price, showcase, member_free, already_discounted, active FROM catalogue WHERE active = 1 ORDER BY sku",
    ).fetch_all(store.read()).await?;
    rows.iter().map(from_row).collect()
}

/// Every article, active or not, by SKU.
pub async fn all(store: &Store) -> Result<Vec<Article>> {
    let rows = sqlx::query("SELECT sku, name, category, points_price, showcase, member_free, already_discounted, active FROM catalogue ORDER BY sku").fetch_all(store.read()).await?;
    rows.iter().map(from_row).collect()
}

/// Adds or changes articles in one transaction, each audited (`catalogue.upsert`, the article
/// before and after); an article that does not change writes nothing. Returns how many changed.
pub async fn upsert(store: &Store, articles: &[Article], actor: &Actor, now: Millis) -> Result<usize> {
    for a in articles {
        a.validate()?;
    }
    let mut tx = store.begin().await?;
    let mut changed = 0;
    for a in articles {
        let before = get_in(&mut tx, &a.sku).await?;
        if before.as_ref() == Some(a) {
            continue;
        }
        sqlx::query(
            "INSERT INTO catalogue (sku, name, category, points_price, showcase, member_free, already_discounted, active, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (sku) DO UPDATE SET name = excluded.name, \
             category = excluded.category, points_price = excluded.points_price, showcase = excluded.showcase, \
             member_free = excluded.member_free, already_discounted = excluded.already_discounted, active = excluded.active, \
             updated_at = excluded.updated_at",
        )
        .bind(&a.sku)
        .bind(&a.name)
        .bind(&a.category)
        .bind(a.points_price)
        .bind(flag(a.showcase))
        .bind(flag(a.member_free))
        .bind(flag(a.already_discounted))
        .bind(flag(a.active))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::record(&mut tx, now, actor, "catalogue.upsert", &format!("sku:{}", a.sku), before, Some(a)).await?;
        changed += 1;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Makes an article active or inactive (audited). An unknown SKU is `NotFound`.
pub async fn set_active(store: &Store, sku: &str, active: bool, actor: &Actor, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    let before = get_in(&mut tx, sku).await?.ok_or_else(|| Error::NotFound(format!("article {sku}")))?;
    if before.active != active {
        sqlx::query("UPDATE catalogue SET active = $1, updated_at = $2 WHERE sku = $3")
            .bind(flag(active))
            .bind(now)
            .bind(sku)
            .execute(&mut *tx)
            .await?;
        let after = Article { active, ..before.clone() };
        audit::record(&mut tx, now, actor, "catalogue.set_active", &format!("sku:{sku}"), Some(before), Some(after)).await?;
    }
    tx.commit().await?;
    Ok(())
}
