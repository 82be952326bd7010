//! The parameters of the read endpoints (period, time range, resolution, label match,
//! group-by) and the shape of `GET /api/metrics`' answer: `series` per label set (or per
//! value of the `group_by` label) and `data`, everything merged per bucket.

use std::collections::{BTreeMap, HashMap};

use std::cell::{Cell, RefCell};

use serde::ser::{Error as _, SerializeSeq};
use serde::Serialize;
use shared::http::params::{invalid, time};
use shared::http::{ApiError, Request};

use crate::db::Tier;
use crate::ingest::Kind;
use crate::read::{Buckets, Range, Series};
use crate::rollup::{Bucket, Rollup};

/// The longest period a query may cover.
const MAX_PERIOD_MS: i64 = 400 * 86_400_000;
/// The longest span `resolution=auto` serves from minute rollups.
const AUTO_MINUTE_SPAN_MS: i64 = 24 * 3_600_000;

/// A query's time range and how it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `period` as given (e.g. `24h`), or `custom` for `from`/`to`.
    pub label: String,
    pub range: Range,
}

/// `period=<n>[smhd]` (default `default`) ending now, or `from`/`to` (RFC 3339; `to`
/// defaults to now).
pub fn period(request: &Request, now_ms: i64, default: &str) -> Result<Period, ApiError> {
    let end = now_ms + 1;
    let from = time(request, "from")?;
    let to = time(request, "to")?;
    if from.is_some() || to.is_some() {
        let to_ms = to.unwrap_or(end);
        let from_ms = from.unwrap_or(to_ms - AUTO_MINUTE_SPAN_MS);
        if from_ms >= to_ms {
            return Err(ApiError::bad_request(
                "parameter 'from' must be before 'to'",
            ));
        }
        if to_ms - from_ms > MAX_PERIOD_MS {
            return Err(ApiError::bad_request(
                "parameters 'from' and 'to' may span at most 400 days",
            ));
        }
        return Ok(Period {
            label: "custom".to_string(),
            range: Range { from_ms, to_ms },
        });
    }
    let text = request.query("period").unwrap_or(default);
    let span = parse_period(text).ok_or_else(|| {
        invalid(
            "period",
            text,
            "a duration such as 30m, 24h or 7d (at most 400d)",
        )
    })?;
    Ok(Period {
        label: text.to_string(),
        range: Range {
            from_ms: end - span,
            to_ms: end,
        },
    })
}

/// `<n>[smhd]` in milliseconds, from 1 s to 400 days.
fn parse_period(text: &str) -> Option<i64> {
    let unit = match text.chars().last()? {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
        return None;
    }
    let ms = digits.parse::<i64>().ok()?.checked_mul(unit)?;
    (ms > 0 && ms <= MAX_PERIOD_MS).then_some(ms)
}

/// `resolution`: `minute`, `hour`, or `auto` (minute up to 24 h, hour beyond).
pub fn resolution(request: &Request, range: Range) -> Result<Tier, ApiError> {
    match request.query("resolution").unwrap_or("auto") {
        "minute" => Ok(Tier::Minute),
        "hour" => Ok(Tier::Hour),
        "auto" if range.to_ms - range.from_ms <= AUTO_MINUTE_SPAN_MS + 1 => Ok(Tier::Minute),
        "auto" => Ok(Tier::Hour),
        other => Err(invalid("resolution", other, "minute, hour or auto")),
    }
}

/// `labels=k:v,k2:v2`: the pairs a series' labels must contain.
pub fn label_match(request: &Request) -> Result<Vec<(String, String)>, ApiError> {
    let Some(text) = request.query("labels").filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|pair| match pair.split_once(':') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.trim().to_string()))
            }
            _ => Err(invalid(
                "labels",
                text,
                "key:value pairs separated by commas",
            )),
        })
        .collect()
}

/// Whether `series` has every pair of `wanted`.
pub fn matches(series: &Series, wanted: &[(String, String)]) -> bool {
    wanted
        .iter()
        .all(|(key, value)| series.labels.get(key) == Some(value))
}

