//! Memory of one relink shard, split into the process's own (anonymous) pages and
//! file-backed pages (the memory-mapped gallery: clean page cache, shared by every shard on
//! the node). Runs `relink_partial::run_shard` with `linkrisk relink --shard` defaults and
//! samples /proc/self/status after every query block, so the peaks are those of the
//! ranking. Not a test; numbers in docs/PERFORMANCE.md ("Scale-out").
//!
//! ```sh
//! cargo run --release -p linkrisk --example shard_rss -- /tmp/shard400k 1/64 /tmp/s.lrp [both]
//! LINKRISK_NO_MMAP=1 cargo run ...   # the same with the gallery read into memory
//! ```

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use linkrisk::audit::relink::{Direction, RelinkConfig};
use linkrisk::audit::relink_partial::run_shard;
use linkrisk::engine::Progress;
use linkrisk::shard::ShardSpec;

/// Peak of each /proc/self/status field sampled, in KiB.
#[derive(Default)]
struct Peaks {
    rss_anon: u64,
    rss_file: u64,
    vm_rss: u64,
    blocks: u64,
}

struct Sampler(Mutex<Peaks>);

fn status() -> Vec<(String, u64)> {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (key, value) = l.split_once(':')?;
            let kib = value.split_whitespace().next()?.parse().ok()?;
            Some((key.to_string(), kib))
        })
        .collect()
}

fn field(status: &[(String, u64)], key: &str) -> u64 {
    status.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

impl Progress for Sampler {
    fn advance(&self, _queries: u64) {
        let s = status();
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.rss_anon = p.rss_anon.max(field(&s, "RssAnon"));
        p.rss_file = p.rss_file.max(field(&s, "RssFile"));
        p.vm_rss = p.vm_rss.max(field(&s, "VmRSS"));
        p.blocks += 1;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, shard, partial, rest @ ..] = args.as_slice() else {
        eprintln!("usage: shard_rss DIR I/N PARTIAL [both]");
        std::process::exit(2);
    };
    let config = RelinkConfig {
        attack: None,
        direction: if rest.iter().any(|a| a == "both") { Direction::Both } else { Direction::QueryToGallery },
        ..RelinkConfig::default()
    };
    let shard = ShardSpec::parse(shard).expect("shard is I/N");
    let _ = std::fs::remove_file(partial);
    let sampler = Sampler(Mutex::new(Peaks::default()));
    let start = Instant::now();
    run_shard(Path::new(dir), &config, shard, Path::new(partial), &sampler).expect("shard runs");
    let p = sampler.0.lock().unwrap_or_else(|e| e.into_inner());
    let end = status();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "mapping {}: {} blocks in {:.1} s; during the ranking, peak RssAnon {:.0} MiB, peak RssFile {:.0} MiB, \
         peak VmRSS {:.0} MiB; process VmHWM {:.0} MiB",
        if std::env::var_os(linkrisk::cohort::NO_MMAP_ENV).is_some() { "off" } else { "on" },
        p.blocks,
        start.elapsed().as_secs_f64(),
        mib(p.rss_anon),
        mib(p.rss_file),
        mib(p.vm_rss),
        mib(field(&end, "VmHWM")),
    );
}
