use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn gemm(dst: &mut [f32], ldd: usize, a: &[f32], m: usize, b: &[f32], n: usize, d: usize, par: Par) {
    let a = MatRef::from_row_major_slice(a, m, d);
    let b = MatRef::from_row_major_slice(b, n, d);
    let dst = MatMut::from_column_major_slice_with_stride_mut(dst, n, m, ldd).transpose_mut();
    matmul(dst, Accum::Replace, a, b.transpose(), 1.0f32, par);
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let d = 512;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    if mode == "det" {
        let nq = 700; let ng = 3000;
        let q: Vec<f32> = (0..nq * d).map(|_| rng.random::<f32>() - 0.5).collect();
        let g: Vec<f32> = (0..ng * d).map(|_| rng.random::<f32>() - 0.5).collect();
        let mut full = vec![0f32; nq * ng];
        gemm(&mut full, ng, &q, nq, &g, ng, d, Par::Seq);
        let mut diffs = 0;
        for &(q0, m, g0, n, par) in &[(0usize, 700usize, 0usize, 3000usize, Par::rayon(0)), (3, 17, 5, 33, Par::Seq), (100, 1, 0, 3000, Par::Seq), (1, 1, 7, 1, Par::Seq), (50, 256, 900, 2048, Par::Seq), (51, 255, 999, 2001, Par::rayon(2)), (5, 2, 0, 3000, Par::Seq), (5, 8, 0, 3000, Par::Seq), (5, 3, 0, 3000, Par::Seq), (600, 100, 0, 2, Par::Seq), (600, 100, 0, 8, Par::Seq), (600, 100, 0, 16, Par::Seq), (0,64,0,64,Par::Seq), (13,5,2900,100,Par::Seq), (0,700,0,1,Par::Seq)] {
            eprintln!("case {q0} {m} {g0} {n}"); let mut out = vec![0f32; m * n];
            gemm(&mut out, n, &q[q0 * d..(q0 + m) * d], m, &g[g0 * d..(g0 + n) * d], n, d, par);
            let mut c = 0;
            for i in 0..m { for j in 0..n { if out[i * n + j].to_bits() != full[(q0 + i) * ng + g0 + j].to_bits() { c += 1; } } }
            println!("q0={q0} m={m} g0={g0} n={n}: {c} differing of {}", m * n);
            diffs += c;
        }
        println!("total diffs {diffs}");
        return;
    }
    if mode == "sgemm" {
        let m = 4096; let n = 4096;
        let a: Vec<f32> = (0..m * d).map(|_| rng.random::<f32>()).collect();
        let b: Vec<f32> = (0..n * d).map(|_| rng.random::<f32>()).collect();
        let mut c = vec![0f32; m * n];
        for _ in 0..4 {
            let t = Instant::now();
            gemm(&mut c, n, &a, m, &b, n, d, Par::rayon(0));
            let s = t.elapsed().as_secs_f64();
            println!("sgemm 4096x4096x512 rayon: {:.1} GFLOP/s", 2.0 * (m * n * d) as f64 / s / 1e9);
        }
        return;
    }
    // chunked: query block B x gallery n, chunks of gc, parallel over chunks with Par::Seq
    let ng = 43793usize;
    let g: Vec<f32> = (0..ng * d).map(|_| rng.random::<f32>()).collect();
    let nq = 4096usize;
    let q: Vec<f32> = (0..nq * d).map(|_| rng.random::<f32>()).collect();
    use rayon::prelude::*;
    for &b in &[256usize, 512, 1024] {
        for &gc in &[512usize, 1024, 2048, 4096] {
            let mut buf = vec![0f32; b * ng];
            let t = Instant::now();
            let mut total = 0u64;
            for blk in 0..nq / b {
                let qa = &q[blk * b * d..(blk + 1) * b * d];
                let ptr = buf.as_mut_ptr() as usize;
                let counts: u64 = (0..ng.div_ceil(gc)).into_par_iter().map(|ci| {
                    let c0 = ci * gc; let c1 = (c0 + gc).min(ng);
                    let dst = unsafe { faer::MatMut::<f32>::from_raw_parts_mut((ptr as *mut f32).add(c0), b, c1 - c0, ng as isize, 1) };
                    matmul(dst, Accum::Replace, MatRef::from_row_major_slice(qa, b, d), MatRef::from_row_major_slice(&g[c0 * d..c1 * d], c1 - c0, d).transpose(), 1.0f32, Par::Seq);
                    let mut cnt = 0u64;
                    for r in 0..b {
                        let row = unsafe { std::slice::from_raw_parts((ptr as *const f32).add(r * ng + c0), c1 - c0) };
                        let s = 0.5f32 * 128.0;
                        let mut gt = 0u32; let mut eq = 0u32;
                        for &x in row { gt += (x > s) as u32; eq += (x == s) as u32; }
                        cnt += (gt + eq) as u64;
                    }
                    cnt
                }).sum();
                total += counts;
            }
            let s = t.elapsed().as_secs_f64();
            println!("B={b} gc={gc}: {:.1} GFLOP/s (chk {total})", 2.0 * (nq * ng * d) as f64 / s / 1e9);
        }
    }
}
