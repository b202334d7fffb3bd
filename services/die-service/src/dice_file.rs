//! Which dice the service serves: the file it is given, or the lab's own `dice.json`, compiled in
//! so that the binary needs no file beside it.

use std::path::Path;

use dice::{Catalog, LoadError};

/// The dice the lab ships with, compiled in as the default dice file.
const BUILT_IN: &str = include_str!("../../../dice.json");

/// How the built-in file is named in messages and in the start-up settings.
pub(crate) const BUILT_IN_NAME: &str = "built-in dice.json";

/// Loads the file at `path`, or the built-in dice when `path` is `None`.
pub(crate) fn load(path: Option<&Path>) -> Result<Catalog, LoadError> {
    match path {
        None => dice::parse(BUILT_IN_NAME, BUILT_IN),
        Some(path) => dice::load_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_file_holds_the_workshop_dice_and_the_polyhedral_set() {
        let dice = load(None).unwrap();
        for die in [
            "fair", "risky", "extreme", "d4", "d6", "d8", "d10", "d12", "d20", "d100", "loaded",
        ] {
            assert!(dice.contains_key(die), "{die} is missing");
        }
        assert_eq!(dice["risky"].faces, vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(dice["risky"].error_rate, 0.1);
        assert_eq!(dice["extreme"].faces, vec![0, 0, 6, 6, 6, 6]);
        assert_eq!(dice["extreme"].error_rate, 0.5);
        for die in ["fair", "risky", "extreme"] {
            assert_eq!(dice[die].delay_ms, None, "{die} keeps the default delay");
        }
    }
}
