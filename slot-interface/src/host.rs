//! The async API the terminal agent uses: [`SasHost`] owns one serial line and runs the sans-IO
//! [`HostCore`] on a tokio task; [`MachineLink`] is a cheap handle to one machine on it; typed
//! [`Event`]s arrive on a channel.
//!
//! Key decision: the task is the only owner of the port and the core, so there is no locking;
//! handles talk to it by message and await a reply. The free-play procedure (registration,
//! lock, transfer, interrogation) is plain async code over those requests, and it asks the
//! machine about the transaction id before sending anything, so a retry after a crash or a lost
//! answer reports the first transfer instead of making a second one.
//!
//! What it does not do: no retries of its own beyond the link layer's, no persistence; the
//! caller owns transaction ids and decides what to do with a failed transfer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use club_rules::Money;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::aft::{
    lock_code, lock_status, registration_code, registration_status, AftOutcome, AftSettings, LockRequest, LockStatus,
    RegistrationRequest, TransactionId, TransferFunds, TransferRequest, TransferResponse, TransferStatus,
    CONDITION_TO_MACHINE,
};
use crate::codec::{LongPoll, MachineInfo, Response, TaxStatus};
use crate::frame::{Address, Denomination, MeterCode, MeterUnit};
use crate::poller::RequestId;
use crate::session::{HostConfig, HostCore, Output};
use crate::transport::SasPort;
use crate::Error;

pub use crate::session::{Door, Event};

enum Command {
    Request { address: Address, poll: LongPoll, reply: oneshot::Sender<Result<Response, Error>> },
    Info { address: Address, reply: oneshot::Sender<Option<(MachineInfo, Denomination)>> },
    RomSignature { address: Address, reply: oneshot::Sender<u16> },
}

/// One SAS line with its machines. Dropping the host and every [`MachineLink`] stops the task.
pub struct SasHost {
    commands: mpsc::UnboundedSender<Command>,
    aft: AftSettings,
    addresses: Vec<Address>,
    task: JoinHandle<Result<(), Error>>,
}

impl SasHost {
    /// Starts polling the configured machines on `port`. Events arrive on the returned channel.
    pub fn spawn(port: SasPort, config: HostConfig) -> (SasHost, mpsc::UnboundedReceiver<Event>) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let aft = config.aft.clone();
        let addresses = config.addresses.clone();
        let core = HostCore::new(config, Instant::now());
        let task = tokio::spawn(run(port, core, command_rx, event_tx));
        (SasHost { commands, aft, addresses, task }, events)
    }

    /// A handle to the machine at `address` (one of the configured ones).
    pub fn machine(&self, address: Address) -> Result<MachineLink, Error> {
        if !self.addresses.contains(&address) {
            return Err(Error::UnknownMachine(address));
        }
        Ok(MachineLink { address, commands: self.commands.clone(), aft: self.aft.clone() })
    }

    /// Stops the task and returns how it ended (an IO error if the port failed).
    pub async fn stop(self) -> Result<(), Error> {
        self.task.abort();
        match self.task.await {
            Ok(result) => result,
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(Error::Io(std::io::Error::other(e))),
        }
    }
}

async fn run(
    mut port: SasPort,
    mut core: HostCore,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) -> Result<(), Error> {
    let mut replies: HashMap<RequestId, oneshot::Sender<Result<Response, Error>>> = HashMap::new();
    let mut signatures: HashMap<Address, Vec<oneshot::Sender<u16>>> = HashMap::new();
    let mut rx = Vec::with_capacity(256);
    loop {
        while let Some(bytes) = core.poll_transmit(Instant::now()) {
            tracing::trace!(bytes = %loggable(&bytes), "sas tx");
            port.send_message(&bytes).await?;
        }
        while let Some(output) = core.poll_output() {
            match output {
                Output::Event(event) => {
                    tracing::debug!(?event, "sas event");
                    let _ = events.send(event);
                }
                Output::Reply { id, result } => {
                    if let Some(reply) = replies.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                Output::RomSignature { address, signature } => {
                    for waiter in signatures.remove(&address).unwrap_or_default() {
                        let _ = waiter.send(signature);
                    }
                }
            }
        }
        let sleep = match core.poll_timeout() {
            Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)),
            None => tokio::time::sleep(Duration::from_secs(3600)),
        };
        tokio::select! {
            received = port.recv_bytes(&mut rx) => {
                received?;
                tracing::trace!(bytes = %loggable(&rx), "sas rx");
                core.handle_input(&rx, Instant::now());
                rx.clear();
            }
            () = sleep => core.handle_timeout(Instant::now()),
            command = commands.recv() => match command {
                None => return Ok(()),
                Some(Command::Request { address, poll, reply }) => match core.submit(address, poll) {
                    Ok(id) => { replies.insert(id, reply); }
                    Err(e) => { let _ = reply.send(Err(e)); }
                },
                Some(Command::Info { address, reply }) => { let _ = reply.send(core.machine_info(address)); }
                Some(Command::RomSignature { address, reply }) => signatures.entry(address).or_default().push(reply),
            },
        }
    }
}

