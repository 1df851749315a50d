//! The end of a membership and what it does to points and free play (RULES.md 1, "End of
//! membership").
//!
//! Key decision: on the member's own request or the club's closure the balances stay in the
//! ledger but can no longer be used from that day (the member becomes `Left`, which the exclusion
//! gate refuses); for every other reason (death, abuse, breach of club or house rules) every lot
//! with something left is emptied by a deletion entry that day (the member becomes `Terminated`).
//! Lots already past their validity get their expiry entry instead, dated at their expiry, so the
//! ledger says truthfully what was lost how.
//!
//! Joining (RULES.md 1, "Membership") is here too: an adult who is not self-excluded, not banned
//! and not an employee of the operator or a partner may join. A person born on 29 February comes
//! of age on 1 March in other years (the later reading, the safe one for a casino).
//!
//! Not here: blocking personal data and revoking cards (the server's).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::cashback::FreePlayGrant;
use crate::config::Rules;
use crate::error::{Result, RulesError};
use crate::gate::{Exclusion, ExclusionKind, exclusion_in_force};
use crate::ledger::{FreePlayEntry, FreePlayKind, PointsEntry, PointsKind};
use crate::lots::{PointsLot, close_all};
use crate::types::MemberState;

/// The age from which a person may join.
pub const MINIMUM_AGE: i32 = 18;

/// A person asking to join at reception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    /// Date of birth, from the identity document.
    pub born_on: NaiveDate,
    /// Their exclusions on record (register entries, own requests, bans).
    pub exclusions: Vec<Exclusion>,
    /// An employee of the operator or of a partner taking part in the club (also contractors and
    /// students working there).
    pub employee: bool,
}

/// Why a person may not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinRefusal {
    UnderAge,
    SelfExcluded,
    Banned,
    Employee,
}

/// The day a person born on `born_on` reaches `years` of age.
pub fn birthday(born_on: NaiveDate, years: i32) -> Option<NaiveDate> {
    let year = born_on.year().checked_add(years)?;
    NaiveDate::from_ymd_opt(year, born_on.month(), born_on.day()).or_else(|| NaiveDate::from_ymd_opt(year, 3, 1))
}

/// Whether `applicant` may join on `today` (the casino's date) at `now`.
pub fn may_join(applicant: &Applicant, today: NaiveDate, now: DateTime<Utc>) -> Result<()> {
    let refuse = |why| Err(RulesError::CannotJoin(why));
    let adult_on = birthday(applicant.born_on, MINIMUM_AGE).ok_or(RulesError::DateOutOfRange)?;
    if today < adult_on {
        return refuse(JoinRefusal::UnderAge);
    }
    match exclusion_in_force(&applicant.exclusions, now) {
        Some(ExclusionKind::Register | ExclusionKind::OwnRequest) => return refuse(JoinRefusal::SelfExcluded),
        Some(ExclusionKind::Ban) => return refuse(JoinRefusal::Banned),
        None => {}
    }
    if applicant.employee {
        return refuse(JoinRefusal::Employee);
    }
    Ok(())
}

/// Why a membership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The member's signed request.
    MemberRequest,
    /// The operator closed the club.
    ClubClosure,
    Death,
    /// Abuse of a card (someone else's card, a card in a machine another guest plays, ...).
    Abuse,
    BreachOfClubRules,
    BreachOfHouseRules,
}

impl EndReason {
    /// Every reason.
    pub const ALL: [EndReason; 6] = [
        EndReason::MemberRequest,
        EndReason::ClubClosure,
        EndReason::Death,
        EndReason::Abuse,
        EndReason::BreachOfClubRules,
        EndReason::BreachOfHouseRules,
    ];

    /// The storage code.
    pub fn code(self) -> &'static str {
        match self {
            EndReason::MemberRequest => "member_request",
            EndReason::ClubClosure => "club_closure",
            EndReason::Death => "death",
            EndReason::Abuse => "abuse",
            EndReason::BreachOfClubRules => "breach_of_club_rules",
            EndReason::BreachOfHouseRules => "breach_of_house_rules",
        }
    }

    /// The reason with this storage code.
    pub fn from_code(code: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether points and benefits stay (unusable) rather than being deleted.
    pub fn keeps_balances(self) -> bool {
        matches!(self, EndReason::MemberRequest | EndReason::ClubClosure)
    }
}

/// What ending a membership writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipEnd {
    /// The member's state from now on.
    pub state: MemberState,
    /// Deletion (and due expiry) entries for the points lots; none when balances are kept.
    pub points: Vec<PointsEntry>,
    /// The same for the free-play grants.
    pub free_play: Vec<FreePlayEntry>,
}

/// Ends a membership at `now` for `reason`.
pub fn end(
    rules: &Rules,
    reason: EndReason,
    lots: &[PointsLot],
    grants: &[FreePlayGrant],
    now: DateTime<Utc>,
) -> MembershipEnd {
    if reason.keeps_balances() {
        return MembershipEnd { state: MemberState::Left, points: Vec::new(), free_play: Vec::new() };
    }
    let version = rules.version();
    MembershipEnd {
        state: MemberState::Terminated,
        points: close_all(lots, now, Some(PointsKind::Deleted(reason)), PointsKind::Expired, version),
        free_play: close_all(grants, now, Some(FreePlayKind::Deleted(reason)), FreePlayKind::Expired, version),
    }
}
