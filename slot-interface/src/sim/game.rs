//! Game outcomes for the simulator: one paytable per machine type, scaled to the configured
//! return to player.
//!
//! Key decision: integer arithmetic only. A paytable lists (multiplier, weight per million) at
//! its base return; the weights are scaled by `rtp / base` so the expected return is the
//! configured one, and a uniform draw in 0..1 000 000 picks the outcome. No floats near money.
//! What it does not do: no reels, cards or wheel; only the win multiple matters to SAS.

use club_rules::MachineType;
use rand::Rng;

/// Parts per million.
const MILLION: u64 = 1_000_000;

/// (win multiple of the bet, chance per million) at the table's base return.
type Table = &'static [(u64, u64)];

/// A slot: frequent small wins, rare big ones (base return 100 %).
const SLOT: Table = &[(2, 200_000), (5, 60_000), (20, 7_500), (100, 1_500)];
/// Electronic roulette, even-money bets (base return 100 %; 97.30 % is a single-zero wheel).
const ROULETTE: Table = &[(2, 500_000)];
/// Video poker, jacks or better 9/6 hand frequencies (base return about 99.5 %).
const VIDEO_POKER: Table = &[
    (1, 214_585),
    (2, 129_279),
    (3, 74_449),
    (4, 11_229),
    (6, 11_013),
    (9, 11_512),
    (25, 2_363),
    (50, 109),
    (800, 25),
];

/// The outcome table of one machine.
#[derive(Debug, Clone)]
pub struct Paytable {
    /// (multiple, cumulative chance per million), ascending.
    cumulative: Vec<(u64, u64)>,
}

impl Paytable {
    /// The table for `game` scaled to `rtp_bp` basis points (e.g. 9500 = 95.00 %). Returns
    /// `None` when the return cannot be reached with this table's win frequencies.
    pub fn new(game: MachineType, rtp_bp: u32) -> Option<Paytable> {
        let table = match game {
            MachineType::Slot => SLOT,
            MachineType::ElectronicRoulette => ROULETTE,
            MachineType::VideoPoker => VIDEO_POKER,
        };
        // Base return in basis points: sum of multiple * chance, chance in millionths.
        let base_bp: u64 = table.iter().map(|(m, w)| m * w).sum::<u64>() / 100;
        let mut total = 0;
        let mut cumulative = Vec::with_capacity(table.len());
        for &(multiple, weight) in table {
            total += weight * u64::from(rtp_bp) / base_bp;
            cumulative.push((multiple, total));
        }
        (rtp_bp > 0 && total <= MILLION).then_some(Paytable { cumulative })
    }

    /// The win for one game of `bet` credits.
    pub fn play(&self, bet: u64, rng: &mut impl Rng) -> u64 {
        let draw = rng.random_range(0..MILLION);
        self.cumulative.iter().find(|(_, upto)| draw < *upto).map_or(0, |(multiple, _)| multiple * bet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[track_caller]
    fn check_return(game: MachineType, rtp_bp: u32) {
        let table = Paytable::new(game, rtp_bp).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let games = 400_000u64;
        let won: u64 = (0..games).map(|_| table.play(10, &mut rng)).sum();
        let measured_bp = won * 10_000 / (games * 10);
        let diff = measured_bp.abs_diff(u64::from(rtp_bp));
        assert!(diff <= 200, "{game:?} at {rtp_bp} bp returned {measured_bp} bp");
    }

    #[test]
    fn slot_returns_about_its_configured_rtp() {
        check_return(MachineType::Slot, 9_200);
    }

    #[test]
    fn roulette_at_9730_is_a_single_zero_wheel() {
        check_return(MachineType::ElectronicRoulette, 9_730);
    }

    #[test]
    fn video_poker_returns_about_its_configured_rtp() {
        check_return(MachineType::VideoPoker, 9_500);
    }

    #[test]
    fn an_rtp_above_what_the_table_can_give_is_refused() {
        assert!(Paytable::new(MachineType::ElectronicRoulette, 25_000).is_none());
        assert!(Paytable::new(MachineType::Slot, 0).is_none());
    }
}
