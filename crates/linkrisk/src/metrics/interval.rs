//! Point estimates with their confidence intervals, and the Wilson score interval for a
//! binomial proportion (Wilson 1927, "Probable inference, the law of succession, and
//! statistical inference", JASA 22:209-212).

#![allow(clippy::excessive_precision)] // reference constants are quoted in full

use serde::{Deserialize, Serialize};

/// A point estimate with its confidence interval. Every reported statistic carries one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point estimate.
    pub value: f64,
    /// Lower end of the interval.
    pub ci_low: f64,
    /// Upper end of the interval.
    pub ci_high: f64,
    /// Coverage of the interval, e.g. 0.95.
    pub level: f64,
    /// How the interval was computed (`wilson`, `bootstrap_patient`, `delong`, ...).
    pub method: &'static str,
}

impl Estimate {
    /// The interval as `[low, high]`, the shape reports use (`ci95_*` keys).
    pub fn ci(&self) -> [f64; 2] {
        [self.ci_low, self.ci_high]
    }
}

/// Two-sided standard normal quantile for `level` (e.g. 1.959963984540054 for 0.95).
pub fn z_for_level(level: f64) -> f64 {
    normal_quantile(0.5 + level / 2.0)
}

/// Standard normal quantile (Acklam's rational approximation refined by one Halley step;
/// relative error below 1e-15 over (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "normal_quantile: p must be in (0, 1), got {p}");
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] =
        [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    let p_low = 0.02425;
    let x = if p < p_low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - p_low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One Halley step against the exact CDF brings the error to machine precision.
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// Standard normal CDF via erfc (W. J. Cody's rational Chebyshev approximation, as in
/// most libm implementations; absolute error below 1e-16).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Complementary error function, double precision (Numerical Recipes 3rd ed. `erfccheb`
/// is not precise enough; this uses the W. J. Cody 1969 rational approximations).
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.5 {
        return 1.0 - erf_small(x);
    }
    erfcx(x) * exp_neg_sq(x)
}

/// Scaled complementary error function exp(x^2) erfc(x) (Cody's rational approximations for
/// x >= 0.5, relative error near 1e-16), finite where erfc underflows: log-tail
/// computations (`ln erfc(x) = ln erfcx(x) - x^2`) use it.
pub fn erfcx(x: f64) -> f64 {
    if x < 0.5 {
        return (x * x).exp() * erfc(x);
    }
    if x < 4.0 {
        const P: [f64; 9] = [
            5.64188496988670089e-1,
            8.88314979438837594,
            6.61191906371416295e1,
            2.98635138197400131e2,
            8.81952221241769090e2,
            1.71204761263407058e3,
            2.05107837782607147e3,
            1.23033935479799725e3,
            2.15311535474403846e-8,
        ];
        const Q: [f64; 8] = [
            1.57449261107098347e1,
            1.17693950891312499e2,
            5.37181101862009858e2,
            1.62138957456669019e3,
            3.29079923573345963e3,
            4.36261909014324716e3,
            3.43936767414372164e3,
            1.23033935480374942e3,
        ];
        let mut num = P[8] * x;
        let mut den = x;
        for i in 0..7 {
            num = (num + P[i]) * x;
            den = (den + Q[i]) * x;
        }
        return (num + P[7]) / (den + Q[7]);
    }
    const P: [f64; 6] = [
        3.05326634961232344e-1,
        3.60344899949804439e-1,
        1.25781726111229246e-1,
        1.60837851487422766e-2,
        6.58749161529837803e-4,
        1.63153871373020978e-2,
    ];
    const Q: [f64; 5] = [
        2.56852019228982242,
        1.87295284992346725,
        5.27905102951428412e-1,
        6.05183413124413191e-2,
        2.33520497626869185e-3,
    ];
    let z = 1.0 / (x * x);
    let mut num = P[5] * z;
    let mut den = z;
    for i in 0..4 {
        num = (num + P[i]) * z;
        den = (den + Q[i]) * z;
    }
    let r = z * (num + P[4]) / (den + Q[4]);
    (1.0 / std::f64::consts::PI.sqrt() - r) / x
}

