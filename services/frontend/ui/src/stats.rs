//! Aggregate statistics of a batch of rolls, and its distribution beside the die's own.

/// Count, failures, total, mean, min and max of a batch; failed rolls count only as failures.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub failed: usize,
    pub total: i64,
    pub mean: Option<f64>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    values: Vec<i64>,
}

/// One face of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    pub face: i64,
    /// Successful rolls that showed this face.
    pub seen: usize,
    /// `seen` as a share of the successful rolls.
    pub observed: f64,
    /// The share of the die's faces that carry this value.
    pub expected: f64,
}

impl Stats {
    pub fn of(rolls: &[Option<i64>]) -> Self {
        let values: Vec<i64> = rolls.iter().flatten().copied().collect();
        let total = values.iter().sum();
        Self {
            count: rolls.len(),
            failed: rolls.len() - values.len(),
            total,
            mean: (!values.is_empty()).then(|| total as f64 / values.len() as f64),
            min: values.iter().copied().min(),
            max: values.iter().copied().max(),
            values,
        }
    }

    /// Each distinct face of `faces`, in order, with its observed and expected share.
    pub fn distribution(&self, faces: &[i64]) -> Vec<Share> {
        let mut distinct = faces.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        distinct
            .into_iter()
            .map(|face| {
                let seen = self.values.iter().filter(|&&v| v == face).count();
                let carrying = faces.iter().filter(|&&f| f == face).count();
                Share {
                    face,
                    seen,
                    observed: if self.values.is_empty() {
                        0.0
                    } else {
                        seen as f64 / self.values.len() as f64
                    },
                    expected: carrying as f64 / faces.len() as f64,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_rolls_count_only_as_failures() {
        let stats = Stats::of(&[Some(6), None, Some(2), Some(4)]);
        assert_eq!((stats.count, stats.failed, stats.total), (4, 1, 12));
        assert_eq!(
            (stats.mean, stats.min, stats.max),
            (Some(4.0), Some(2), Some(6))
        );
        let none = Stats::of(&[None, None]);
        assert_eq!((none.mean, none.min, none.max), (None, None, None));
    }

    #[test]
    fn a_loaded_die_expects_its_repeated_face_more_often() {
        let stats = Stats::of(&[Some(6), Some(6), Some(1), Some(6)]);
        let shares = stats.distribution(&[1, 2, 3, 4, 5, 6, 6, 6, 6, 6]);
        let six = shares.iter().find(|s| s.face == 6).unwrap();
        assert_eq!((six.seen, six.observed, six.expected), (3, 0.75, 0.5));
        assert_eq!(shares.len(), 6);
    }
}
