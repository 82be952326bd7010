//! What the fuzz targets share. `cargo fuzz` needs a nightly toolchain, which this project's
//! machines do not have, so each target is a test that runs for a time budget: a
//! deterministic generator (failures replay from the seed printed), byte mutations of seed
//! inputs, the budget and the seed from the environment.

use std::time::Duration;

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed` (0 is made 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Byte mutations of inputs: bit flips, tokens spliced in, cuts, repeats, random bytes,
/// tails of other seeds.
pub struct Mutator<'a> {
    /// Well-formed inputs; their tails are spliced in.
    pub seeds: &'a [&'a [u8]],
    /// Byte strings that matter to the parser under test.
    pub tokens: &'a [&'a [u8]],
    /// Longest run of bytes one cut removes.
    pub max_cut: usize,
}

impl Mutator<'_> {
    /// `bytes` changed one to eight times.
    pub fn mutate(&self, rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
        for _ in 0..=rng.below(8) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(6) {
                0 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
                1 if !self.tokens.is_empty() => {
                    let token = self.tokens[rng.below(self.tokens.len())];
                    bytes.splice(at..at, token.iter().copied());
                }
                2 => {
                    let end = (at + rng.below(self.max_cut)).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => {
                    let end = (at + rng.below(32)).min(bytes.len());
                    let piece = bytes[at..end].to_vec();
                    for _ in 0..rng.below(4) {
                        bytes.splice(at..at, piece.iter().copied());
                    }
                }
                5 if !self.seeds.is_empty() => {
                    let other = self.seeds[rng.below(self.seeds.len())];
                    bytes.extend_from_slice(&other[rng.below(other.len())..]);
                }
                _ => bytes.insert(at, rng.next_u64() as u8),
            }
        }
        bytes
    }

    /// A seed picked at random, mutated.
    pub fn mutated_seed(&self, rng: &mut Rng) -> Vec<u8> {
        let seed = self.seeds.get(rng.below(self.seeds.len())).copied();
        self.mutate(rng, seed.unwrap_or_default().to_vec())
    }
}

/// How long a fuzz test runs: `MONLIGHT_FUZZ_SECONDS` (default 2; CI sets more).
pub fn budget() -> Duration {
    let seconds = std::env::var("MONLIGHT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    Duration::from_secs(seconds)
}

/// The seed of a run of the fuzz test `name`: `MONLIGHT_FUZZ_SEED`, else from the clock;
/// printed so that a failure can be replayed.
pub fn seed(name: &str) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let seed = std::env::var("MONLIGHT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(nanos | 1);
    eprintln!("{name}: seed {seed} (MONLIGHT_FUZZ_SEED={seed} replays it)");
    seed
}
