//! A rollup: what a bucket of points (a minute, an hour, a merged set of series) keeps —
//! count, sum, min, max, the latest value, and for histograms percentiles.
//!
//! Percentiles of one minute are exact (nearest rank on the sorted values). Wherever buckets
//! are merged — hours, label sets merged into `data`, the dashboard's periods — they come
//! from a DDSketch (`sketches-ddsketch`, 1 % relative accuracy) stored with every histogram
//! rollup, never from averaging percentiles.

use serde::Serialize;
use sketches_ddsketch::{Config, DDSketch};

use crate::ingest::Kind;

/// The percentiles a histogram rollup reports, in percent.
pub const PERCENTILES: [u32; 5] = [50, 75, 90, 95, 99];

/// A bucket's figures.
#[derive(Debug, Clone)]
pub struct Rollup {
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// The latest value and its time (epoch ms).
    pub last: f64,
    pub last_ms: i64,
    /// Exact percentiles, when computed from raw values (one minute of one series).
    pub exact: Option<[f64; 5]>,
    /// The sketch of a histogram's values (none for counters and gauges).
    pub sketch: Option<Sketch>,
}

/// A histogram's sketch: as read from the database (decoded only when merged or asked for
/// percentiles, so a single series' stored buckets cost no decoding) or live.
#[derive(Clone)]
pub enum Sketch {
    /// The compact binary form stored with a rollup.
    Stored(Vec<u8>),
    /// A sketch in memory (boxed: a rollup without one stays small).
    Live(Box<DDSketch>),
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sketch::Stored(bytes) => write!(f, "Stored({} bytes)", bytes.len()),
            Sketch::Live(sketch) => write!(f, "Live(count {})", sketch.count()),
        }
    }
}

impl Sketch {
    /// The sketch in memory (decoded once); `None` when the stored bytes are damaged.
    fn live(&mut self) -> Option<&mut DDSketch> {
        if let Sketch::Stored(bytes) = self {
            *self = Sketch::Live(Box::new(decode_sketch(bytes)?));
        }
        match self {
            Sketch::Live(sketch) => Some(sketch),
            Sketch::Stored(_) => None,
        }
    }

    /// The compact binary form, for the database.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Sketch::Stored(bytes) => bytes.clone(),
            Sketch::Live(sketch) => sketch.to_java_bytes(),
        }
    }
}

impl Rollup {
    /// Rolls up one bucket of raw `(timestamp_ms, value)` points (in any order). Histograms
    /// get exact percentiles and a sketch.
    pub fn from_points(kind: Kind, points: &mut [(i64, f64)]) -> Option<Rollup> {
        let first = points.first()?;
        let mut rollup = Rollup {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: first.1,
            last_ms: first.0,
            exact: None,
            sketch: None,
        };
        for &(ms, value) in points.iter() {
            rollup.count += 1;
            rollup.sum += value;
            rollup.min = rollup.min.min(value);
            rollup.max = rollup.max.max(value);
            if ms >= rollup.last_ms {
                (rollup.last, rollup.last_ms) = (value, ms);
            }
        }
        if kind == Kind::Histogram {
            let mut sketch = new_sketch();
            let mut values: Vec<f64> = points.iter().map(|&(_, v)| v).collect();
            for &v in &values {
                sketch.add(v);
            }
            values.sort_unstable_by(f64::total_cmp);
            rollup.exact = Some(PERCENTILES.map(|p| nearest_rank(&values, p)));
            rollup.sketch = Some(Sketch::Live(Box::new(sketch)));
        }
        Some(rollup)
    }

