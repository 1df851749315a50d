//! Advanced Funds Transfer messages (SAS §8): registration (0x73), game lock and status (0x74),
//! transfer funds and interrogation (0x72), and the outcome a host reports for a transfer.
//!
//! Key decision: a transfer is identified by its transaction id end to end. The host asks the
//! machine what happened to an id before it ever sends it (interrogation, §8.3/§8.6), which
//! makes a retried free-play request idempotent. Amounts on the wire are cents (5 BCD bytes);
//! they become `Money` only at the host API. No IO here; the procedure lives in `host`.

use club_rules::Money;
use serde::{Deserialize, Serialize};

use crate::codec::Fields;
use crate::frame::{put_bcd, put_binary};
use crate::{Error, FrameFault};

/// An AFT transaction id: 1 to 20 printable ASCII characters, 0x20 to 0x7E (§8).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TransactionId(String);

impl TryFrom<String> for TransactionId {
    type Error = Error;
    fn try_from(id: String) -> Result<TransactionId, Error> {
        TransactionId::parse(&id)
    }
}

impl From<TransactionId> for String {
    fn from(id: TransactionId) -> String {
        id.0
    }
}

impl TransactionId {
    /// Validates a transaction id.
    pub fn parse(id: &str) -> Result<TransactionId, Error> {
        Self::from_bytes(id.as_bytes()).ok_or(Error::BadTransactionId)
    }

    fn from_bytes(bytes: &[u8]) -> Option<TransactionId> {
        let printable = bytes.iter().all(|b| (0x20..=0x7E).contains(b));
        ((1..=20).contains(&bytes.len()) && printable).then(|| TransactionId(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0.len() as u8);
        out.extend_from_slice(self.0.as_bytes());
    }

    fn decode(f: &mut Fields<'_>) -> Result<TransactionId, FrameFault> {
        let len = usize::from(f.u8()?);
        Self::from_bytes(f.bytes(len)?).ok_or(FrameFault::Field("transaction id"))
    }
}

impl std::fmt::Display for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 20-byte AFT registration key. A shared secret between host and machine: `Debug` never
/// shows it.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistrationKey(pub [u8; 20]);

impl std::fmt::Debug for RegistrationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistrationKey(..)")
    }
}

/// A transfer status code (§8.3). The top three bits give the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferStatus(pub u8);

impl TransferStatus {
    /// Full transfer successful.
    pub const FULL: Self = Self(0x00);
    /// Partial transfer successful.
    pub const PARTIAL: Self = Self(0x01);
    /// Transfer pending (not complete).
    pub const PENDING: Self = Self(0x40);
    /// Transfer cancelled by host.
    pub const CANCELLED: Self = Self(0x80);
    /// Transaction id not unique (same as the last successful transfer).
    pub const NOT_UNIQUE: Self = Self(0x81);
    /// Not a valid transfer function.
    pub const INVALID_FUNCTION: Self = Self(0x82);
    /// Not a valid transfer amount or expiration.
    pub const INVALID_AMOUNT: Self = Self(0x83);
    /// Transfer amount exceeds the machine's transfer limit.
    pub const EXCEEDS_LIMIT: Self = Self(0x84);
    /// Transfer amount not an even multiple of the machine denomination.
    pub const NOT_MULTIPLE: Self = Self(0x85);
    /// Machine unable to perform transfers at this time (door open, tilt, disabled, ...).
    pub const UNABLE_NOW: Self = Self(0x87);
    /// Machine not registered.
    pub const NOT_REGISTERED: Self = Self(0x88);
    /// Registration key does not match.
    pub const KEY_MISMATCH: Self = Self(0x89);
    /// Existing restricted amount from a different pool.
    pub const OTHER_POOL: Self = Self(0x8F);
    /// Asset number zero or does not match.
    pub const ASSET_MISMATCH: Self = Self(0x93);
    /// Machine not locked (the transfer asked for a lock).
    pub const NOT_LOCKED: Self = Self(0x94);
    /// Transaction id not valid.
    pub const BAD_TRANSACTION_ID: Self = Self(0x95);
    /// Unexpected error.
    pub const UNEXPECTED: Self = Self(0x9F);
    /// Not compatible with the transfer in progress.
    pub const INCOMPATIBLE: Self = Self(0xC0);
    /// Unsupported transfer code.
    pub const UNSUPPORTED_CODE: Self = Self(0xC1);
    /// No transfer information available.
    pub const NO_INFO: Self = Self(0xFF);

