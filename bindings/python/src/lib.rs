//! `linkrisk._linkrisk`: the Rust half of the Python package. Thin: every function turns
//! Python arguments into the library's validated configs (as the CLI turns flags), runs the
//! library with the GIL released, and hands back the report as the CLI's JSON text; the
//! Python half (`python/linkrisk/`) wraps it in `Report` objects. Nothing here computes a
//! statistic.

mod audits;
mod cohort;
mod error;
mod progress;

use pyo3::prelude::*;

/// The compiled module; `linkrisk/__init__.py` re-exports it with docstrings.
#[pymodule]
fn _linkrisk(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", linkrisk::VERSION)?;
    m.add_class::<cohort::PyCohort>()?;
    m.add_function(wrap_pyfunction!(cohort::cohort_from_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(cohort::load_cohort, m)?)?;
    m.add_function(wrap_pyfunction!(audits::relink, m)?)?;
    m.add_function(wrap_pyfunction!(audits::reid, m)?)?;
    m.add_function(wrap_pyfunction!(audits::attributes, m)?)?;
    m.add_function(wrap_pyfunction!(audits::utility, m)?)?;
    m.add_function(wrap_pyfunction!(audits::epsilon, m)?)?;
    m.add_function(wrap_pyfunction!(audits::noise_multiplier, m)?)?;
    m.add_function(wrap_pyfunction!(audits::record, m)?)?;
    m.add_function(wrap_pyfunction!(audits::render_report, m)?)?;
    Ok(())
}