/// One entry of `series` in the answer.
#[derive(Debug, Serialize)]
pub struct SeriesData {
    pub labels: BTreeMap<String, String>,
    pub data: Vec<Bucket>,
}

/// A group of the answer: its labels and its series.
pub type Group<'s> = (BTreeMap<String, String>, Vec<&'s Series>);

/// Groups ordered by their points (`volume` of each series id), most first; ties by labels.
pub fn busiest_first<'s>(
    groups: BTreeMap<BTreeMap<String, String>, Vec<&'s Series>>,
    volume: impl Fn(i64) -> i64,
) -> Vec<Group<'s>> {
    let mut groups: Vec<(i64, Group)> = groups
        .into_iter()
        .map(|(labels, members)| {
            let total = members.iter().map(|s| volume(s.id)).sum();
            (total, (labels, members))
        })
        .collect();
    groups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1 .0.cmp(&b.1 .0)));
    groups.into_iter().map(|(_, group)| group).collect()
}

/// The series as the answer groups them: by label set, or by the value of the `group_by`
/// label (series without it form the group `{}`).
pub fn group<'s>(
    series: &[&'s Series],
    group_by: Option<&str>,
) -> BTreeMap<BTreeMap<String, String>, Vec<&'s Series>> {
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<&Series>> = BTreeMap::new();
    for s in series {
        let key = match group_by {
            None => s.labels.clone(),
            Some(label) => s
                .labels
                .get(label)
                .map(|v| BTreeMap::from([(label.to_string(), v.clone())]))
                .unwrap_or_default(),
        };
        groups.entry(key).or_default().push(s);
    }
    groups
}

/// Reads a group's buckets (its series' buckets by series id).
pub type ReadGroup<'r> = dyn FnMut(&[&Series]) -> rusqlite::Result<HashMap<i64, Buckets>> + 'r;

/// The answer's `series` and `data`, computed while they are written out: `series` holds
/// the first `shown` groups (each read with `read`, written at once, then folded into the
/// merged buckets); `data` is every group merged, written after. Memory holds one group's
/// rollups and the merged buckets, never every series' at once, nor the answer twice. A
/// bucket made of one stored rollup keeps its exact percentiles; merged ones take them from
/// the merged sketch. Serialize `series()` before `data()`.
pub struct Assembly<'s, 'r> {
    groups: RefCell<Vec<Group<'s>>>,
    shown: usize,
    kind: Kind,
    read: RefCell<Box<ReadGroup<'r>>>,
    all: RefCell<Buckets>,
    written: Cell<usize>,
}

impl<'s, 'r> Assembly<'s, 'r> {
    /// An answer of `groups` (busiest first), `shown` of them in `series`.
    pub fn new(
        groups: Vec<Group<'s>>,
        shown: usize,
        kind: Kind,
        read: impl FnMut(&[&Series]) -> rusqlite::Result<HashMap<i64, Buckets>> + 'r,
    ) -> Assembly<'s, 'r> {
        Assembly {
            groups: RefCell::new(groups),
            shown,
            kind,
            read: RefCell::new(Box::new(read)),
            all: RefCell::new(Buckets::new()),
            written: Cell::new(0),
        }
    }

    /// The `series` array.
    pub fn series(&self) -> SeriesPart<'_, 's, 'r> {
        SeriesPart(self)
    }

    /// The `data` array (after `series`).
    pub fn data(&self) -> DataPart<'_, 's, 'r> {
        DataPart(self)
    }

    /// Whether `series` leaves groups out (after `series`): always when more groups had data
    /// than `shown`.
    pub fn truncated(&self) -> TruncatedPart<'_, 's, 'r> {
        TruncatedPart(self)
    }
}

/// See [`Assembly::series`].
pub struct SeriesPart<'a, 's, 'r>(&'a Assembly<'s, 'r>);
/// See [`Assembly::data`].
pub struct DataPart<'a, 's, 'r>(&'a Assembly<'s, 'r>);
/// See [`Assembly::truncated`].
pub struct TruncatedPart<'a, 's, 'r>(&'a Assembly<'s, 'r>);

