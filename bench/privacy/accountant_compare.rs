//! Accountants side by side: epsilon of the same DP-SGD runs under Opacus's RDP grid, the
//! extended RDP grid and the PLD accountant, the noise each needs for a target epsilon, and
//! the time per evaluation. The figures in docs/METHODS.md ("Privacy accounting") and the
//! choice of the default accountant come from this program.
//!
//! Run: `cargo run --release -p linkrisk --example accountant_compare`

use std::time::Instant;

use linkrisk::privacy::{Accountant, RdpOrders};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opacus = Accountant::Rdp { orders: RdpOrders::Opacus };
    let extended = Accountant::Rdp { orders: RdpOrders::Extended };
    let pld = Accountant::default();
    println!("epsilon of one run (delta 6e-6 unless stated), and seconds per evaluation");
    println!(
        "{:>8} {:>7} {:>6} | {:>10} {:>10} {:>10} | {:>8} | {:>7} {:>7} {:>7}",
        "q", "sigma", "steps", "rdp-opacus", "rdp-ext", "pld", "pld/rdp", "t_opac", "t_ext", "t_pld"
    );
    let runs = [
        (0.01, 0.6, 2000u64),
        (0.01, 1.0, 1000),
        (0.01, 2.0, 1000),
        (0.01, 5.0, 1000),
        (0.01, 20.0, 1000),
        (0.01, 100.0, 1000),
        (0.004267, 1.1, 3515),
        (0.05, 1.0, 400),
        (0.1, 3.0, 200),
        (0.2, 8.0, 100),
        (0.08, 1.5, 250),
    ];
    for (q, sigma, steps) in runs {
        let time = |a: &Accountant| -> Result<(f64, f64), Box<dyn std::error::Error>> {
            let t = Instant::now();
            let e = a.epsilon(q, sigma, steps, 6e-6)?.epsilon;
            Ok((e, t.elapsed().as_secs_f64()))
        };
        let (eo, to) = time(&opacus)?;
        let (ee, te) = time(&extended)?;
        let (ep, tp) = time(&pld)?;
        println!(
            "{q:>8} {sigma:>7} {steps:>6} | {eo:>10.5} {ee:>10.5} {ep:>10.5} | {:>7.1}% | {to:>7.3} {te:>7.3} {tp:>7.3}",
            100.0 * (ep / ee.min(eo) - 1.0)
        );
    }
    println!();
    println!(
        "noise multiplier for a target epsilon (delta 6e-6, q 0.01, 1000 steps), and calibration seconds"
    );
    println!(
        "{:>7} | {:>10} {:>10} {:>10} | {:>8} | {:>6} {:>6} {:>6}",
        "eps", "rdp-opacus", "rdp-ext", "pld", "pld/ext", "t_opac", "t_ext", "t_pld"
    );
    for eps in [0.05, 0.12, 0.34, 1.0, 3.0, 8.0] {
        let cal = |a: &Accountant| -> (String, f64, f64) {
            let t = Instant::now();
            match a.calibrate(eps, 6e-6, 0.01, 1000) {
                Ok(c) => {
                    (format!("{:.4}", c.noise_multiplier), c.noise_multiplier, t.elapsed().as_secs_f64())
                }
                Err(_) => ("none".to_string(), f64::NAN, t.elapsed().as_secs_f64()),
            }
        };
        let (so, _, to) = cal(&opacus);
        let (se, ve, te) = cal(&extended);
        let (sp, vp, tp) = cal(&pld);
        println!(
            "{eps:>7} | {so:>10} {se:>10} {sp:>10} | {:>7.1}% | {to:>6.2} {te:>6.2} {tp:>6.2}",
            100.0 * (vp / ve - 1.0)
        );
    }
    Ok(())
}