    /// 000xxxxx: the transfer happened.
    pub fn is_success(self) -> bool {
        self.0 & 0xE0 == 0x00
    }

    /// 010xxxxx: the transfer is still in progress.
    pub fn is_pending(self) -> bool {
        self.0 & 0xE0 == 0x40
    }

    /// 100xxxxx: the transfer failed.
    pub fn is_failure(self) -> bool {
        self.0 & 0xE0 == 0x80
    }

    /// A short English description.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00 => "full transfer successful",
            0x01 => "partial transfer successful",
            0x40 => "transfer pending",
            0x80 => "cancelled by host",
            0x81 => "transaction id not unique",
            0x82 => "not a valid transfer function",
            0x83 => "not a valid amount or expiration",
            0x84 => "amount exceeds transfer limit",
            0x85 => "amount not a multiple of the denomination",
            0x87 => "machine unable to transfer now",
            0x88 => "machine not registered",
            0x89 => "registration key does not match",
            0x8F => "restricted amount from another pool",
            0x93 => "asset number zero or does not match",
            0x94 => "machine not locked",
            0x95 => "transaction id not valid",
            0x9F => "unexpected error",
            0xC0 => "not compatible with the transfer in progress",
            0xC1 => "unsupported transfer code",
            0xFF => "no transfer information available",
            _ => "transfer status",
        }
    }
}

/// Transfer codes of long poll 0x72.
pub mod transfer_code {
    /// Transfer request, full transfer only.
    pub const FULL_ONLY: u8 = 0x00;
    /// Transfer request, partial transfer allowed.
    pub const PARTIAL_ALLOWED: u8 = 0x01;
    /// Cancel transfer request.
    pub const CANCEL: u8 = 0x80;
    /// Interrogation request, status only.
    pub const INTERROGATE_STATUS_ONLY: u8 = 0xFE;
    /// Interrogation request.
    pub const INTERROGATE: u8 = 0xFF;
}

/// Transfer type: in-house amount from host to gaming machine (§8.3).
pub const TRANSFER_IN_HOUSE_TO_MACHINE: u8 = 0x00;
/// Transfer flag bit 6: accept the transfer only if the machine is locked (§8.4).
pub const FLAG_ONLY_IF_LOCKED: u8 = 0x40;

/// A transfer request (long poll 0x72 with transfer code 00 or 01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// [`transfer_code::FULL_ONLY`] or [`transfer_code::PARTIAL_ALLOWED`].
    pub code: u8,
    /// Transfer type, e.g. [`TRANSFER_IN_HOUSE_TO_MACHINE`].
    pub transfer_type: u8,
    /// Cashable amount, cents.
    pub cashable_cents: u64,
    /// Restricted promotional amount, cents (free play).
    pub restricted_cents: u64,
    /// Nonrestricted promotional amount, cents.
    pub nonrestricted_cents: u64,
    /// Transfer flags.
    pub flags: u8,
    /// The machine's asset number.
    pub asset_number: u32,
    /// The registration key (zero when registration is not required).
    pub registration_key: RegistrationKey,
    /// The transaction id.
    pub transaction_id: TransactionId,
    /// Restricted expiration, MMDDYYYY or 0000NNNN days, as its decimal digits (0 = none).
    pub expiration: u32,
    /// Restricted pool id.
    pub pool_id: u16,
    /// Transaction receipt data (Table 8.3f), usually empty.
    pub receipt_data: Vec<u8>,
    /// Lock timeout for "lock after transfer", hundredths of a second.
    pub lock_timeout: u16,
}

