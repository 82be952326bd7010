//! The dashboard's Web Vitals: histogram points named `web_vitals_<vital>` with the label
//! `source=browser`, summarised per vital, per time bucket and per page. Every figure is the
//! 75th percentile of the merged sketches, and ratings are judged on it, as web.dev does.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ingest::Kind;
use crate::query::merge_buckets;
use crate::read::{Buckets, Series};
use crate::rollup::Rollup;

/// A vital: its key in the answer, its metric name and its good / poor thresholds on p75.
pub struct Vital {
    pub key: &'static str,
    pub metric: &'static str,
    /// p75 at most this is good.
    pub good: f64,
    /// p75 above this is poor.
    pub poor: f64,
}

/// The five vitals the dashboard knows.
pub const VITALS: [Vital; 5] = [
    Vital {
        key: "lcp",
        metric: "web_vitals_lcp",
        good: 2500.0,
        poor: 4000.0,
    },
    Vital {
        key: "inp",
        metric: "web_vitals_inp",
        good: 200.0,
        poor: 500.0,
    },
    Vital {
        key: "cls",
        metric: "web_vitals_cls",
        good: 0.1,
        poor: 0.25,
    },
    Vital {
        key: "fcp",
        metric: "web_vitals_fcp",
        good: 1800.0,
        poor: 3000.0,
    },
    Vital {
        key: "ttfb",
        metric: "web_vitals_ttfb",
        good: 800.0,
        poor: 1800.0,
    },
];

/// The vitals of the time series and per-page table (as the spec shapes them).
const CHARTED: [&str; 3] = ["lcp", "inp", "cls"];

impl Vital {
    /// `good`, `needs-improvement` or `poor` for a p75; `unknown` without data.
    pub fn rating(&self, p75: Option<f64>) -> &'static str {
        match p75 {
            None => "unknown",
            Some(v) if v <= self.good => "good",
            Some(v) if v <= self.poor => "needs-improvement",
            Some(_) => "poor",
        }
    }
}

/// Whether `series` carries a vital: which one.
pub fn vital_of(series: &Series) -> Option<usize> {
    if series.kind != Kind::Histogram
        || series.labels.get("source").map(String::as_str) != Some("browser")
    {
        return None;
    }
    VITALS.iter().position(|v| v.metric == series.name)
}

/// A vital's summary.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub p75: Option<f64>,
    pub avg: Option<f64>,
    pub count: i64,
    pub rating: &'static str,
}

/// One bucket of the vitals' time series (p75 of each vital).
#[derive(Debug, Serialize)]
pub struct Point {
    pub bucket: String,
    pub lcp: Option<f64>,
    pub inp: Option<f64>,
    pub cls: Option<f64>,
    /// Measurements of the most measured vital in the bucket (about the page views).
    pub count: i64,
}

/// One page's vitals (p75 of each).
#[derive(Debug, Serialize)]
pub struct Page {
    pub page: String,
    pub lcp: Option<f64>,
    pub inp: Option<f64>,
    pub cls: Option<f64>,
    /// Measurements of the page's most measured vital (about its page views).
    pub page_views: i64,
}

/// The `web_vitals` object of the dashboard.
#[derive(Debug, Serialize)]
pub struct WebVitals {
    pub summary: BTreeMap<&'static str, Summary>,
    pub timeseries: Vec<Point>,
    pub by_page: Vec<Page>,
}

/// Pages listed at most, the most viewed first.
const MAX_PAGES: usize = 50;

