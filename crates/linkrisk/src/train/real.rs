//! The float type the training code is generic over: `f32` for training, `f64` for the
//! finite-difference gradient checks that prove the analytic gradients right.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::Neg;

/// A real scalar (`f32` or `f64`) usable in faer GEMMs and in the loss code.
pub trait Real:
    faer::traits::RealField
    + Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + Neg<Output = Self>
    + Sum
    + 'static
{
    /// Convert from `f64` (rounding for `f32`).
    fn of(x: f64) -> Self;
    /// Convert to `f64`.
    fn to_f64(self) -> f64;
    /// e^self.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The larger of two values.
    fn max(self, other: Self) -> Self;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            #[inline]
            fn of(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
        }
    };
}

impl_real!(f32);
impl_real!(f64);
