//! End-to-end tests of the `linkrisk` binary, one module per area.

mod accountant;
mod train_heads;
mod util;