impl TransferRequest {
    /// A free-play transfer: `cents` of restricted promotional credit from the host to the
    /// machine, full transfer only, accepted only while the machine is locked.
    pub fn free_play(
        transaction_id: TransactionId,
        cents: u64,
        asset_number: u32,
        registration_key: RegistrationKey,
    ) -> TransferRequest {
        TransferRequest {
            code: transfer_code::FULL_ONLY,
            transfer_type: TRANSFER_IN_HOUSE_TO_MACHINE,
            cashable_cents: 0,
            restricted_cents: cents,
            nonrestricted_cents: 0,
            flags: FLAG_ONLY_IF_LOCKED,
            asset_number,
            registration_key,
            transaction_id,
            expiration: 0,
            pool_id: 0,
            receipt_data: Vec::new(),
            lock_timeout: 0,
        }
    }
}

/// Long poll 0x72 in its three forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferFunds {
    /// Start a transfer (transaction index 0).
    Request(Box<TransferRequest>),
    /// Cancel the pending transfer request.
    Cancel,
    /// Ask for the current or most recent transfer (`index` 0), a history buffer position
    /// (1-0x7F) or a relative history entry (0x81-0xFF).
    Interrogate { index: u8, status_only: bool },
    /// A transfer code this crate does not know; machines answer 0xC1.
    Unsupported(u8),
}

impl TransferFunds {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            TransferFunds::Request(r) => {
                out.extend([r.code, 0x00, r.transfer_type]);
                put_bcd(out, r.cashable_cents, 5)?;
                put_bcd(out, r.restricted_cents, 5)?;
                put_bcd(out, r.nonrestricted_cents, 5)?;
                out.push(r.flags);
                put_binary(out, u64::from(r.asset_number), 4);
                out.extend(r.registration_key.0);
                r.transaction_id.encode(out);
                put_bcd(out, u64::from(r.expiration), 4)?;
                put_binary(out, u64::from(r.pool_id), 2);
                out.push(u8::try_from(r.receipt_data.len()).map_err(|_| Error::Encode("receipt data too long"))?);
                out.extend_from_slice(&r.receipt_data);
                put_bcd(out, u64::from(r.lock_timeout), 2)?;
            }
            TransferFunds::Cancel => out.push(transfer_code::CANCEL),
            TransferFunds::Interrogate { index, status_only } => {
                let code = if *status_only { transfer_code::INTERROGATE_STATUS_ONLY } else { transfer_code::INTERROGATE };
                out.extend([code, *index]);
            }
            TransferFunds::Unsupported(code) => out.push(*code),
        }
        Ok(())
    }

    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<TransferFunds, FrameFault> {
        let code = f.u8()?;
        Ok(match code {
            transfer_code::FULL_ONLY | transfer_code::PARTIAL_ALLOWED => {
                let _index = f.u8()?;
                let request = TransferRequest {
                    code,
                    transfer_type: f.u8()?,
                    cashable_cents: f.bcd(5)?,
                    restricted_cents: f.bcd(5)?,
                    nonrestricted_cents: f.bcd(5)?,
                    flags: f.u8()?,
                    asset_number: f.binary(4)? as u32,
                    registration_key: RegistrationKey(f.array()?),
                    transaction_id: TransactionId::decode(f)?,
                    expiration: f.bcd(4)? as u32,
                    pool_id: f.binary(2)? as u16,
                    receipt_data: {
                        let len = usize::from(f.u8()?);
                        f.bytes(len)?.to_vec()
                    },
                    lock_timeout: f.bcd(2)? as u16,
                };
                TransferFunds::Request(Box::new(request))
            }
            transfer_code::CANCEL => TransferFunds::Cancel,
            transfer_code::INTERROGATE | transfer_code::INTERROGATE_STATUS_ONLY => TransferFunds::Interrogate {
                index: f.u8()?,
                status_only: code == transfer_code::INTERROGATE_STATUS_ONLY,
            },
            other => {
                f.rest();
                TransferFunds::Unsupported(other)
            }
        })
    }
}