/// The vitals from each vital series' buckets (`(vital index, page, buckets)`); `None` when
/// there is no measurement at all.
pub fn web_vitals(series: Vec<(usize, String, Buckets)>) -> Option<WebVitals> {
    // Per vital: all merged, per bucket, per page.
    let mut overall: [Option<Rollup>; 5] = Default::default();
    let mut by_bucket: [Buckets; 5] = Default::default();
    let mut by_page: BTreeMap<String, [Option<Rollup>; 5]> = BTreeMap::new();
    for (vital, page, buckets) in series {
        for rollup in buckets.values() {
            merge_into(&mut overall[vital], rollup);
            merge_into(&mut by_page.entry(page.clone()).or_default()[vital], rollup);
        }
        merge_buckets(&mut by_bucket[vital], buckets);
    }
    if overall.iter().all(Option::is_none) {
        return None;
    }
    let summary = VITALS
        .iter()
        .zip(&overall)
        .map(|(vital, rollup)| {
            let p75 = rollup.as_ref().and_then(|r| r.percentile(75));
            let summary = Summary {
                p75,
                avg: rollup.as_ref().map(Rollup::avg),
                count: rollup.as_ref().map_or(0, |r| r.count),
                rating: vital.rating(p75),
            };
            (vital.key, summary)
        })
        .collect();
    let charted = CHARTED.map(|key| VITALS.iter().position(|v| v.key == key).unwrap_or(0));
    let mut starts: Vec<i64> = by_bucket.iter().flat_map(|b| b.keys().copied()).collect();
    starts.sort_unstable();
    starts.dedup();
    let timeseries = starts
        .into_iter()
        .map(|at| {
            let p75 = |i: usize| by_bucket[i].get(&at).and_then(|r| r.percentile(75));
            Point {
                bucket: shared::time::format_ms(at),
                lcp: p75(charted[0]),
                inp: p75(charted[1]),
                cls: p75(charted[2]),
                count: by_bucket
                    .iter()
                    .filter_map(|b| b.get(&at).map(|r| r.count))
                    .max()
                    .unwrap_or(0),
            }
        })
        .collect();
    let mut pages: Vec<Page> = by_page
        .into_iter()
        .map(|(page, rollups)| {
            let p75 = |i: usize| rollups[i].as_ref().and_then(|r| r.percentile(75));
            Page {
                lcp: p75(charted[0]),
                inp: p75(charted[1]),
                cls: p75(charted[2]),
                page_views: rollups.iter().flatten().map(|r| r.count).max().unwrap_or(0),
                page,
            }
        })
        .collect();
    pages.sort_by(|a, b| b.page_views.cmp(&a.page_views).then(a.page.cmp(&b.page)));
    pages.truncate(MAX_PAGES);
    Some(WebVitals {
        summary,
        timeseries,
        by_page: pages,
    })
}

fn merge_into(slot: &mut Option<Rollup>, rollup: &Rollup) {
    match slot {
        Some(existing) => existing.merge(rollup),
        None => *slot = Some(rollup.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_follow_web_dev_thresholds() {
        let lcp = &VITALS[0];
        assert_eq!(lcp.rating(Some(2500.0)), "good");
        assert_eq!(lcp.rating(Some(2501.0)), "needs-improvement");
        assert_eq!(lcp.rating(Some(4000.1)), "poor");
        assert_eq!(lcp.rating(None), "unknown");
        assert_eq!(VITALS[2].rating(Some(0.1)), "good");
        assert_eq!(VITALS[2].rating(Some(0.3)), "poor");
    }

    #[test]
    fn the_summary_is_judged_on_p75_not_the_average() {
        // 70 % fast pages and 30 % slow ones: the average (2,200 ms) would be good, the p75
        // (5,000 ms) is poor.
        let mut points: Vec<(i64, f64)> = (0..100)
            .map(|i| (i, if i % 10 < 7 { 1000.0 } else { 5000.0 }))
            .collect();
        let rollup = Rollup::from_points(Kind::Histogram, &mut points).unwrap();
        let buckets = Buckets::from([(0, rollup)]);
        let vitals = web_vitals(vec![(0, "/".to_string(), buckets)]).unwrap();
        let lcp = &vitals.summary["lcp"];
        assert_eq!(lcp.avg, Some(2200.0));
        assert_eq!(lcp.rating, "poor");
        assert_eq!(vitals.summary["inp"].rating, "unknown");
        assert_eq!(vitals.by_page[0].page_views, 100);
        assert!(web_vitals(Vec::new()).is_none());
    }
}
