use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use std::time::Instant;
fn main() {
    let n = 32000;
    let d = 512;
    let k = 84;
    let xs: Vec<f32> = (0..n * d).map(|i| ((i * 7) % 101) as f32 / 101.0).collect();
    let x = MatRef::from_row_major_slice(&xs, n, d);
    let xc = Mat::<f32>::from_fn(n, d, |i, j| x[(i, j)]);
    let r: Vec<f32> = (0..n * k).map(|i| ((i * 13) % 17) as f32 / 17.0).collect();
    let rm = MatRef::from_column_major_slice(&r, n, k);
    let fl = 2.0 * (n * d * k) as f64 / 1e9;
    for rep in 0..3 {
        let mut g = Mat::<f32>::zeros(d, k);
        let t = Instant::now();
        matmul(&mut g, Accum::Replace, x.transpose(), rm, 1.0, Par::rayon(0));
        let a = t.elapsed().as_secs_f64();
        let mut g2 = Mat::<f32>::zeros(d, k);
        let t = Instant::now();
        matmul(g2.as_mut().transpose_mut(), Accum::Replace, rm.transpose(), x, 1.0, Par::rayon(0));
        let b = t.elapsed().as_secs_f64();
        let mut g3 = Mat::<f32>::zeros(d, k);
        let t = Instant::now();
        let block = 4096;
        let mut start = 0;
        while start < n {
            let end = (start + block).min(n);
            matmul(
                &mut g3,
                if start == 0 { Accum::Replace } else { Accum::Add },
                x.subrows(start, end - start).transpose(),
                rm.subrows(start, end - start),
                1.0,
                Par::rayon(0),
            );
            start = end;
        }
        let c = t.elapsed().as_secs_f64();
        use rayon::prelude::*;
        let t = Instant::now();
        let chunks: Vec<(usize, usize)> = (0..n).step_by(8192).map(|s| (s, (s + 8192).min(n))).collect();
        let g4 = chunks
            .par_iter()
            .map(|&(s, e)| {
                let mut part = Mat::<f32>::zeros(d, k);
                matmul(
                    &mut part,
                    Accum::Replace,
                    x.subrows(s, e - s).transpose(),
                    rm.subrows(s, e - s),
                    1.0,
                    Par::Seq,
                );
                part
            })
            .reduce(|| Mat::<f32>::zeros(d, k), |a, b| &a + &b);
        let e = t.elapsed().as_secs_f64();
        let _ = &xc;
        // forward for reference
        let w = Mat::<f32>::from_fn(d, k, |i, j| ((i + j) % 7) as f32);
        let mut z = Mat::<f32>::zeros(n, k);
        let t = Instant::now();
        matmul(&mut z, Accum::Replace, x, &w, 1.0, Par::rayon(0));
        let f = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut z2 = vec![0f32; n * k];
        // row-chunked XW: each chunk writes its own rows of a row-major n x k buffer
        z2.par_chunks_mut(4096 * k).enumerate().for_each(|(c, out)| {
            let s = c * 4096;
            let rows = out.len() / k;
            matmul(
                MatMut::from_row_major_slice_mut(out, rows, k),
                Accum::Replace,
                x.subrows(s, rows),
                &w,
                1.0,
                Par::Seq,
            );
        });
        let h = t.elapsed().as_secs_f64();
        println!("   row-chunked XW {:.0} GF", fl / h);
        let err = (&g - &g2).norm_max() + (&g - &g3).norm_max() + (&g - &g4).norm_max();
        println!("rep{rep} XtR {:.0} GF | (RtX)t {:.0} GF | blocked {:.0} GF | par-chunks {:.0} GF | XW {:.0} GF  err {err:e}", fl/a, fl/b, fl/c, fl/e, fl/f);
    }
}