impl Serialize for SeriesPart<'_, '_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let assembly = self.0;
        let mut seq = serializer.serialize_seq(None)?;
        let groups = std::mem::take(&mut *assembly.groups.borrow_mut());
        for (labels, members) in groups {
            let mut merged = Buckets::new();
            let buckets = (assembly.read.borrow_mut())(&members).map_err(S::Error::custom)?;
            for (_, buckets) in buckets {
                merge_buckets(&mut merged, buckets);
            }
            if merged.is_empty() {
                continue;
            }
            if assembly.written.get() < assembly.shown {
                let data = to_api(&merged, assembly.kind);
                seq.serialize_element(&SeriesData { labels, data })?;
                assembly.written.set(assembly.written.get() + 1);
            } else {
                // Counted so that `truncated` is true.
                assembly.written.set(assembly.shown + 1);
            }
            merge_buckets(&mut assembly.all.borrow_mut(), merged);
        }
        seq.end()
    }
}

impl Serialize for DataPart<'_, '_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        to_api(&self.0.all.borrow(), self.0.kind).serialize(serializer)
    }
}

impl Serialize for TruncatedPart<'_, '_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(self.0.written.get() > self.0.shown)
    }
}

/// Adds every bucket of `from` into `into` (merged sketches kept compact).
pub fn merge_buckets(into: &mut Buckets, from: Buckets) {
    for (at, rollup) in from {
        match into.get_mut(&at) {
            Some(existing) => {
                existing.merge(&rollup);
                existing.compact();
            }
            None => {
                into.insert(at, rollup);
            }
        }
    }
}

fn to_api(buckets: &BTreeMap<i64, Rollup>, kind: Kind) -> Vec<Bucket> {
    buckets
        .iter()
        .map(|(&at, rollup)| Bucket::new(at, kind, rollup))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str) -> Request {
        Request::new("GET", target)
    }

    #[test]
    fn periods_and_ranges() {
        let now = 1_000_000_000_000;
        let p = period(&request("/x?period=90m"), now, "24h").unwrap();
        assert_eq!(p.range.to_ms - p.range.from_ms, 90 * 60_000);
        assert_eq!(p.label, "90m");
        assert_eq!(period(&request("/x"), now, "24h").unwrap().label, "24h");
        for bad in ["0h", "h", "-1h", "1w", "1.5h", "401d", "99999999999d"] {
            let err = period(&request(&format!("/x?period={bad}")), now, "24h").unwrap_err();
            assert!(err.detail().contains("'period'"), "{bad}: {}", err.detail());
        }
        let custom = period(
            &request("/x?from=2026-01-01T00:00:00Z&to=2026-01-01T06:00:00%2B01:00"),
            now,
            "24h",
        )
        .unwrap();
        assert_eq!(custom.label, "custom");
        assert_eq!(custom.range.to_ms - custom.range.from_ms, 5 * 3_600_000);
        let backwards = "/x?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z";
        assert!(period(&request(backwards), now, "24h").is_err());
    }

    #[test]
    fn resolution_auto_switches_after_a_day() {
        let day = Range {
            from_ms: 0,
            to_ms: 86_400_001,
        };
        let week = Range {
            from_ms: 0,
            to_ms: 7 * 86_400_000,
        };
        assert_eq!(resolution(&request("/x"), day).unwrap(), Tier::Minute);
        assert_eq!(resolution(&request("/x"), week).unwrap(), Tier::Hour);
        let minute = request("/x?resolution=minute");
        assert_eq!(resolution(&minute, week).unwrap(), Tier::Minute);
        assert!(resolution(&request("/x?resolution=second"), day).is_err());
    }

    #[test]
    fn label_pairs() {
        let pairs = label_match(&request("/x?labels=method:GET,%20url:/a:b")).unwrap();
        assert_eq!(
            pairs,
            [
                ("method".to_string(), "GET".to_string()),
                ("url".to_string(), "/a:b".to_string())
            ]
        );
        assert!(label_match(&request("/x?labels=method")).is_err());
        assert!(label_match(&request("/x?labels=:x")).is_err());
        assert!(label_match(&request("/x")).unwrap().is_empty());
    }
}
