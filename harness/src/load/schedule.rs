//! Send times of an open loop: constant gaps or a Poisson process, seeded.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Arrival;

/// Scheduled send offsets (seconds from the start), one after another.
pub struct Schedule {
    rate: f64,
    arrival: Arrival,
    rng: ChaCha8Rng,
    next: f64,
}

impl Schedule {
    /// Sends at `rate` per second, spaced by `arrival`; `seed` drives Poisson gaps.
    pub fn new(rate: f64, arrival: Arrival, seed: u64) -> Schedule {
        Schedule {
            rate,
            arrival,
            rng: ChaCha8Rng::seed_from_u64(seed),
            next: 0.0,
        }
    }

    /// The mean time between sends.
    pub fn mean_gap(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / self.rate)
    }

    /// Restarts the offsets at zero (a new window), keeping the random stream.
    pub fn restart(&mut self) {
        self.next = 0.0;
    }

    /// The next send offset, seconds. The first send is at a gap, not at zero, so a
    /// window of `d` seconds holds about `rate * d` sends.
    pub fn next_offset(&mut self) -> f64 {
        self.next += self.gap();
        self.next
    }

    fn gap(&mut self) -> f64 {
        match self.arrival {
            Arrival::Constant => 1.0 / self.rate,
            Arrival::Poisson => {
                // Inverse transform of the exponential distribution; 1 - u is in (0, 1].
                let u: f64 = self.rng.random();
                -(1.0 - u).ln() / self.rate
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(arrival: Arrival, rate: f64, n: usize) -> Vec<f64> {
        let mut s = Schedule::new(rate, arrival, 7);
        let mut last = 0.0;
        (0..n)
            .map(|_| {
                let t = s.next_offset();
                let g = t - last;
                last = t;
                g
            })
            .collect()
    }

    fn mean_cv(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn poisson_gaps_have_the_right_mean_and_a_cv_of_one() {
        let g = gaps(Arrival::Poisson, 200.0, 50_000);
        let (mean, cv) = mean_cv(&g);
        // Standard error of the mean is 0.005 / sqrt(50 000) = 2.2e-5.
        assert!((mean - 0.005).abs() < 1e-4, "mean gap {mean}");
        assert!((cv - 1.0).abs() < 0.03, "coefficient of variation {cv}");
        assert!(g.iter().all(|&x| x > 0.0));
        // Seeded: the same seed gives the same schedule.
        assert_eq!(g[..10], gaps(Arrival::Poisson, 200.0, 10)[..]);
    }

    #[test]
    fn constant_gaps_do_not_vary() {
        let (mean, cv) = mean_cv(&gaps(Arrival::Constant, 50.0, 1000));
        assert!((mean - 0.02).abs() < 1e-12, "{mean}");
        assert!(cv < 1e-6, "{cv}");
    }
}