    /// Adds `other` into this rollup. Percentiles come from the merged sketch from now on.
    pub fn merge(&mut self, other: &Rollup) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.last_ms >= self.last_ms {
            (self.last, self.last_ms) = (other.last, other.last_ms);
        }
        self.exact = None;
        match (&mut self.sketch, &other.sketch) {
            (Some(mine), Some(theirs)) => {
                let theirs = match theirs {
                    Sketch::Live(sketch) => Some(sketch.as_ref().clone()),
                    Sketch::Stored(bytes) => decode_sketch(bytes),
                };
                if let (Some(mine), Some(theirs)) = (mine.live(), theirs) {
                    // Every sketch has `new_sketch()`'s configuration: a merge cannot fail.
                    if let Err(e) = mine.merge(&theirs) {
                        log::error!("cannot merge sketches: {e}");
                    }
                }
            }
            (None, Some(theirs)) => self.sketch = Some(theirs.clone()),
            _ => {}
        }
    }

    /// Stores a live sketch in its compact form again (a decoded sketch takes a few KiB, its
    /// bytes a few hundred): for rollups kept while many others are merged.
    pub fn compact(&mut self) {
        if let Some(sketch @ Sketch::Live(_)) = &mut self.sketch {
            *sketch = Sketch::Stored(sketch.to_bytes());
        }
    }

    /// The average value.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// p50, p75, p90, p95, p99: exact when known, else from the sketch; `None` for counters
    /// and gauges.
    pub fn percentiles(&self) -> Option<[f64; 5]> {
        if let Some(exact) = self.exact {
            return Some(exact);
        }
        let sketch = self.live_sketch()?;
        Some(PERCENTILES.map(|p| sketch_quantile(&sketch, p)))
    }

    /// One percentile (see [`Rollup::percentiles`]).
    pub fn percentile(&self, p: u32) -> Option<f64> {
        let index = PERCENTILES.iter().position(|&q| q == p);
        match (self.exact, index) {
            (Some(exact), Some(i)) => Some(exact[i]),
            _ => self.live_sketch().map(|s| sketch_quantile(&s, p)),
        }
    }

    fn live_sketch(&self) -> Option<std::borrow::Cow<'_, DDSketch>> {
        match self.sketch.as_ref()? {
            Sketch::Live(sketch) => Some(std::borrow::Cow::Borrowed(sketch)),
            Sketch::Stored(bytes) => decode_sketch(bytes).map(std::borrow::Cow::Owned),
        }
    }

    /// The sketch in its compact binary form, for the database.
    pub fn sketch_bytes(&self) -> Option<Vec<u8>> {
        self.sketch.as_ref().map(Sketch::to_bytes)
    }
}

/// An empty sketch with the configuration every rollup uses (1 % relative accuracy).
pub fn new_sketch() -> DDSketch {
    DDSketch::new(Config::defaults())
}

/// A sketch read back from the database; `None` (logged) when the bytes are damaged.
pub fn decode_sketch(bytes: &[u8]) -> Option<DDSketch> {
    match DDSketch::from_java_bytes(bytes) {
        Ok(sketch) => Some(sketch),
        Err(e) => {
            log::error!("a stored sketch cannot be decoded ({e:?}); its percentiles are lost");
            None
        }
    }
}

/// The value at percentile `p` by nearest rank: index ⌈p·n/100⌉−1 of the sorted values.
pub fn nearest_rank(sorted: &[f64], p: u32) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = (u64::from(p) * n as u64).div_ceil(100) as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// A percentile from a sketch by nearest rank, like [`nearest_rank`]: the sketch's own
/// `quantile(q)` takes rank ⌊q·(n−1)⌋, so `q` is chosen to land on ⌈p·n/100⌉−1 (within the
/// sketch's 1 % relative accuracy of that value). Clamped into the exact min and max.
fn sketch_quantile(sketch: &DDSketch, p: u32) -> f64 {
    let n = sketch.count() as u64;
    let rank = (u64::from(p) * n).div_ceil(100).clamp(1, n.max(1)) - 1;
    let q = if n <= 1 {
        1.0
    } else {
        ((rank as f64 + 0.5) / (n - 1) as f64).min(1.0)
    };
    let value = sketch.quantile(q).ok().flatten().unwrap_or(f64::NAN);
    match (sketch.min(), sketch.max()) {
        (Some(min), Some(max)) => value.clamp(min, max),
        _ => value,
    }
}

/// A bucket as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    pub bucket: String,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub last: Option<f64>,
}

