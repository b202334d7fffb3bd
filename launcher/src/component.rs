//! One process of the lab, as the launcher starts it: what it runs, with which arguments and
//! environment, and the part of the lab it is (its name, ports and readiness URL come from
//! [`parts::Part`]). `backends` makes them for the backends found on `PATH`; `stack` starts,
//! watches and stops them.

use std::path::PathBuf;

use parts::Part;

/// One process of the lab, ready to be started.
pub struct Component {
    pub part: Part,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Component {
    /// A backend run by `program`.
    pub fn backend(part: Part, program: PathBuf, args: Vec<String>) -> Self {
        Self {
            part,
            program,
            args,
            env: Vec::new(),
        }
    }

    /// A dice-lab service, or the store, run by this binary's hidden `serve` command on its
    /// default ports.
    pub fn own(part: Part) -> Self {
        let program = std::env::current_exe().expect("the launcher knows where it is");
        Self {
            part,
            program,
            args: vec!["serve".into(), part.name().into()],
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, key: &str, value: impl Into<PathBuf>) -> Self {
        self.env
            .push((key.to_owned(), value.into().display().to_string()));
        self
    }

    pub fn name(&self) -> &'static str {
        self.part.name()
    }
}
