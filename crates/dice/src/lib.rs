//! Die specifications: what a dice file holds, how a bad one is reported, how a die is rolled.
//!
//! The die-service loads and checks a dice file; the dice-roller receives the same [`DieSpec`] as
//! JSON and checks it the same way ([`DieSpec::from_json`]) before it calls [`DieSpec::roll`], so
//! the shape and the rules live here once, in a crate both depend on. Every rule is checked in one
//! pass over the file, and the limits below keep the work and the numbers small: a face's value is
//! at most [`MAX_FACE_VALUE`] in size, so that the total of a batch of up to `u32::MAX` rolls
//! cannot overflow. A file or a die that breaks a rule is refused with a [`LoadError`] that names
//! the file, the die and the field. [`is_valid_type`] says which names a die may have.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use rand::Rng;
use serde::Serialize;
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::Value;

/// Longest die type accepted; longer names in requests are unknown by definition.
pub const MAX_TYPE_LEN: usize = 32;
/// Most dice in one file.
pub const MAX_DICE: usize = 1_000;
/// Most faces on one die.
pub const MAX_FACES: usize = 10_000;
/// Largest face value, either way from zero.
pub const MAX_FACE_VALUE: i64 = 1_000_000_000;
/// Longest simulated delay of one roll, in milliseconds.
pub const MAX_DELAY_MS: u64 = 60_000;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 1_000;
/// Largest dice file, in bytes.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What [`is_valid_type`] asks of a name, as a sentence.
pub const TYPE_RULE: &str = "a die's name is 1 to 32 letters, digits, '-' or '_'";

/// The fields of a die, in the order a die is written.
const FIELDS: &str = "`faces`, `error_rate`, `description`, `delay_ms`";

/// One die, as `dice.json` and `GET /dice/{type}` describe it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DieSpec {
    /// The faces; one is drawn uniformly, so a repeated face loads the die.
    pub faces: Vec<i64>,
    /// Chance, from 0 to 1, that one roll fails.
    pub error_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Simulated work per roll, `[min, max]` milliseconds; absent means the roller's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<[u64; 2]>,
}

/// The result of one roll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roll {
    Value(i64),
    Failed,
}

/// What is wrong with one field of a die: the field, and a sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field '{}' {}", self.field, self.problem)
    }
}

fn field_error(field: impl Into<String>, problem: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        problem: problem.into(),
    }
}

impl DieSpec {
    /// A die from its JSON object, every field checked against the rules; `ignore` names fields
    /// to pass over (the `type` of a die-service answer).
    pub fn from_json(value: &Value, ignore: &[&str]) -> Result<Self, FieldError> {
        let Value::Object(object) = value else {
            return Err(field_error(
                "(the die)",
                format!("must be a JSON object with {FIELDS}, not {}", kind(value)),
            ));
        };
        let mut faces = None;
        let mut error_rate = None;
        let mut description = None;
        let mut delay_ms = None;
        for (field, value) in object {
            match field.as_str() {
                "faces" => faces = Some(read_faces(value)?),
                "error_rate" => error_rate = Some(read_error_rate(value)?),
                "description" => description = Some(read_description(value)?),
                "delay_ms" => delay_ms = Some(read_delay(value)?),
                other if ignore.contains(&other) => {}
                other => {
                    return Err(field_error(
                        other,
                        format!("is unknown: unknown field `{other}`, expected one of {FIELDS}"),
                    ));
                }
            }
        }
        Ok(Self {
            faces: faces.ok_or_else(|| field_error("faces", "is missing"))?,
            error_rate: error_rate.ok_or_else(|| field_error("error_rate", "is missing"))?,
            description,
            delay_ms,
        })
    }

    /// One roll: fails with probability `error_rate`, else a uniformly drawn face.
    pub fn roll(&self, rng: &mut impl Rng) -> Roll {
        if rng.random::<f64>() < self.error_rate {
            return Roll::Failed;
        }
        Roll::Value(self.faces[rng.random_range(0..self.faces.len())])
    }

