//! Linear probes: L2-regularised logistic regression with the regularisation chosen by
//! cross-validation, used for attribute inference and finding-level utility.