/// One meter value, raw and, where it is an amount, in money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterReading {
    pub code: MeterCode,
    /// The value as the machine reports it.
    pub raw: u64,
    pub unit: MeterUnit,
    /// Credits converted through the accounting denomination, or cents; `None` for counts.
    pub money: Option<Money>,
}

/// Meters read at one moment (one or more 0x2F polls).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeterSnapshot {
    pub readings: Vec<MeterReading>,
}

impl MeterSnapshot {
    /// The reading for a meter code, if it was asked for.
    pub fn get(&self, code: MeterCode) -> Option<&MeterReading> {
        self.readings.iter().find(|r| r.code == code)
    }
}

/// A handle to one machine. Clone it freely.
#[derive(Clone)]
pub struct MachineLink {
    address: Address,
    commands: mpsc::UnboundedSender<Command>,
    aft: AftSettings,
}

impl MachineLink {
    /// The machine's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Sends any long poll and returns the machine's answer (ACK, data, NACK or busy).
    pub async fn request(&self, poll: LongPoll) -> Result<Response, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Request { address: self.address, poll, reply }).map_err(|_| Error::HostStopped)?;
        answer.await.map_err(|_| Error::HostStopped)?
    }

    /// Identity and accounting denomination (from the link-up reading, or asked now).
    pub async fn machine_info(&self) -> Result<(MachineInfo, Denomination), Error> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Info { address: self.address, reply }).map_err(|_| Error::HostStopped)?;
        if let Some(known) = answer.await.map_err(|_| Error::HostStopped)? {
            return Ok(known);
        }
        match self.request(LongPoll::Read(crate::codec::ReadPoll::MachineInfo)).await? {
            Response::MachineInfo(info) => Ok((info, info.accounting_denomination()?)),
            other => Err(self.refusal(0x1F, other)),
        }
    }

    /// Reads meters of Table C-7 (0x2F, ten per poll), with money for the amount meters.
    pub async fn meters(&self, codes: &[MeterCode]) -> Result<MeterSnapshot, Error> {
        let (_, denomination) = self.machine_info().await?;
        let mut snapshot = MeterSnapshot::default();
        for chunk in codes.chunks(10) {
            let answer = self.request(LongPoll::SelectedMeters { game: 0, meters: chunk.to_vec() }).await?;
            let Response::SelectedMeters { meters, .. } = answer else { return Err(self.refusal(0x2F, answer)) };
            for (code, raw) in meters {
                let unit = code.layout().map(|(_, unit)| unit).unwrap_or(MeterUnit::Count);
                let money = match unit {
                    MeterUnit::Credits => Some(denomination.money(raw)?),
                    MeterUnit::Cents => Some(Money::from_cents(i64::try_from(raw).map_err(|_| Error::AmountOutOfRange(raw))?)),
                    MeterUnit::Count => None,
                };
                snapshot.readings.push(MeterReading { code, raw, unit, money });
            }
        }
        Ok(snapshot)
    }

    /// Locks out play (0x01 shutdown, §7.4.1).
    pub async fn lock(&self) -> Result<(), Error> {
        self.acked(LongPoll::Shutdown).await
    }

    /// Enables play again (0x02 startup).
    pub async fn unlock(&self) -> Result<(), Error> {
        self.acked(LongPoll::Startup).await
    }

    /// Awards a legacy bonus (0x8A, §13.3), a whole number of credits.
    pub async fn legacy_bonus(&self, amount: Money) -> Result<(), Error> {
        let (_, denomination) = self.machine_info().await?;
        let cents = positive_cents(amount)?;
        let credits = denomination.credits_for_cents(cents).ok_or_else(|| Error::BadAmount(amount.to_string()))?;
        let credits = u32::try_from(credits).ok().filter(|c| *c <= 99_999_999).ok_or_else(|| Error::BadAmount(amount.to_string()))?;
        self.acked(LongPoll::LegacyBonus { credits, tax: TaxStatus::Deductible }).await
    }

    /// Asks for the ROM signature with `seed` (0x21) and waits up to `wait` for it (§6).
    pub async fn rom_signature(&self, seed: u16, wait: Duration) -> Result<u16, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::RomSignature { address: self.address, reply }).map_err(|_| Error::HostStopped)?;
        self.acked(LongPoll::RomSignature { seed }).await?;
        tokio::time::timeout(wait, answer)
            .await
            .map_err(|_| Error::NoResponse(self.address))?
            .map_err(|_| Error::HostStopped)
    }

    /// The machine's AFT status (0x74 interrogation).
    pub async fn aft_status(&self) -> Result<LockStatus, Error> {
        match self.request(LongPoll::AftLock(LockRequest::interrogate())).await? {
            Response::AftStatus(status) => Ok(status),
            other => Err(self.refusal(0x74, other)),
        }
    }

    /// Moves `amount` of free play (restricted promotional credit) to the machine by AFT:
    /// interrogate, register if needed, lock, transfer, interrogate until final (§8).
    ///
    /// Idempotent by transaction id: when the machine already completed (or is completing) a
    /// transfer with this id, that result comes back with `replayed` set and nothing is sent.
    /// The machine's current transfer and the three most recent history entries are searched.
    pub async fn free_play(&self, transaction_id: &TransactionId, amount: Money) -> Result<AftOutcome, Error> {
        let cents = positive_cents(amount)?;
        if cents > 9_999_999_999 {
            return Err(Error::BadAmount(amount.to_string()));
        }
        if let Some(found) = self.find_transfer(transaction_id).await? {
            let found = self.settle(transaction_id, found).await?;
            if !found.status.is_failure() {
                return Ok(self.outcome(transaction_id, &found, true));
            }
        }
        let asset_number = self.ensure_registered().await?;
        self.lock_for_transfer().await?;
        let request = TransferRequest::free_play(transaction_id.clone(), cents, asset_number, self.aft.registration_key);
        let answer = match self.request(LongPoll::AftTransfer(TransferFunds::Request(Box::new(request)))).await {
            Ok(Response::AftTransfer(answer)) => answer,
            Ok(other) => {
                self.release_lock().await;
                return Err(self.refusal(0x72, other));
            }
            // The answer was lost, not necessarily the transfer: find out what happened.
            Err(Error::NoResponse(_)) => self.find_transfer(transaction_id).await?.ok_or(Error::NoResponse(self.address))?,
            Err(e) => return Err(e),
        };
        let settled = self.settle(transaction_id, answer).await?;
        if !settled.status.is_success() {
            self.release_lock().await;
        }
        tracing::info!(address = %self.address, transaction = %transaction_id, status = settled.status.name(), "free play transfer");
        Ok(self.outcome(transaction_id, &settled, false))
    }

    fn outcome(&self, transaction_id: &TransactionId, answer: &TransferResponse, replayed: bool) -> AftOutcome {
        let cents = match (&answer.record, answer.status.is_success()) {
            (Some(record), true) => record.restricted_cents,
            _ => 0,
        };
        AftOutcome {
            transaction_id: transaction_id.clone(),
            status: answer.status,
            amount: Money::from_cents(i64::try_from(cents).unwrap_or(i64::MAX)),
            replayed,
        }
    }

    /// The machine's record of this transaction id: the current transfer or a recent one.
    async fn find_transfer(&self, transaction_id: &TransactionId) -> Result<Option<TransferResponse>, Error> {
        for index in [0x00, 0x81, 0x82, 0x83] {
            let answer = self.interrogate(index).await?;
            if answer.status == TransferStatus::NO_INFO {
                break;
            }
            if answer.record.as_ref().is_some_and(|r| &r.transaction_id == transaction_id) {
                return Ok(Some(answer));
            }
        }
        Ok(None)
    }

    async fn interrogate(&self, index: u8) -> Result<TransferResponse, Error> {
        match self.request(LongPoll::AftTransfer(TransferFunds::Interrogate { index, status_only: false })).await? {
            Response::AftTransfer(answer) => Ok(answer),
            other => Err(self.refusal(0x72, other)),
        }
    }

    /// Interrogates until the transfer is no longer pending.
    async fn settle(&self, transaction_id: &TransactionId, mut answer: TransferResponse) -> Result<TransferResponse, Error> {
        let deadline = tokio::time::Instant::now() + self.aft.deadline;
        while answer.status.is_pending() {
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::AftPending(self.address));
            }
            let current = self.interrogate(0).await?;
            if current.record.as_ref().is_some_and(|r| &r.transaction_id == transaction_id) {
                answer = current;
            }
        }
        Ok(answer)
    }

    /// The machine's asset number, registering it with our key first if needed (§8.1).
    async fn ensure_registered(&self) -> Result<u32, Error> {
        let read = self.register(RegistrationRequest::read()).await?;
        if read.status == registration_status::REGISTERED && read.registration_key == self.aft.registration_key {
            return Ok(read.asset_number);
        }
        if read.asset_number == 0 {
            return Err(Error::AftNotRegistered(self.address));
        }
        let with = |code| RegistrationRequest {
            code,
            asset_number: read.asset_number,
            registration_key: self.aft.registration_key,
            pos_id: self.aft.pos_id,
        };
        self.register(with(registration_code::INITIALIZE)).await?;
        let done = self.register(with(registration_code::REGISTER)).await?;
        if done.status != registration_status::REGISTERED {
            return Err(Error::AftNotRegistered(self.address));
        }
        tracing::info!(address = %self.address, asset = done.asset_number, "registered for AFT");
        Ok(done.asset_number)
    }

    async fn register(&self, request: RegistrationRequest) -> Result<crate::aft::RegistrationResponse, Error> {
        match self.request(LongPoll::AftRegister(request)).await? {
            Response::AftRegistration(r) => Ok(r),
            other => Err(self.refusal(0x73, other)),
        }
    }

    async fn lock_for_transfer(&self) -> Result<(), Error> {
        let hundredths = u16::try_from(self.aft.lock_timeout.as_millis() / 10).unwrap_or(9_999).min(9_999);
        let request = LockRequest { code: lock_code::REQUEST, condition: CONDITION_TO_MACHINE, timeout_hundredths: hundredths };
        let mut status = match self.request(LongPoll::AftLock(request)).await? {
            Response::AftStatus(s) => s,
            other => return Err(self.refusal(0x74, other)),
        };
        let deadline = tokio::time::Instant::now() + self.aft.deadline;
        while status.lock_status == lock_status::PENDING && tokio::time::Instant::now() < deadline {
            status = self.aft_status().await?;
        }
        if status.lock_status != lock_status::LOCKED {
            self.release_lock().await;
            return Err(Error::AftLockFailed { address: self.address, status: status.lock_status });
        }
        Ok(())
    }

    /// Cancels a lock or lock request; a failure here changes nothing for the caller.
    async fn release_lock(&self) {
        let cancel = LockRequest { code: lock_code::CANCEL, condition: 0, timeout_hundredths: 0 };
        if let Err(e) = self.request(LongPoll::AftLock(cancel)).await {
            tracing::warn!(address = %self.address, error = %e, "could not cancel the AFT lock");
        }
    }

    async fn acked(&self, poll: LongPoll) -> Result<(), Error> {
        let command = poll.command();
        match self.request(poll).await? {
            Response::Ack => Ok(()),
            other => Err(self.refusal(command, other)),
        }
    }

    /// The error for an answer that is not the one asked for.
    fn refusal(&self, command: u8, answer: Response) -> Error {
        match answer {
            Response::Nack => Error::Nacked { address: self.address, command },
            Response::Busy => Error::Busy { address: self.address, command },
            _ => Error::UnexpectedResponse { address: self.address, command },
        }
    }
}

/// Bytes for a trace log. AFT registration and transfer messages carry the registration key
/// (a secret), so only their address, command and length are shown.
fn loggable(bytes: &[u8]) -> String {
    match bytes {
        [address, command @ (0x72 | 0x73), ..] => {
            format!("{address:02X} {command:02X} .. ({} bytes, AFT, withheld)", bytes.len())
        }
        _ => bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" "),
    }
}

fn positive_cents(amount: Money) -> Result<u64, Error> {
    let exact = Money::from_decimal(amount.as_decimal()).map_err(|_| Error::BadAmount(amount.to_string()))?;
    u64::try_from(exact.cents()).ok().filter(|c| *c > 0).ok_or_else(|| Error::BadAmount(amount.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aft_messages_are_not_logged_with_their_key() {
        let mut register = vec![0x01, 0x73, 0x1D, 0x01];
        register.extend([0xAB; 28]);
        assert_eq!(loggable(&register), "01 73 .. (32 bytes, AFT, withheld)");
        assert_eq!(loggable(&[0x01, 0x1A]), "01 1A");
    }
}