    /// Each distinct face with the share of the faces that carry it, in order of value: the
    /// distribution a fair draw of this die follows.
    pub fn face_shares(&self) -> Vec<(i64, f64)> {
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for face in &self.faces {
            *counts.entry(*face).or_default() += 1;
        }
        let mut shares: Vec<(i64, f64)> = counts
            .into_iter()
            .map(|(face, count)| (face, count as f64 / self.faces.len() as f64))
            .collect();
        shares.sort_unstable_by_key(|(face, _)| *face);
        shares
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn read_faces(value: &Value) -> Result<Vec<i64>, FieldError> {
    let list = value.as_array().ok_or_else(|| {
        field_error(
            "faces",
            format!("must be a list of whole numbers, not {}", kind(value)),
        )
    })?;
    if list.is_empty() {
        return Err(field_error("faces", "must list at least one face"));
    }
    if list.len() > MAX_FACES {
        return Err(field_error(
            "faces",
            format!("has {} faces; a die has at most {MAX_FACES}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, face)| {
            face.as_i64()
                .filter(|v| v.abs() <= MAX_FACE_VALUE)
                .ok_or_else(|| {
                    field_error(
                        format!("faces[{i}]"),
                        format!(
                            "must be a whole number from -{MAX_FACE_VALUE} to {MAX_FACE_VALUE}, got {face}"
                        ),
                    )
                })
        })
        .collect()
}

fn read_error_rate(value: &Value) -> Result<f64, FieldError> {
    let rate = value.as_f64().ok_or_else(|| {
        field_error(
            "error_rate",
            format!("must be a number, not {}", kind(value)),
        )
    })?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(field_error(
            "error_rate",
            format!("must be between 0 and 1, got {rate}"),
        ));
    }
    Ok(rate)
}

fn read_description(value: &Value) -> Result<String, FieldError> {
    let text = value.as_str().ok_or_else(|| {
        field_error(
            "description",
            format!("must be a string, not {}", kind(value)),
        )
    })?;
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(field_error(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(text.to_owned())
}

fn read_delay(value: &Value) -> Result<[u64; 2], FieldError> {
    let shape = || {
        field_error(
            "delay_ms",
            format!(
                "must be [min, max], two whole numbers of milliseconds from 0 to {MAX_DELAY_MS}, got {value}"
            ),
        )
    };
    let [min, max] = value.as_array().map(Vec::as_slice).ok_or_else(shape)? else {
        return Err(shape());
    };
    let bound = |v: &Value| {
        v.as_u64()
            .filter(|ms| *ms <= MAX_DELAY_MS)
            .ok_or_else(shape)
    };
    let (min, max) = (bound(min)?, bound(max)?);
    if min > max {
        return Err(field_error(
            "delay_ms",
            format!("minimum {min} is greater than maximum {max}"),
        ));
    }
    Ok([min, max])
}

/// Every die, keyed and therefore sorted by type.
pub type Catalog = BTreeMap<String, DieSpec>;

/// Why a dice file was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read dice file '{file}': {error}")]
    Read { file: String, error: std::io::Error },
    #[error("dice file '{file}' is {bytes} bytes; a dice file is at most {MAX_FILE_BYTES}")]
    TooLarge { file: String, bytes: u64 },
    #[error("dice file '{file}' starts with a byte-order mark; save it as UTF-8 without one (BOM)")]
    ByteOrderMark { file: String },
    #[error("dice file '{file}' is not a JSON object of dice: {error}")]
    Syntax {
        file: String,
        error: serde_json::Error,
    },
    #[error("dice file '{file}' holds no dice")]
    Empty { file: String },
    #[error("dice file '{file}' holds {count} dice; a file holds at most {MAX_DICE}")]
    TooMany { file: String, count: usize },
    #[error("dice file '{file}' names die '{die}' twice; each die needs a name of its own")]
    Duplicate { file: String, die: String },
    #[error("dice file '{file}': die '{die}': {problem}")]
    Die {
        file: String,
        die: String,
        problem: String,
    },
    #[error("dice file '{file}': die '{die}': {error}")]
    Field {
        file: String,
        die: String,
        error: FieldError,
    },
}

/// Loads and checks the dice file at `path`.
pub fn load_file(path: &Path) -> Result<Catalog, LoadError> {
    let file = path.display().to_string();
    let read = |error| LoadError::Read {
        file: file.clone(),
        error,
    };
    let bytes = std::fs::metadata(path).map_err(read)?.len();
    if bytes > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { file, bytes });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    parse(&file, &text)
}

/// Parses and checks a dice file's text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Catalog, LoadError> {
    let file = || file.to_owned();
    if text.starts_with('\u{feff}') {
        return Err(LoadError::ByteOrderMark { file: file() });
    }
    let mut json = serde_json::Deserializer::from_str(text);
    let Entries(entries) = json
        .deserialize_map(EntriesVisitor)
        // Nothing may follow the object.
        .and_then(|entries| json.end().map(|()| entries))
        .map_err(|error| LoadError::Syntax {
            file: file(),
            error,
        })?;
    if entries.is_empty() {
        return Err(LoadError::Empty { file: file() });
    }
    if entries.len() > MAX_DICE {
        return Err(LoadError::TooMany {
            file: file(),
            count: entries.len(),
        });
    }
    let mut catalog = Catalog::new();
    for (die, value) in entries {
        if !is_valid_type(&die) {
            return Err(LoadError::Die {
                file: file(),
                problem: TYPE_RULE.to_owned(),
                die,
            });
        }
        let spec = DieSpec::from_json(&value, &[]).map_err(|error| LoadError::Field {
            file: file(),
            die: die.clone(),
            error,
        })?;
        if catalog.insert(die.clone(), spec).is_some() {
            return Err(LoadError::Duplicate { file: file(), die });
        }
    }
    Ok(catalog)
}

/// A JSON object's entries in order, repeated names kept, so that a repeated die is seen.
struct Entries(Vec<(String, Value)>);

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object whose keys are die names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(Entries(entries))
    }
}

