//! Projection heads trained on frozen features with a symmetric InfoNCE loss, non-private
//! or with DP-SGD (Poisson sampling of patients, per-patient clipping, Gaussian noise).
