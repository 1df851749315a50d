//! Identifying a card from its ATR and a few APDUs, independent of PC/SC.
//!
//! Key decision: the ATR decides. A contactless card behind a PC/SC reader shows the pseudo-ATR of
//! PC/SC part 3 (`3B 8n 80 01 …`) and is identified by its UID, which the reader itself returns for
//! the GET DATA pseudo-APDU `FF CA 00 00 00`. Any other ATR is a contact card, identified by the
//! APDUs configured for the card scheme (for example SELECT a file, then READ BINARY); the data of
//! the last answer is the identifier. Every answer is checked: at least the two status bytes, and
//! `90 00`, or the card is unreadable (never half an id).
//!
//! Not here: talking to pcscd (`pcsc_reader` passes a transmit function in).

use crate::Error;
use crate::card::CardId;

/// GET DATA for the UID (PC/SC part 3, section 3.2.2.1.3): CLA FF, INS CA, P1 00, P2 00, Le 00.
pub const GET_UID: [u8; 5] = [0xFF, 0xCA, 0x00, 0x00, 0x00];

/// Status word of a successful command (ISO 7816-4, 5.1.3).
const SW_OK: [u8; 2] = [0x90, 0x00];

/// How to identify a card inserted into a PC/SC reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Identification {
    /// Contactless cards by UID; contact cards are reported unreadable.
    #[default]
    ContactlessOnly,
    /// Contactless cards by UID; contact cards by sending these APDUs in order, the data of the
    /// last answer being the identifier.
    ContactApdus(Vec<Vec<u8>>),
}

impl Identification {
    /// Contactless by UID, contact cards by the given APDUs; each must be a well-formed command
    /// (4 to 261 bytes).
    pub fn contact_apdus(apdus: Vec<Vec<u8>>) -> Result<Self, Error> {
        if apdus.is_empty() {
            return Err(Error::Config("contact card identification needs at least one APDU".into()));
        }
        if let Some(bad) = apdus.iter().position(|a| !(4..=261).contains(&a.len())) {
            return Err(Error::Config(format!("APDU {bad} is not 4 to 261 bytes long")));
        }
        Ok(Self::ContactApdus(apdus))
    }

    /// Identifies the card with this `atr`, sending APDUs through `transmit` (which returns the
    /// raw response: data and status bytes).
    pub fn identify(
        &self,
        atr: &[u8],
        mut transmit: impl FnMut(&[u8]) -> Result<Vec<u8>, Error>,
    ) -> Result<CardId, Error> {
        if is_contactless(atr) {
            let answer = transmit(&GET_UID)?;
            return CardId::from_uid(response_data(&answer)?);
        }
        let Identification::ContactApdus(apdus) = self else {
            return Err(Error::UnidentifiedCard("contact card, and no APDUs configured to identify one"));
        };
        let mut last = Vec::new();
        for apdu in apdus {
            last = transmit(apdu)?;
            response_data(&last)?;
        }
        CardId::from_bytes(response_data(&last)?)
    }
}

/// Whether `atr` is the PC/SC part 3 pseudo-ATR of a contactless card: TS `3B`, T0 `8n`, TD1 `80`,
/// TD2 `01` (section 3.1.3.2.3).
pub fn is_contactless(atr: &[u8]) -> bool {
    matches!(atr, [0x3B, t0, 0x80, 0x01, ..] if t0 & 0xF0 == 0x80)
}