/// Whether `name` can be a die type: short, and safe in a URL path and a metric label.
pub fn is_valid_type(name: &str) -> bool {
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
            unknown.starts_with("dice file 'test.json': die 'bad': field 'colour' is unknown: unknown field `colour`"),
            "{unknown}"
        );
        assert_eq!(
            error_of(r#"{"bad": {"faces": [1]}}"#),
            "dice file 'test.json': die 'bad': field 'error_rate' is missing"
        );
        assert!(error_of("[1, 2]").starts_with("dice file 'test.json' is not a JSON object"));
        assert!(error_of("{}").contains("holds no dice"));
        assert!(error_of(r#"{"a b": {"faces": [1], "error_rate": 0}}"#).contains("die 'a b'"));
    }

    #[test]
    fn every_type_error_names_its_field() {
        for (die, field) in [
            (
                r#"{"faces": "1,2", "error_rate": 0}"#,
                "field 'faces' must be a list",
            ),
            (
                r#"{"faces": [1, "x"], "error_rate": 0}"#,
                "field 'faces[1]' must be a whole number",
            ),
            (
                r#"{"faces": [1.5], "error_rate": 0}"#,
                "field 'faces[0]' must be a whole number",
            ),
            (
                r#"{"faces": [1], "error_rate": "low"}"#,
                "field 'error_rate' must be a number, not a string",
            ),
            (
                r#"{"faces": [1], "error_rate": 0, "description": 7}"#,
                "field 'description' must be a string",
            ),
            (
                r#"{"faces": [1], "error_rate": 0, "delay_ms": 5}"#,
                "field 'delay_ms' must be [min, max]",
            ),
            (
                r#"{"faces": [1], "error_rate": 0, "delay_ms": [1, 2, 3]}"#,
                "field 'delay_ms' must be [min, max]",
            ),
            (
                r#"{"faces": [1], "error_rate": 0, "delay_ms": [-1, 2]}"#,
                "field 'delay_ms' must be [min, max]",
            ),
            ("7", "field '(the die)' must be a JSON object"),
        ] {
            let error = error_of(&format!(r#"{{"bad": {die}}}"#));
            assert!(
                error.starts_with(&format!("dice file 'test.json': die 'bad': {field}")),
                "{die}: {error}"
            );
        }
    }

    #[test]
    fn limits_keep_the_work_and_the_totals_small() {
        let faces: Vec<String> = (0..=MAX_FACES).map(|i| i.to_string()).collect();
        let many = format!(
            r#"{{"big": {{"faces": [{}], "error_rate": 0}}}}"#,
            faces.join(",")
        );
        assert_eq!(
            error_of(&many),
            "dice file 'test.json': die 'big': field 'faces' has 10001 faces; a die has at most 10000"
        );
        let huge = format!(
            r#"{{"big": {{"faces": [1, {}], "error_rate": 0}}}}"#,
            i64::MAX
        );
        assert!(
            error_of(&huge).contains("field 'faces[1]' must be a whole number from -1000000000")
        );
        let dice: Vec<String> = (0..=MAX_DICE)
            .map(|i| format!(r#""d{i}": {{"faces": [1], "error_rate": 0}}"#))
            .collect();
        assert_eq!(
            error_of(&format!("{{{}}}", dice.join(","))),
            "dice file 'test.json' holds 1001 dice; a file holds at most 1000"
        );
        // The largest total a batch can reach still fits.
        assert!(i64::from(u32::MAX).checked_mul(MAX_FACE_VALUE).is_some());
        assert!(TYPE_RULE.contains(&MAX_TYPE_LEN.to_string()));
    }

    #[test]
    fn a_repeated_die_and_a_byte_order_mark_are_named() {
        assert_eq!(
            error_of(
                r#"{"fair": {"faces": [1], "error_rate": 0}, "fair": {"faces": [2], "error_rate": 0}}"#
            ),
            "dice file 'test.json' names die 'fair' twice; each die needs a name of its own"
        );
        assert_eq!(
            error_of("\u{feff}{\"fair\": {\"faces\": [1], \"error_rate\": 0}}"),
            "dice file 'test.json' starts with a byte-order mark; save it as UTF-8 without one (BOM)"
        );
        assert!(
            error_of(r#"{"fair": {"faces": [1], "error_rate": 0}} x"#)
                .contains("not a JSON object")
        );
    }

    #[test]
    fn shares_are_counted_in_one_pass() {
        let die = DieSpec {
            faces: vec![6, 1, 6, 6],
            error_rate: 0.0,
            description: None,
            delay_ms: None,
        };
        assert_eq!(die.face_shares(), vec![(1, 0.25), (6, 0.75)]);
        // A million distinct faces would have taken minutes with a count per face; the limit
        // refuses them, and the count itself is linear.
        let wide = DieSpec {
            faces: (0..MAX_FACES as i64).collect(),
            ..die
        };
        assert_eq!(wide.face_shares().len(), MAX_FACES);
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
