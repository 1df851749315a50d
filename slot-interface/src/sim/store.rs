//! What a simulated machine keeps across restarts: its meters, credits, AFT registration and
//! transfer history, as one JSON file written atomically after every change.
//!
//! Key decision: a file that exists but does not parse is an error, never a silent reset to
//! zero: meters are money records. Writes go to a temporary file that is renamed over the old
//! one, so a crash leaves either the old or the new state. What it does not do: no locking
//! between two simulators on one file (one file per machine).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aft::{registration_status, RegistrationKey, TransferRecord};
use crate::Error;

/// The machine's meters, in credits of the accounting denomination unless named otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meters {
    pub coin_in: u64,
    pub coin_out: u64,
    pub jackpot: u64,
    pub cancelled_credits: u64,
    pub games_played: u64,
    pub games_won: u64,
    pub games_lost: u64,
    pub bills_credits: u64,
    pub drop: u64,
    pub restricted_played: u64,
    pub nonrestricted_played: u64,
    pub electronic_in: u64,
    pub aft_restricted_in_cents: u64,
    pub aft_cashable_in_cents: u64,
    pub legacy_bonus: u64,
    pub slot_door_opened: u64,
    pub power_reset: u64,
}

/// One AFT transfer as kept: the machine's status for it and the record it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTransfer {
    pub status: u8,
    pub record: TransferRecord,
}

/// Everything the simulator persists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stored {
    pub meters: Meters,
    /// Cashable credits on the credit meter.
    pub credits: u64,
    /// Restricted promotional credits (free play), played before cashable ones (§8).
    pub restricted_credits: u64,
    pub restricted_pool_id: u16,
    pub registration_status: u8,
    pub registration_key: [u8; 20],
    pub pos_id: u32,
    /// The current or most recent transfer request (transaction index 0).
    pub current_transfer: Option<StoredTransfer>,
    /// Completed transfers, most recent last.
    pub history: Vec<StoredTransfer>,
}

impl Default for Stored {
    fn default() -> Self {
        Stored {
            meters: Meters::default(),
            credits: 0,
            restricted_credits: 0,
            restricted_pool_id: 0,
            registration_status: registration_status::NOT_REGISTERED,
            registration_key: [0; 20],
            pos_id: 0,
            current_transfer: None,
            history: Vec::new(),
        }
    }
}

impl Stored {
    /// The registration key.
    pub fn key(&self) -> RegistrationKey {
        RegistrationKey(self.registration_key)
    }
}

/// The meter file of one simulated machine.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// A store at `path` (created on first save).
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or the zero state when there is no file yet.
    pub fn load(&self) -> Result<Stored, Error> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Saves atomically (write a temporary file, then rename it over the old one).
    pub fn save(&self, state: &Stored) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(state).map_err(|e| self.error(e))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, json).map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Store { path: self.path.display().to_string(), reason: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_a_new_machine() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("m.json"));
        assert_eq!(store.load().unwrap(), Stored::default());
    }

    #[test]
    fn saved_meters_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("m.json"));
        let mut state = Stored::default();
        state.meters.coin_in = 1234;
        state.credits = 56;
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), state);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(&path, b"{ \"meters\": ").unwrap();
        assert!(matches!(Store::new(&path).load(), Err(Error::Store { .. })));
    }
}