fn erf_small(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.16112374387056560,
        1.13864154151050156e2,
        3.77485237685302021e2,
        3.20937758913846947e3,
        1.85777706184603153e-1,
    ];
    const B: [f64; 4] =
        [2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3, 2.84423683343917062e3];
    let z = x * x;
    let mut num = A[4] * z;
    let mut den = z;
    for i in 0..3 {
        num = (num + A[i]) * z;
        den = (den + B[i]) * z;
    }
    x * (num + A[3]) / (den + B[3])
}

/// exp(-x^2) computed as exp(-xs^2) exp(-(x-xs)(x+xs)) to avoid cancellation (Cody).
fn exp_neg_sq(x: f64) -> f64 {
    let xs = (x * 16.0).trunc() / 16.0;
    let del = (x - xs) * (x + xs);
    (-xs * xs).exp() * (-del).exp()
}

/// Wilson score interval for `successes` out of `trials` at coverage `level`.
/// Fractional successes (expected hits under random tie-breaking) are allowed.
pub fn wilson(successes: f64, trials: f64, level: f64) -> Estimate {
    assert!(trials >= 0.0 && successes >= 0.0 && successes <= trials + 1e-9, "wilson: bad counts");
    if trials == 0.0 {
        return Estimate { value: f64::NAN, ci_low: 0.0, ci_high: 1.0, level, method: "wilson" };
    }
    let z = z_for_level(level);
    let p = (successes / trials).min(1.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / trials;
    let center = (p + z2 / (2.0 * trials)) / denom;
    let half = z * (p * (1.0 - p) / trials + z2 / (4.0 * trials * trials)).sqrt() / denom;
    Estimate {
        value: p,
        ci_low: (center - half).max(0.0),
        ci_high: (center + half).min(1.0),
        level,
        method: "wilson",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_matches_scipy() {
        // scipy.stats.norm.ppf (scipy 1.17.1): 0.975 -> 1.959963984540054, 0.999 -> 3.090232306167813,
        // 1e-10 -> -6.361340902404056
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-14);
        assert!((normal_quantile(0.999) - 3.090232306167813).abs() < 1e-13);
        assert!((normal_quantile(1e-10) + 6.361340902404056).abs() < 1e-12);
        // scipy.stats.norm.cdf(-3.0) = 0.0013498980316300933, cdf(1.5) = 0.9331927987311419
        assert!((normal_cdf(-3.0) - 0.0013498980316300933).abs() < 1e-16);
        assert!((normal_cdf(1.5) - 0.9331927987311419).abs() < 1e-15);
    }

    #[test]
    fn erfcx_matches_scipy() {
        // scipy.special.erfcx (scipy 1.17.1)
        let cases = [
            (0.5, 0.6156903441929258),
            (0.7, 0.525930337349441),
            (1.0, 0.427583576155807),
            (2.5, 0.2108063640611436),
            (3.99, 0.1373240409142297),
            (4.0, 0.1369994576250614),
            (7.5, 0.07457369306287667),
            (30.0, 0.018795888861416754),
            (1e3, 0.0005641893014533876),
            (1e8, 5.641895835477563e-09),
        ];
        for (x, want) in cases {
            let got = erfcx(x);
            assert!(((got - want) / want).abs() < 1e-14, "erfcx({x}) = {got}, scipy {want}");
        }
        assert!((erfc(2.5) - 0.2108063640611436 * (-6.25f64).exp()).abs() < 1e-17);
    }

    #[test]
    fn wilson_matches_statsmodels() {
        // statsmodels 0.15.0 proportion_confint(15, 100, alpha=0.05, method="wilson")
        // = (0.09305985283656629, 0.23283559590832367)
        let e = wilson(15.0, 100.0, 0.95);
        assert!((e.ci_low - 0.09305985283656629).abs() < 1e-12, "{e:?}");
        assert!((e.ci_high - 0.23283559590832367).abs() < 1e-12, "{e:?}");
        // proportion_confint(0, 50, method="wilson") = (0.0, 0.07134759913335874)
        let e = wilson(0.0, 50.0, 0.95);
        assert_eq!(e.ci_low, 0.0);
        assert!((e.ci_high - 0.07134759913335874).abs() < 1e-12, "{e:?}");
    }
}
