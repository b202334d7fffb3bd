//! Die specifications: what a dice file holds, how a bad one is reported, how a die is rolled.
//!
//! The die-service loads and validates a dice file; the dice-roller receives the same [`DieSpec`]
//! as JSON and calls [`DieSpec::roll`], so the shape and the rules live here once, in a crate both
//! depend on. A file that does not parse, or a die that breaks a rule (no faces, an `error_rate`
//! outside 0..=1, a `delay_ms` whose minimum exceeds its maximum), is refused with a [`LoadError`]
//! that names the file, the die and the field. A die's name is short and safe in a URL and a metric label.

use std::collections::BTreeMap;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Longest die type accepted; longer names in requests are unknown by definition.
pub const MAX_TYPE_LEN: usize = 32;

/// One die, as `dice.json` and `GET /dice/{type}` describe it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DieSpec {
    /// The faces; one is drawn uniformly, so a repeated face loads the die.
    pub faces: Vec<i64>,
    /// Chance, from 0 to 1, that one roll fails.
    pub error_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Simulated work per roll, `[min, max]` milliseconds; absent means the roller's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<[u64; 2]>,
}

/// The result of one roll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roll {
    Value(i64),
    Failed,
}

impl DieSpec {
    /// One roll: fails with probability `error_rate`, else a uniformly drawn face. The spec must
    /// have passed [`DieSpec::validate`].
    pub fn roll(&self, rng: &mut impl Rng) -> Roll {
        if rng.random::<f64>() < self.error_rate {
            return Roll::Failed;
        }
        Roll::Value(self.faces[rng.random_range(0..self.faces.len())])
    }

    /// The distinct faces, sorted: the values a roll of this die can produce.
    pub fn distinct_faces(&self) -> Vec<i64> {
        let mut faces = self.faces.clone();
        faces.sort_unstable();
        faces.dedup();
        faces
    }

    /// The rules `dice.json` must follow; the error names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.faces.is_empty() {
            return Err(("faces", "must list at least one face".into()));
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err((
                "error_rate",
                format!("must be between 0 and 1, got {}", self.error_rate),
            ));
        }
        if let Some([min, max]) = self.delay_ms
            && min > max
        {
            return Err((
                "delay_ms",
                format!("minimum {min} is greater than maximum {max}"),
            ));
        }
        Ok(())
    }
}

/// Every die, keyed and therefore sorted by type.
pub type Catalog = BTreeMap<String, DieSpec>;

/// Why a dice file was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read dice file '{file}': {error}")]
    Read { file: String, error: std::io::Error },
    #[error("dice file '{file}' is not a JSON object of dice: {error}")]
    Syntax {
        file: String,
        error: serde_json::Error,
    },
    #[error("dice file '{file}' holds no dice")]
    Empty { file: String },
    #[error("dice file '{file}': die '{die}': {problem}")]
    Die {
        file: String,
        die: String,
        problem: String,
    },
    #[error("dice file '{file}': die '{die}': field '{field}' {problem}")]
    Field {
        file: String,
        die: String,
        field: &'static str,
        problem: String,
    },
}

/// Loads and checks the dice file at `path`.
pub fn load_file(path: &Path) -> Result<Catalog, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        file: file.clone(),
        error,
    })?;
    parse(&file, &text)
}

/// Parses and checks a dice file's text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Catalog, LoadError> {
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|error| LoadError::Syntax {
            file: file.into(),
            error,
        })?;
    if raw.is_empty() {
        return Err(LoadError::Empty { file: file.into() });
    }
    raw.into_iter()
        .map(|(die, value)| {
            if !is_valid_type(&die) {
                return Err(LoadError::Die {
                    file: file.into(),
                    problem: format!(
                        "a die type is 1 to {MAX_TYPE_LEN} letters, digits, '-' or '_'"
                    ),
                    die,
                });
            }
            let spec: DieSpec = serde_json::from_value(value).map_err(|error| LoadError::Die {
                file: file.into(),
                die: die.clone(),
                problem: error.to_string(),
            })?;
            spec.validate()
                .map_err(|(field, problem)| LoadError::Field {
                    file: file.into(),
                    die: die.clone(),
                    field,
                    problem,
                })?;
            Ok((die, spec))
        })
        .collect()
}

/// Whether `name` can be a die type: short, and safe in a URL path and a metric label.
fn is_valid_type(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TYPE_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        parse("test.json", text).unwrap_err().to_string()
    }

    #[test]
    fn bad_dice_are_refused_with_the_file_the_die_and_the_field() {
        assert_eq!(
            error_of(r#"{"bad": {"faces": [], "error_rate": 0}}"#),
            "dice file 'test.json': die 'bad': field 'faces' must list at least one face"
        );
        assert_eq!(
            error_of(r#"{"bad": {"faces": [1], "error_rate": 1.5}}"#),
            "dice file 'test.json': die 'bad': field 'error_rate' must be between 0 and 1, got 1.5"
        );
        assert_eq!(
            error_of(r#"{"bad": {"faces": [1], "error_rate": 0, "delay_ms": [5, 1]}}"#),
            "dice file 'test.json': die 'bad': field 'delay_ms' minimum 5 is greater than maximum 1"
        );
        let unknown = error_of(r#"{"bad": {"faces": [1], "error_rate": 0, "colour": "red"}}"#);
        assert!(
            unknown.starts_with("dice file 'test.json': die 'bad': unknown field `colour`"),
            "{unknown}"
        );
        let missing = error_of(r#"{"bad": {"faces": [1]}}"#);
        assert!(
            missing.contains("die 'bad'") && missing.contains("error_rate"),
            "{missing}"
        );
        assert!(error_of("[1, 2]").starts_with("dice file 'test.json' is not a JSON object"));
        assert!(error_of("{}").contains("holds no dice"));
        assert!(error_of(r#"{"a b": {"faces": [1], "error_rate": 0}}"#).contains("die 'a b'"));
    }

    #[test]
    fn rolls_draw_only_faces_and_fail_at_the_error_rate() {
        let mut rng = rand::rng();
        let die = DieSpec {
            faces: vec![0, 6],
            error_rate: 0.5,
            description: None,
            delay_ms: None,
        };
        let rolls: Vec<Roll> = (0..10_000).map(|_| die.roll(&mut rng)).collect();
        let failed = rolls.iter().filter(|r| **r == Roll::Failed).count();
        assert!((4_500..5_500).contains(&failed), "{failed} of 10000 failed");
        assert!(
            rolls
                .iter()
                .all(|r| matches!(r, Roll::Failed | Roll::Value(0 | 6)))
        );
    }
}
