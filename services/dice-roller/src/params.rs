//! The query strings of `/roll` and `/roll-async`, read strictly.
//!
//! Every way a query can be wrong gets its own sentence: a missing or empty `die`, a `times` that is
//! not a whole number from 1 to the configured maximum, an unknown `fetch` mode, a parameter given
//! twice or one the route does not take. Values quoted back are cut short, so a huge query string
//! cannot make a huge error.

use std::collections::BTreeMap;

/// How `/roll-async` gets the die specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// One fetch before the rolls (the default).
    Once,
    /// Every roll fetches the spec itself: N concurrent die-service calls.
    Each,
}

/// `/roll?die=TYPE`.
#[derive(Debug, PartialEq, Eq)]
pub struct RollQuery {
    pub die: String,
}

/// `/roll-async?die=TYPE&times=N[&fetch=once|each]`.
#[derive(Debug, PartialEq, Eq)]
pub struct RollAsyncQuery {
    pub die: String,
    pub times: u32,
    pub fetch: Fetch,
}

/// The longest piece of user input quoted back in an error.
const QUOTE_LEN: usize = 40;

impl RollQuery {
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut params = Params::parse(query, "/roll", &["die"])?;
        Ok(Self { die: params.die()? })
    }
}

impl RollAsyncQuery {
    pub fn parse(query: &str, max_times: u32) -> Result<Self, String> {
        let mut params = Params::parse(query, "/roll-async", &["die", "times", "fetch"])?;
        let die = params.die()?;
        let range = format!("a whole number from 1 to {max_times}");
        let times = match params.take("times") {
            None => return Err(format!("times is required: {range}")),
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(times) if (1..=max_times).contains(&times) => times,
                _ => return Err(format!("times must be {range}, got '{}'", quote(&raw))),
            },
        };
        let fetch = match params.take("fetch").as_deref() {
            None | Some("once") => Fetch::Once,
            Some("each") => Fetch::Each,
            Some(other) => {
                return Err(format!(
                    "fetch must be 'once' or 'each', got '{}'",
                    quote(other)
                ));
            }
        };
        Ok(Self { die, times, fetch })
    }
}

struct Params(BTreeMap<String, String>);

impl Params {
    fn parse(query: &str, route: &str, allowed: &[&str]) -> Result<Self, String> {
        let mut params = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(format!(
                    "{route} takes no parameter '{}'; it takes {}",
                    quote(&name),
                    allowed.join(", ")
                ));
            }
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(format!("parameter '{name}' is given more than once"));
            }
        }
        Ok(Self(params))
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    fn die(&mut self) -> Result<String, String> {
        match self.take("die") {
            Some(die) if !die.trim().is_empty() => Ok(die.trim().to_owned()),
            _ => Err(
                "die is required, for example ?die=fair (GET /dice on the die-service lists them)"
                    .into(),
            ),
        }
    }
}

/// At most `QUOTE_LEN` (40) characters of `text`, with an ellipsis when cut.
pub fn quote(text: &str) -> String {
    let mut shown: String = text.chars().take(QUOTE_LEN).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_queries_parse() {
        assert_eq!(RollQuery::parse("die=fair").unwrap().die, "fair");
        let q = RollAsyncQuery::parse("die=d20&times=100&fetch=each", 100).unwrap();
        assert_eq!(
            (q.die.as_str(), q.times, q.fetch),
            ("d20", 100, Fetch::Each)
        );
        assert_eq!(
            RollAsyncQuery::parse("times=1&die=x", 100).unwrap().fetch,
            Fetch::Once
        );
    }

    #[test]
    fn every_bad_times_names_the_limit() {
        for times in ["0", "-1", "abc", "", "101", "1.5", "99999999999999999999"] {
            let error = RollAsyncQuery::parse(&format!("die=fair&times={times}"), 100).unwrap_err();
            assert!(error.contains("from 1 to 100"), "{times}: {error}");
        }
        let missing = RollAsyncQuery::parse("die=fair", 100).unwrap_err();
        assert_eq!(missing, "times is required: a whole number from 1 to 100");
    }

    #[test]
    fn other_mistakes_are_named() {
        assert!(
            RollQuery::parse("")
                .unwrap_err()
                .starts_with("die is required")
        );
        assert!(
            RollQuery::parse("die=")
                .unwrap_err()
                .starts_with("die is required")
        );
        assert!(
            RollQuery::parse("die=a&die=b")
                .unwrap_err()
                .contains("more than once")
        );
        assert!(
            RollQuery::parse("die=a&colour=red")
                .unwrap_err()
                .contains("no parameter 'colour'")
        );
        let fetch = RollAsyncQuery::parse("die=a&times=2&fetch=twice", 100).unwrap_err();
        assert_eq!(fetch, "fetch must be 'once' or 'each', got 'twice'");
        let long = "x".repeat(10_000);
        assert!(
            RollAsyncQuery::parse(&format!("die=a&times={long}"), 100)
                .unwrap_err()
                .len()
                < 120
        );
    }
}