impl Bucket {
    /// The API's view of `rollup` for the bucket starting at `start_ms`: percentiles for
    /// histograms only, `last` for gauges only.
    pub fn new(start_ms: i64, kind: Kind, rollup: &Rollup) -> Bucket {
        let p = if kind == Kind::Histogram {
            rollup.percentiles()
        } else {
            None
        };
        Bucket {
            bucket: shared::time::format_ms(start_ms),
            count: rollup.count,
            sum: rollup.sum,
            min: rollup.min,
            max: rollup.max,
            avg: rollup.avg(),
            p50: p.map(|p| p[0]),
            p75: p.map(|p| p[1]),
            p90: p.map(|p| p[2]),
            p95: p.map(|p| p[3]),
            p99: p.map(|p| p[4]),
            last: (kind == Kind::Gauge).then_some(rollup.last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so the accuracy test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn next_f64(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }

        /// A standard normal (Box–Muller).
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.next_f64().max(1e-12), self.next_f64());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    #[test]
    fn nearest_rank_follows_the_spec_index() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&values, 50), 5.0); // ⌈5⌉−1 = index 4
        assert_eq!(nearest_rank(&values, 75), 8.0); // ⌈7.5⌉−1 = index 7
        assert_eq!(nearest_rank(&values, 99), 10.0);
        assert_eq!(nearest_rank(&[3.0], 50), 3.0);
    }

    #[test]
    fn a_minute_rolls_up_exactly() {
        let mut points = vec![(3, 30.0), (1, 10.0), (2, 20.0), (4, 40.0)];
        let r = Rollup::from_points(Kind::Histogram, &mut points).unwrap();
        assert_eq!((r.count, r.sum, r.min, r.max), (4, 100.0, 10.0, 40.0));
        assert_eq!((r.last, r.last_ms), (40.0, 4));
        assert_eq!(r.exact, Some([20.0, 30.0, 40.0, 40.0, 40.0]));
        let gauge = Rollup::from_points(Kind::Gauge, &mut points).unwrap();
        assert!(gauge.sketch.is_none() && gauge.percentiles().is_none());
        assert!(Rollup::from_points(Kind::Counter, &mut []).is_none());
    }

    #[test]
    fn sketches_survive_the_database() {
        let mut points: Vec<(i64, f64)> = (0..100).map(|i| (i, i as f64 * 1.5 - 20.0)).collect();
        let r = Rollup::from_points(Kind::Histogram, &mut points).unwrap();
        let back = decode_sketch(&r.sketch_bytes().unwrap()).unwrap();
        let mut merged = new_sketch();
        merged.merge(&back).unwrap();
        assert_eq!(merged.count(), 100);
        assert!(decode_sketch(b"\xff\xff").is_none());
    }

    /// Merged percentiles are within 1 % of the exact nearest-rank value over all the raw
    /// points (or of the value at an adjacent rank), on several shapes of data, whether the
    /// buckets are merged once (an hour of minutes) or twice (hours into a day).
    #[test]
    fn merged_percentiles_are_within_one_percent() {
        type Shape = fn(&mut Rng) -> f64;
        let shapes: [(&str, Shape); 4] = [
            ("uniform", |r| 1.0 + r.next_f64() * 999.0),
            ("log-normal", |r| (5.0 + 1.2 * r.normal()).exp()),
            ("bimodal", |r| {
                if r.next_f64() < 0.7 {
                    40.0 + 5.0 * r.normal()
                } else {
                    2000.0 + 300.0 * r.normal()
                }
            }),
            ("signed", |r| 100.0 * r.normal()),
        ];
        for (name, shape) in shapes {
            for seed in 1..=5u64 {
                let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let mut all = Vec::new();
                let mut hours = Vec::new();
                for _hour in 0..4 {
                    let mut hour: Option<Rollup> = None;
                    for _minute in 0..60 {
                        let n = 1 + (rng.next_f64() * 80.0) as usize;
                        let mut points: Vec<(i64, f64)> =
                            (0..n).map(|i| (i as i64, shape(&mut rng))).collect();
                        all.extend(points.iter().map(|p| p.1));
                        let minute = Rollup::from_points(Kind::Histogram, &mut points).unwrap();
                        // Through the database's bytes, as the aggregation does.
                        let stored = Rollup {
                            sketch: minute.sketch_bytes().map(Sketch::Stored),
                            exact: None,
                            ..minute
                        };
                        match &mut hour {
                            None => hour = Some(stored),
                            Some(h) => h.merge(&stored),
                        }
                    }
                    hours.push(hour.unwrap());
                }
                let mut day = hours[0].clone();
                for h in &hours[1..] {
                    day.merge(h);
                }
                all.sort_unstable_by(f64::total_cmp);
                assert_eq!(day.count as usize, all.len());
                for p in [50, 75, 95, 99] {
                    let got = day.percentile(p).unwrap();
                    let n = all.len();
                    let rank = (p as usize * n).div_ceil(100).clamp(1, n) - 1;
                    let close = |v: f64| (got - v).abs() <= 0.01 * v.abs() + 1e-9;
                    let neighbours = [rank.saturating_sub(1), rank, (rank + 1).min(n - 1)];
                    assert!(
                        neighbours.iter().any(|&i| close(all[i])),
                        "{name} seed {seed} p{p}: sketch {got}, exact {} (n = {n})",
                        all[rank]
                    );
                }
            }
        }
    }
}
