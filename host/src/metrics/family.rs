//! Metrics labelled by one to three values (a plugin and its world, a
//! connector and an outcome, an interface, sender and answer), found by `&str` without allocating once the
//! series exists. prometheus-client's `Family` needs an owned label set for
//! every lookup, which would allocate on every plugin call.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

type Series<M> = BTreeMap<Box<str>, BTreeMap<Box<str>, BTreeMap<Box<str>, M>>>;

pub struct Family<M> {
    inner: Arc<Inner<M>>,
}

struct Inner<M> {
    /// One to three label names; values past the names are always "".
    names: &'static [&'static str],
    make: fn() -> M,
    series: RwLock<Series<M>>,
}

impl<M> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family { inner: self.inner.clone() }
    }
}

impl<M> std::fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family").field("labels", &self.inner.names).finish_non_exhaustive()
    }
}

impl<M> Family<M> {
    pub fn new(names: &'static [&'static str], make: fn() -> M) -> Family<M> {
        debug_assert!(matches!(names.len(), 1..=3));
        Family { inner: Arc::new(Inner { names, make, series: RwLock::default() }) }
    }

    /// Runs `f` on the series of these label values, creating it the first time.
    pub fn with<R>(&self, first: &str, second: &str, f: impl FnOnce(&M) -> R) -> R {
        self.with3(first, second, "", f)
    }

    /// [`Family::with`] for a family of three labels.
    pub fn with3<R>(&self, first: &str, second: &str, third: &str, f: impl FnOnce(&M) -> R) -> R {
        {
            let series = self.inner.series.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(metric) = series.get(first).and_then(|s| s.get(second)).and_then(|s| s.get(third)) {
                return f(metric);
            }
        }
        let mut series = self.inner.series.write().unwrap_or_else(PoisonError::into_inner);
        let metric = series.entry(first.into()).or_default().entry(second.into()).or_default().entry(third.into()).or_insert_with(self.inner.make);
        f(metric)
    }
}

impl<M: EncodeMetric + TypedMetric> EncodeMetric for Family<M> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = self.inner.series.read().unwrap_or_else(PoisonError::into_inner);
        for (first, inner) in series.iter() {
            for (second, inner) in inner {
                for (third, metric) in inner {
                    let values = [&**first, &**second, &**third];
                    let labels: Vec<(&str, &str)> = self.inner.names.iter().copied().zip(values).collect();
                    metric.encode(encoder.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}
