//! One file per subcommand: clap `Args` and a `run` that converts them into the library's
//! validated config, calls the library and prints.

pub mod inspect;
pub mod relink;
