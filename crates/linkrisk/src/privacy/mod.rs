//! Differential-privacy accounting: the Rényi-DP accountant for the Poisson-subsampled
//! Gaussian mechanism (Opacus's orders and conversion) and noise calibration.
