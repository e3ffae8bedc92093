//! Number formatting shared by every renderer, so Markdown, HTML and plot labels show the
//! same digits. Formats only round: a rendered number parses back to its JSON value within
//! half a unit of its last shown digit (the tests check exactly that).

/// `value` with `digits` significant digits in plain decimal notation (no exponent).
pub fn sig(value: f64, digits: i32) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    if value == 0.0 {
        return "0".to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 12) as usize;
    let text = format!("{value:.decimals$}");
    // Rounding can carry into a new digit (9.996 -> 10.00): one decimal fewer then.
    let rounded: f64 = text.parse().unwrap_or(value);
    if decimals > 0 && rounded.abs().log10().floor() as i32 > magnitude {
        return format!("{value:.prec$}", prec = decimals - 1);
    }
    text
}

/// A proportion as a percentage with 3 significant digits: 0.00523 -> `0.523%`.
pub fn pct(value: f64) -> String {
    format!("{}%", sig(value * 100.0, 3))
}

/// An interval of proportions: `0.420% – 0.550%`.
pub fn pct_interval(ci: [f64; 2]) -> String {
    format!("{} – {}", pct(ci[0]), pct(ci[1]))
}

/// A multiple (lift): 52.3 -> `52.3×`.
pub fn times(value: f64) -> String {
    format!("{}×", sig(value, 3))
}

/// A score in [0, 1] such as AUROC, mAP or MRR, with 4 decimals: `0.7963`.
pub fn score(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    format!("{value:.4}")
}

/// An interval of scores: `0.7810 – 0.8120`.
pub fn score_interval(ci: [f64; 2]) -> String {
    format!("{} – {}", score(ci[0]), score(ci[1]))
}

/// A p-value: 3 decimals, or 2 significant digits in exponent notation below 0.001.
pub fn p_value(value: f64) -> String {
    if !value.is_finite() {
        "–".to_string()
    } else if value != 0.0 && value.abs() < 1e-3 {
        format!("{value:.1e}")
    } else {
        format!("{value:.3}")
    }
}

/// A count with thousands separators (`43,793`); non-integers get 3 significant digits.
pub fn count(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    if value.fract() != 0.0 || value.abs() >= 1e15 {
        return sig(value, 3);
    }
    let digits = format!("{}", value.abs() as u64);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A median rank: a count, or one decimal when it is a half (even-sized median).
pub fn rank(value: f64) -> String {
    if value.fract() == 0.0 {
        count(value)
    } else {
        format!("{value:.1}")
    }
}

/// Seconds of wall time: `12.5 s`, `0.04 s`.
pub fn seconds(value: f64) -> String {
    format!("{} s", sig(value, 3))
}

/// A privacy budget: `0.34`, `8`, up to 3 significant digits, trailing zeros dropped.
pub fn epsilon(value: f64) -> String {
    let text = sig(value, 3);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian; Howard Hinnant's
/// days-to-civil algorithm).
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

/// `N` for a pool: `10,000`, or `full` for the full database.
pub fn pool(pool: super::model::Pool) -> String {
    match pool {
        super::model::Pool::Size(n) => count(n as f64),
        super::model::Pool::Full => "full".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits_round_and_carry() {
        assert_eq!(sig(0.00523, 3), "0.00523");
        assert_eq!(sig(52.34, 3), "52.3");
        assert_eq!(sig(1234.6, 3), "1235", "integer digits are never dropped");
        assert_eq!(sig(9.996, 3), "10.0");
        assert_eq!(sig(0.0999999, 3), "0.100");
        assert_eq!(sig(-0.25, 2), "-0.25");
        assert_eq!(sig(0.0, 3), "0");
        assert_eq!(pct(0.0048), "0.480%");
        assert_eq!(pct(2.2835e-5), "0.00228%");
        assert_eq!(pct(0.463), "46.3%");
        assert_eq!(times(47.999), "48.0×");
    }

    #[test]
    fn counts_scores_and_p_values() {
        assert_eq!(count(43793.0), "43,793");
        assert_eq!(count(100.0), "100");
        assert_eq!(count(1000000.0), "1,000,000");
        assert_eq!(count(-1000.0), "-1,000");
        assert_eq!(rank(812.5), "812.5");
        assert_eq!(score(0.79634), "0.7963");
        assert_eq!(p_value(0.0123), "0.012");
        assert_eq!(p_value(2.13e-5), "2.1e-5");
        assert_eq!(epsilon(0.34), "0.34");
        assert_eq!(epsilon(8.0), "8");
        assert_eq!(epsilon(1.0), "1");
    }

    #[test]
    fn utc_dates_match_known_instants() {
        // `date -u -d @0`, `@951782400` (leap day 2000), `@1767225599`.
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59 UTC");
    }
}