/// The data of a response APDU whose status is `90 00`.
pub fn response_data(response: &[u8]) -> Result<&[u8], Error> {
    let Some((data, sw)) = response.split_last_chunk::<2>() else {
        return Err(Error::ShortResponse(response.len()));
    };
    if *sw != SW_OK {
        return Err(Error::CardStatus { sw1: sw[0], sw2: sw[1] });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ATR of a contactless storage card (MIFARE Classic 1K) as a PC/SC reader presents it.
    const CONTACTLESS_ATR: [u8; 20] =
        [0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x6A];
    /// A contact card's ATR (T=1).
    const CONTACT_ATR: [u8; 11] = [0x3B, 0xDB, 0x96, 0x00, 0x80, 0xB1, 0xFE, 0x45, 0x1F, 0x83, 0x00];

    /// A card that answers from a fixed list of (command, response) pairs, `6D 00` otherwise.
    fn card(answers: &[(&[u8], &[u8])]) -> impl FnMut(&[u8]) -> Result<Vec<u8>, Error> {
        move |apdu| {
            Ok(answers.iter().find(|(c, _)| *c == apdu).map_or(vec![0x6D, 0x00], |(_, r)| r.to_vec()))
        }
    }

    #[test]
    fn contactless_card_is_identified_by_its_uid() {
        let id = Identification::default()
            .identify(&CONTACTLESS_ATR, card(&[(&GET_UID, &[0x04, 0xA1, 0xB2, 0xC3, 0x90, 0x00])]))
            .unwrap();
        assert_eq!(id.expose(), "04A1B2C3");
    }

    #[test]
    fn uid_with_an_error_status_is_unreadable() {
        let err = Identification::default()
            .identify(&CONTACTLESS_ATR, card(&[(&GET_UID, &[0x04, 0xA1, 0xB2, 0xC3, 0x6A, 0x81])]))
            .unwrap_err();
        assert!(matches!(err, Error::CardStatus { sw1: 0x6A, sw2: 0x81 }), "{err}");
    }

    #[test]
    fn an_empty_or_one_byte_answer_is_refused() {
        for answer in [&[][..], &[0x90][..]] {
            let err = Identification::default().identify(&CONTACTLESS_ATR, card(&[(&GET_UID, answer)])).unwrap_err();
            assert!(matches!(err, Error::ShortResponse(_)), "{answer:?}: {err}");
        }
    }

    #[test]
    fn a_uid_of_two_bytes_is_refused() {
        let err = Identification::default()
            .identify(&CONTACTLESS_ATR, card(&[(&GET_UID, &[0x04, 0xA1, 0x90, 0x00])]))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCardId(_)), "{err}");
    }

    #[test]
    fn contact_card_without_configuration_is_unreadable() {
        let err = Identification::default().identify(&CONTACT_ATR, card(&[])).unwrap_err();
        assert!(matches!(err, Error::UnidentifiedCard(_)), "{err}");
    }

    const SELECT: [u8; 7] = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x2F, 0x02];
    const READ: [u8; 5] = [0x00, 0xB0, 0x00, 0x00, 0x08];

    #[test]
    fn contact_card_is_identified_by_the_configured_apdus() {
        let how = Identification::contact_apdus(vec![SELECT.to_vec(), READ.to_vec()]).unwrap();
        let id = how
            .identify(
                &CONTACT_ATR,
                card(&[(&SELECT, &[0x90, 0x00]), (&READ, &[0x60, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x90, 0x00])]),
            )
            .unwrap();
        assert_eq!(id.expose(), "6012345678901234");
    }

    #[test]
    fn contact_card_failing_an_intermediate_apdu_is_unreadable() {
        let how = Identification::contact_apdus(vec![SELECT.to_vec(), READ.to_vec()]).unwrap();
        let err = how
            .identify(&CONTACT_ATR, card(&[(&SELECT, &[0x6A, 0x82]), (&READ, &[0x60, 0x12, 0x34, 0x56, 0x90, 0x00])]))
            .unwrap_err();
        assert!(matches!(err, Error::CardStatus { sw1: 0x6A, sw2: 0x82 }), "{err}");
    }

    #[test]
    fn malformed_contact_apdus_are_refused_at_configuration() {
        assert!(Identification::contact_apdus(vec![]).is_err());
        assert!(Identification::contact_apdus(vec![vec![0x00, 0xA4, 0x02]]).is_err());
        assert!(Identification::contact_apdus(vec![vec![0; 262]]).is_err());
    }

    #[test]
    fn atr_classification() {
        assert!(is_contactless(&CONTACTLESS_ATR));
        // ISO 14443-4 card (no RID in the historical bytes) is contactless too
        assert!(is_contactless(&[0x3B, 0x81, 0x80, 0x01, 0x80, 0x80]));
        assert!(!is_contactless(&CONTACT_ATR));
        assert!(!is_contactless(&[0x3B]));
        assert!(!is_contactless(&[]));
    }
}
