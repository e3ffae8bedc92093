use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().unwrap()).collect();
    let (m, n, d, par, layout) = (args[0], args[1], args[2], args[3], args[4]);
    let a: Vec<f32> = (0..m * d).map(|i| ((i * 7) % 13) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..n * d).map(|i| ((i * 5) % 11) as f32 * 0.1).collect();
    let mut c = vec![0f32; m * n];
    let par = if par == 0 { Par::Seq } else { Par::rayon(par) };
    let am = MatRef::from_row_major_slice(&a, m, d);
    let bm = MatRef::from_row_major_slice(&b, n, d);
    if layout == 0 {
        matmul(MatMut::from_row_major_slice_mut(&mut c, m, n), Accum::Replace, am, bm.transpose(), 1.0f32, par);
    } else {
        // C^T (n x m) column-major = same memory as C row-major
        matmul(MatMut::from_column_major_slice_mut(&mut c, n, m), Accum::Replace, bm, am.transpose(), 1.0f32, par);
    }
    let mut s = 0f64; for x in &c { s += *x as f64; } println!("ok {s}");
}