/// One transfer as the machine reports it (the long form of the 0x72 response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub transfer_type: u8,
    pub cashable_cents: u64,
    pub restricted_cents: u64,
    pub nonrestricted_cents: u64,
    pub flags: u8,
    pub asset_number: u32,
    pub transaction_id: TransactionId,
    /// Date completed, MMDDYYYY as its decimal digits.
    pub date: u32,
    /// Time completed, HHMMSS as its decimal digits.
    pub time: u32,
    pub expiration: u32,
    pub pool_id: u16,
    /// Cumulative cashable, restricted and nonrestricted meters for the transfer type, cents;
    /// `None` until the transfer is complete.
    pub cumulative: [Option<u64>; 3],
}

/// The machine's answer to long poll 0x72.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferResponse {
    /// History buffer position (0 = the current or most recent transfer).
    pub buffer_position: u8,
    pub status: TransferStatus,
    /// Receipt status; absent in the two-byte short form.
    pub receipt_status: Option<u8>,
    /// The transfer; absent in the short forms.
    pub record: Option<TransferRecord>,
}

/// Receipt status: no receipt requested.
pub const NO_RECEIPT: u8 = 0xFF;

impl TransferResponse {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend([self.buffer_position, self.status.0]);
        if self.receipt_status.is_none() && self.record.is_none() {
            return Ok(());
        }
        out.push(self.receipt_status.unwrap_or(NO_RECEIPT));
        let Some(r) = &self.record else { return Ok(()) };
        out.push(r.transfer_type);
        put_bcd(out, r.cashable_cents, 5)?;
        put_bcd(out, r.restricted_cents, 5)?;
        put_bcd(out, r.nonrestricted_cents, 5)?;
        out.push(r.flags);
        put_binary(out, u64::from(r.asset_number), 4);
        r.transaction_id.encode(out);
        put_bcd(out, u64::from(r.date), 4)?;
        put_bcd(out, u64::from(r.time), 3)?;
        put_bcd(out, u64::from(r.expiration), 4)?;
        put_binary(out, u64::from(r.pool_id), 2);
        for meter in r.cumulative {
            match meter {
                Some(value) => {
                    out.push(5);
                    put_bcd(out, value, 5)?;
                }
                None => out.push(0),
            }
        }
        Ok(())
    }

    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<TransferResponse, FrameFault> {
        let buffer_position = f.u8()?;
        let status = TransferStatus(f.u8()?);
        if f.is_empty() {
            return Ok(TransferResponse { buffer_position, status, receipt_status: None, record: None });
        }
        let receipt_status = Some(f.u8()?);
        if f.is_empty() {
            return Ok(TransferResponse { buffer_position, status, receipt_status, record: None });
        }
        let mut record = TransferRecord {
            transfer_type: f.u8()?,
            cashable_cents: f.bcd(5)?,
            restricted_cents: f.bcd(5)?,
            nonrestricted_cents: f.bcd(5)?,
            flags: f.u8()?,
            asset_number: f.binary(4)? as u32,
            transaction_id: TransactionId::decode(f)?,
            date: f.bcd(4)? as u32,
            time: f.bcd(3)? as u32,
            expiration: f.bcd(4)? as u32,
            pool_id: f.binary(2)? as u16,
            cumulative: [None; 3],
        };
        for slot in record.cumulative.iter_mut() {
            let size = usize::from(f.u8()?);
            if size > 9 {
                return Err(FrameFault::Field("cumulative meter size"));
            }
            if size > 0 {
                *slot = Some(f.bcd(size)?);
            }
        }
        Ok(TransferResponse { buffer_position, status, receipt_status, record: Some(record) })
    }
}

