//! Synthetic cohorts with known ground truth (patients, studies, findings, demographics,
//! a model-specialisation knob) for the demo and the tests. See docs/METHODS.md.
