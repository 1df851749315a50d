//! The exclusion gate: may this member, with this card, earn or redeem at `now`?
//!
//! Key decision: one answer for earning and redeeming (RULES.md 1 forbids both alike), judged from
//! the member's life-cycle state, the card's state and the exclusions in force at `now` (national
//! register entries, the member's own self-exclusion, entry bans: each with its time window). The
//! person comes before the card: a banned member with a lost card is refused as banned. Nothing is
//! paused while an exclusion lasts: when it ends, the points still within their validity can be
//! used again, those that expired meanwhile cannot.
//!
//! Not here: looking anything up (the server asks the register and loads the records) and what a
//! refusal does to an event (earning records it with the reason; redemption is refused).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::{CardState, MemberState, Points, RefusalCode, Tier};

/// Everything the gate looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// The member's life-cycle state.
    pub member: MemberState,
    /// The card presented; `None` when staff identified the member without a card (at a desk).
    pub card: Option<CardState>,
    /// The person's exclusions on record (register entries, own requests, bans), past, present or
    /// future: the gate picks those in force at `now`.
    pub exclusions: Vec<Exclusion>,
}

/// A time-bounded exclusion of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// Who excluded the person.
    pub kind: ExclusionKind,
    /// The first moment it applies.
    pub from: DateTime<Utc>,
    /// The first moment it no longer applies; `None` until lifted.
    pub until: Option<DateTime<Utc>>,
}

/// Who excluded the person; ordered so that the first in force is the reason given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionKind {
    /// An entry in the national register of self-excluded persons.
    Register,
    /// The member's own request (under the Gaming Act).
    OwnRequest,
    /// An entry ban by the operator.
    Ban,
}

impl ExclusionKind {
    /// Every kind.
    pub const ALL: [ExclusionKind; 3] = [ExclusionKind::Register, ExclusionKind::OwnRequest, ExclusionKind::Ban];

    /// The storage code.
    pub fn code(self) -> &'static str {
        match self {
            ExclusionKind::Register => "register",
            ExclusionKind::OwnRequest => "own_request",
            ExclusionKind::Ban => "ban",
        }
    }

    /// The kind with this storage code.
    pub fn from_code(code: &str) -> Option<ExclusionKind> {
        ExclusionKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl Exclusion {
    /// Whether it applies at `now`.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.from <= now && self.until.is_none_or(|until| now < until)
    }
}

/// The kind of the exclusion in force at `now` (self-exclusion before a ban), if any.
pub fn exclusion_in_force(exclusions: &[Exclusion], now: DateTime<Utc>) -> Option<ExclusionKind> {
    exclusions.iter().filter(|e| e.in_force(now)).map(|e| e.kind).min()
}

impl Standing {
    /// An active member with an active card and nothing against them.
    pub fn clear() -> Standing {
        Standing { member: MemberState::Active, card: Some(CardState::Active), exclusions: Vec::new() }
    }

    /// `Ok` when the member may earn and redeem at `now`, else the reason.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), RefusalCode> {
        match self.member {
            MemberState::Left | MemberState::Terminated => return Err(RefusalCode::MembershipEnded),
            MemberState::SelfExcluded => return Err(RefusalCode::SelfExcluded),
            MemberState::Banned => return Err(RefusalCode::Banned),
            MemberState::Active => {}
        }
        match exclusion_in_force(&self.exclusions, now) {
            Some(ExclusionKind::Register | ExclusionKind::OwnRequest) => return Err(RefusalCode::SelfExcluded),
            Some(ExclusionKind::Ban) => return Err(RefusalCode::Banned),
            None => {}
        }
        match self.card {
            None | Some(CardState::Active) => Ok(()),
            Some(CardState::Issued) => Err(RefusalCode::CardNotActivated),
            Some(CardState::BlockedLost | CardState::BlockedStolen) => Err(RefusalCode::CardBlocked),
            Some(CardState::Replaced) => Err(RefusalCode::CardReplaced),
            Some(CardState::Revoked) => Err(RefusalCode::CardRevoked),
        }
    }
}

/// The small state the server loads before asking the rules about one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// What the exclusion gate looks at.
    pub standing: Standing,
    /// The member's tier now.
    pub tier: Tier,
    /// Qualifying points at the decision's `now` from the entries recorded before the event being
    /// decided (`tiers::qualifying_points`).
    pub qualifying: Points,
}

impl Member {
    /// The exclusion gate for this member at `now`.
    pub fn gate(&self, now: DateTime<Utc>) -> Result<(), RefusalCode> {
        self.standing.check(now)
    }
}