/// Registration codes of long poll 0x73.
pub mod registration_code {
    /// Initialize registration.
    pub const INITIALIZE: u8 = 0x00;
    /// Register gaming machine.
    pub const REGISTER: u8 = 0x01;
    /// Request operator acknowledgement.
    pub const OPERATOR_ACK: u8 = 0x40;
    /// Unregister gaming machine.
    pub const UNREGISTER: u8 = 0x80;
    /// Read current registration.
    pub const READ: u8 = 0xFF;
}

/// Registration status of the 0x73 response.
pub mod registration_status {
    /// Registration ready (initialised, waiting for "register").
    pub const READY: u8 = 0x00;
    /// Registered.
    pub const REGISTERED: u8 = 0x01;
    /// Registration pending (operator acknowledgement).
    pub const PENDING: u8 = 0x40;
    /// Not registered.
    pub const NOT_REGISTERED: u8 = 0x80;
}

/// Long poll 0x73.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRequest {
    /// A [`registration_code`].
    pub code: u8,
    pub asset_number: u32,
    pub registration_key: RegistrationKey,
    /// Point of sale terminal id (0 = none).
    pub pos_id: u32,
}

impl RegistrationRequest {
    /// "Read current registration".
    pub fn read() -> RegistrationRequest {
        RegistrationRequest { code: registration_code::READ, asset_number: 0, registration_key: RegistrationKey::default(), pos_id: 0 }
    }

    fn is_short(code: u8) -> bool {
        matches!(code, registration_code::READ | registration_code::UNREGISTER)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        if !Self::is_short(self.code) {
            put_binary(out, u64::from(self.asset_number), 4);
            out.extend(self.registration_key.0);
            put_binary(out, u64::from(self.pos_id), 4);
        }
    }

    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<RegistrationRequest, FrameFault> {
        let code = f.u8()?;
        if Self::is_short(code) && f.is_empty() {
            return Ok(RegistrationRequest { code, ..RegistrationRequest::read() });
        }
        Ok(RegistrationRequest {
            code,
            asset_number: f.binary(4)? as u32,
            registration_key: RegistrationKey(f.array()?),
            pos_id: f.binary(4)? as u32,
        })
    }
}

/// The machine's answer to long poll 0x73.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationResponse {
    /// A [`registration_status`].
    pub status: u8,
    pub asset_number: u32,
    pub registration_key: RegistrationKey,
    pub pos_id: u32,
}

impl RegistrationResponse {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.status);
        put_binary(out, u64::from(self.asset_number), 4);
        out.extend(self.registration_key.0);
        put_binary(out, u64::from(self.pos_id), 4);
    }

    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<RegistrationResponse, FrameFault> {
        Ok(RegistrationResponse {
            status: f.u8()?,
            asset_number: f.binary(4)? as u32,
            registration_key: RegistrationKey(f.array()?),
            pos_id: f.binary(4)? as u32,
        })
    }
}

/// Lock codes of long poll 0x74.
pub mod lock_code {
    /// Request lock.
    pub const REQUEST: u8 = 0x00;
    /// Cancel lock or pending lock request.
    pub const CANCEL: u8 = 0x80;
    /// Interrogate current status only.
    pub const INTERROGATE: u8 = 0xFF;
}

/// Game lock status of the 0x74 response.
pub mod lock_status {
    /// Game locked.
    pub const LOCKED: u8 = 0x00;
    /// Game lock pending.
    pub const PENDING: u8 = 0x40;
    /// Game not locked.
    pub const NOT_LOCKED: u8 = 0xFF;
}

/// Transfer condition bit 0 of 0x74 and available-transfers bit 0: transfer to machine OK.
pub const CONDITION_TO_MACHINE: u8 = 0x01;

/// Long poll 0x74.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRequest {
    /// A [`lock_code`].
    pub code: u8,
    /// Transfer conditions to lock for (bit 0: transfer to machine).
    pub condition: u8,
    /// Lock expiration, hundredths of a second (0 to 9999).
    pub timeout_hundredths: u16,
}

impl LockRequest {
    /// Interrogate the AFT status without locking.
    pub fn interrogate() -> LockRequest {
        LockRequest { code: lock_code::INTERROGATE, condition: 0, timeout_hundredths: 0 }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend([self.code, self.condition]);
        put_bcd(out, u64::from(self.timeout_hundredths), 2)
    }

    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<LockRequest, FrameFault> {
        Ok(LockRequest { code: f.u8()?, condition: f.u8()?, timeout_hundredths: f.bcd(2)? as u16 })
    }
}

/// The machine's AFT status (answer to long poll 0x74).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockStatus {
    pub asset_number: u32,
    /// A [`lock_status`].
    pub lock_status: u8,
    /// Available transfers bits (bit 0: to machine OK).
    pub available_transfers: u8,
    pub host_cashout_status: u8,
    /// AFT status bits (bit 3: registered, bit 7: any AFT enabled).
    pub aft_status: u8,
    /// Highest history buffer index.
    pub max_buffer_index: u8,
    pub cashable_cents: u64,
    pub restricted_cents: u64,
    pub nonrestricted_cents: u64,
    /// Largest amount that may currently be transferred to the credit meter.
    pub transfer_limit_cents: u64,
    pub restricted_expiration: u32,
    pub restricted_pool_id: u16,
}

impl LockStatus {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        put_binary(out, u64::from(self.asset_number), 4);
        out.extend([
            self.lock_status,
            self.available_transfers,
            self.host_cashout_status,
            self.aft_status,
            self.max_buffer_index,
        ]);
        for cents in [self.cashable_cents, self.restricted_cents, self.nonrestricted_cents, self.transfer_limit_cents] {
            put_bcd(out, cents, 5)?;
        }
        put_bcd(out, u64::from(self.restricted_expiration), 4)?;
        put_binary(out, u64::from(self.restricted_pool_id), 2);
        Ok(())
    }

    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<LockStatus, FrameFault> {
        Ok(LockStatus {
            asset_number: f.binary(4)? as u32,
            lock_status: f.u8()?,
            available_transfers: f.u8()?,
            host_cashout_status: f.u8()?,
            aft_status: f.u8()?,
            max_buffer_index: f.u8()?,
            cashable_cents: f.bcd(5)?,
            restricted_cents: f.bcd(5)?,
            nonrestricted_cents: f.bcd(5)?,
            transfer_limit_cents: f.bcd(5)?,
            restricted_expiration: f.bcd(4)? as u32,
            restricted_pool_id: f.binary(2)? as u16,
        })
    }
}

/// How the host does AFT: its registration key and point-of-sale id, and how long it waits.
#[derive(Debug, Clone)]
pub struct AftSettings {
    /// The key the host registers machines with (§8.1); a secret, never logged.
    pub registration_key: RegistrationKey,
    /// Point of sale id sent at registration (0 = none).
    pub pos_id: u32,
    /// How long a machine stays locked for a transfer (at most 99.99 s, §8.2).
    pub lock_timeout: std::time::Duration,
    /// How long to wait for a lock or a pending transfer before giving up.
    pub deadline: std::time::Duration,
}

impl Default for AftSettings {
    fn default() -> Self {
        AftSettings {
            registration_key: RegistrationKey::default(),
            pos_id: 0,
            lock_timeout: std::time::Duration::from_secs(10),
            deadline: std::time::Duration::from_secs(15),
        }
    }
}

/// What became of a free-play transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AftOutcome {
    /// The transaction id the caller gave.
    pub transaction_id: TransactionId,
    /// The machine's final status for it.
    pub status: TransferStatus,
    /// The restricted amount the machine reports as transferred (zero unless successful).
    pub amount: Money,
    /// True when the machine already knew this transaction id: nothing was sent this time.
    pub replayed: bool,
}

impl AftOutcome {
    /// Whether the credit reached the machine.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}
