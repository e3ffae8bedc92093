//! The HTML report in a real headless browser (Debian's Chromium), driven over the Chrome
//! DevTools Protocol on `--remote-debugging-pipe` (fds 3 and 4; no port, no network).
//!
//! Runs only with `LINKRISK_BROWSER_TEST=1` (CI sets it and installs chromium); then a
//! missing browser is a failure. It checks that the page loads with no console error, log
//! error or exception; that every chart renders (markers with non-zero size inside their
//! SVG, lines with length); that no two text labels of a chart overlap and none sticks out
//! of its chart; that no element is wider than the page's content column (and no table
//! needs its scroll bar) on screen at 1,280 px or in print; that printing to PDF works; and
//! it saves screenshots (screen and print media) under `target/tmp/report-browser/`. Three
//! runs are checked: the fixture run, a demo-shaped run of four models and the measured
//! two-model run of `models.rs`. A self-test first proves the error detection works: a page
//! that logs a console error and one whose image the CSP blocks must both be caught.

#![allow(clippy::unwrap_used)] // test-only helpers: a panic is the failure report

use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(60);

extern "C" {
    fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    fn dup2(old: i32, new: i32) -> i32;
}
const F_DUPFD: i32 = 0;

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LINKRISK_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A DevTools-protocol client over the browser's pipe (NUL-separated JSON messages).
struct Cdp {
    sock: UnixStream,
    buf: Vec<u8>,
    next_id: u64,
    events: Vec<Value>,
    child: Child,
    stderr_log: PathBuf,
}

impl Cdp {
    fn launch(chromium: &Path, profile: &Path) -> Cdp {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let fd = theirs.as_raw_fd();
        let stderr_log = profile.with_extension("stderr.log");
        let mut cmd = Command::new(chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "--enable-logging=stderr",
            "--v=0",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&stderr_log).unwrap()));
        // SAFETY: only async-signal-safe libc calls between fork and exec. The browser reads
        // commands from fd 3 and writes replies to fd 4: both become one end of our socket
        // pair. Duplicating above 10 first keeps dup2 from clobbering if `fd` is 3 or 4.
        unsafe {
            cmd.pre_exec(move || {
                let high = fcntl(fd, F_DUPFD, 10);
                if high < 0 || dup2(high, 3) < 0 || dup2(high, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
        drop(theirs);
        Cdp { sock: ours, buf: Vec::new(), next_id: 0, events: Vec::new(), child, stderr_log }
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let log = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        let tail: String =
            log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        panic!("{what}\n--- chromium stderr (tail) ---\n{tail}");
    }

    fn read_message(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == 0) {
                let msg: Vec<u8> = self.buf.drain(..=end).collect();
                return Some(serde_json::from_slice(&msg[..end]).unwrap());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            self.sock.set_read_timeout(Some(deadline - now)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.sock.read(&mut chunk) {
                Ok(0) => self.fail("the browser closed the DevTools pipe"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None
                }
                Err(e) => self.fail(&format!("reading the DevTools pipe: {e}")),
            }
        }
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.sock.write_all(&bytes).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let Some(reply) = self.read_message(deadline) else {
                self.fail(&format!("no reply to {method} within {TIMEOUT:?}"))
            };
            if reply.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = reply.get("error") {
                    self.fail(&format!("{method} failed: {err}"));
                }
                return reply["result"].clone();
            }
            self.events.push(reply);
        }
    }

    /// Wait for an event named `method`; events read meanwhile are kept.
    fn wait_event(&mut self, method: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(i);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let Some(msg) = self.read_message(deadline) else { self.fail(&format!("no {method} event")) };
            if msg["method"] == method {
                return msg;
            }
            self.events.push(msg);
        }
    }

    /// Collect events for `wait`.
    fn settle(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Some(msg) = self.read_message(deadline) {
            self.events.push(msg);
        }
    }

    /// Console errors, log errors and uncaught exceptions seen so far (and forget them).
    fn take_errors(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for e in self.events.drain(..) {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or_default() {
                "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                    errors.push(format!("console.{}: {}", p["type"].as_str().unwrap_or_default(), p["args"]))
                }
                "Runtime.exceptionThrown" => errors.push(format!("exception: {}", p["exceptionDetails"])),
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    errors.push(format!("log error: {}", p["entry"]["text"]))
                }
                _ => {}
            }
        }
        errors
    }

    fn open_page(&mut self) -> String {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().unwrap().to_string();
        let attached =
            self.call(None, "Target.attachToTarget", json!({"targetId": target_id, "flatten": true}));
        let session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(Some(&session), domain, json!({}));
        }
        self.call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        session
    }

    fn navigate(&mut self, session: &str, url: &str) {
        self.events.clear();
        let nav = self.call(Some(session), "Page.navigate", json!({"url": url}));
        if let Some(err) = nav.get("errorText") {
            self.fail(&format!("navigating to {url}: {err}"));
        }
        self.wait_event("Page.loadEventFired");
        self.settle(Duration::from_millis(300));
    }

    fn eval(&mut self, session: &str, expression: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            self.fail(&format!("evaluation failed: {ex}"));
        }
        r["result"]["value"].clone()
    }

    /// Save the whole page as `<stem>.png`, and as tiles `<stem>-1.png`, ... of at most
    /// 1,200 px height (easier to look at).
    fn screenshot(&mut self, session: &str, dir: &Path, stem: &str) {
        let metrics = self.call(Some(session), "Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let (w, h) = (size["width"].as_f64().unwrap(), size["height"].as_f64().unwrap());
        // Tiles of an earlier, longer page must not linger beside these.
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let tile = name.strip_prefix(&format!("{stem}-")).and_then(|r| r.strip_suffix(".png"));
            if tile.is_some_and(|t| t.chars().all(|c| c.is_ascii_digit())) {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        let mut shoot = |y: f64, height: f64, path: PathBuf| {
            let shot = self.call(
                Some(session),
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": y, "width": w, "height": height, "scale": 1}}),
            );
            let png = base64_decode(shot["data"].as_str().unwrap());
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
            std::fs::write(path, png).unwrap();
        };
        shoot(0.0, h, dir.join(format!("{stem}.png")));
        let tile: f64 = 1200.0;
        let mut y = 0.0;
        let mut i = 1;
        while y < h {
            shoot(y, tile.min(h - y), dir.join(format!("{stem}-{i}.png")));
            y += tile;
            i += 1;
        }
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Per chart: markers drawn with size inside the SVG, lines with length, overlapping or
/// protruding text. Page: horizontal overflow.
const LAYOUT_CHECK: &str = r#"(() => {
  const inside = (r, box) => r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  const charts = [...document.querySelectorAll('svg.chart')].map(svg => {
    const box = svg.getBoundingClientRect();
    const pts = [...svg.querySelectorAll('.pt')];
    const drawn = pts.filter(p => { const r = p.getBoundingClientRect(); return r.width > 0 && r.height > 0 && inside(r, box); });
    const lines = [...svg.querySelectorAll('path.line')].filter(p => p.getTotalLength() > 1);
    const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim() !== '');
    const rects = texts.map(t => ({text: t.textContent, r: t.getBoundingClientRect()}));
    const outside = rects.filter(x => !inside(x.r, box)).map(x => x.text);
    const overlaps = [];
    for (let i = 0; i < rects.length; i++) for (let j = i + 1; j < rects.length; j++) {
      const a = rects[i].r, b = rects[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) overlaps.push([rects[i].text, rects[j].text]);
    }
    return {id: svg.id, points: pts.length, drawn: drawn.length, lines: lines.length, texts: texts.length,
            width: box.width, height: box.height, outside, overlaps};
  });
  const describe = e => `${e.tagName}#${e.id}.${typeof e.className === 'string' ? e.className : ''} ${e.textContent.slice(0, 50)}`;
  const tooWide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 8)
    .map(describe);
  // Wider than the content column (main minus its padding), or a table that needs the
  // scroll bar of its wrapper: both are cut or hidden on a 1,280-px screen and on paper.
  const main = document.querySelector('main');
  const box = main.getBoundingClientRect();
  const style = getComputedStyle(main);
  const left = box.left + parseFloat(style.paddingLeft), right = box.right - parseFloat(style.paddingRight);
  const beyond = [...main.querySelectorAll('*')]
    .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > right + 1 || r.left < left - 1); })
    .slice(0, 8)
    .map(describe);
  const scrolled = [...document.querySelectorAll('.table-wrap')]
    .filter(w => w.scrollWidth > w.clientWidth + 1)
    .map(w => `${w.scrollWidth} > ${w.clientWidth}: ${w.querySelector('tr').textContent.slice(0, 80)}`);
  return {charts, tooWide, beyond, scrolled, scrollWidth: document.documentElement.scrollWidth,
          innerWidth: window.innerWidth, sections: [...document.querySelectorAll('section')].map(s => s.id)};
})()"#;

fn check_layout(layout: &Value, media: &str, n_charts: usize) {
    let charts = layout["charts"].as_array().unwrap();
    assert!(n_charts >= 5, "{media}: only {n_charts} charts in the HTML");
    assert_eq!(charts.len(), n_charts, "{media}: expected {n_charts} charts, got {layout}");
    for c in charts {
        let id = c["id"].as_str().unwrap();
        assert!(c["width"].as_f64().unwrap() > 200.0, "{media}: {id} is {} px wide", c["width"]);
        assert!(c["points"].as_u64().unwrap() > 0, "{media}: {id} has no data points");
        assert_eq!(c["drawn"], c["points"], "{media}: {id}: some markers are not drawn inside the chart");
        assert!(c["texts"].as_u64().unwrap() >= 8, "{media}: {id} lacks axis text");
        assert_eq!(c["outside"], json!([]), "{media}: {id}: text sticks out of the chart");
        assert_eq!(c["overlaps"], json!([]), "{media}: {id}: overlapping labels");
        if !id.starts_with("relink-lift") {
            assert!(c["lines"].as_u64().unwrap() > 0, "{media}: {id} has no line");
        }
    }
    assert!(
        layout["scrollWidth"].as_f64().unwrap() <= layout["innerWidth"].as_f64().unwrap(),
        "{media}: page overflows horizontally: {layout}"
    );
    assert_eq!(layout["tooWide"], json!([]), "{media}: elements wider than the page");
    assert_eq!(layout["beyond"], json!([]), "{media}: elements wider than the content column");
    assert_eq!(layout["scrolled"], json!([]), "{media}: tables wider than the page");
}

/// Charts in an HTML report.
fn chart_count(html: &Path) -> usize {
    std::fs::read_to_string(html)
        .unwrap()
        .matches("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\"")
        .count()
}

/// Screen (1,280 px) then print (A4 text width) checks of one report, with screenshots.
fn check_screen_and_print(cdp: &mut Cdp, session: &str, page: &Path, out: &Path, stem: &str) {
    cdp.call(Some(session), "Emulation.setEmulatedMedia", json!({"media": "screen"}));
    cdp.call(
        Some(session),
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    );
    cdp.navigate(session, &format!("file://{}", page.display()));
    let errors = cdp.take_errors();
    assert!(errors.is_empty(), "{stem}: the report logged errors: {errors:?}");
    let layout = cdp.eval(session, LAYOUT_CHECK);
    cdp.screenshot(session, out, stem);
    let n = chart_count(page);
    check_layout(&layout, &format!("{stem} (screen)"), n);
    cdp.call(Some(session), "Emulation.setEmulatedMedia", json!({"media": "print"}));
    cdp.call(
        Some(session),
        "Emulation.setDeviceMetricsOverride",
        // A4 (210 mm) minus the 14 mm page margins, at 96 px per inch.
        json!({"width": 688, "height": 1123, "deviceScaleFactor": 1, "mobile": false}),
    );
    cdp.screenshot(session, out, &format!("{stem}-print"));
    let layout = cdp.eval(session, LAYOUT_CHECK);
    check_layout(&layout, &format!("{stem} (print)"), n);
}

#[test]
fn browser_renders_the_html_report() {
    if std::env::var("LINKRISK_BROWSER_TEST").as_deref() != Ok("1") {
        eprintln!("browser test skipped: set LINKRISK_BROWSER_TEST=1 (needs chromium) to run it");
        return;
    }
    let chromium =
        find_chromium().expect("LINKRISK_BROWSER_TEST=1 but no chromium on PATH (apt-get install chromium)");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&out).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    super::fixtures::build_run(tmp.path());
    linkrisk::report::write_report(tmp.path(), &[linkrisk::report::Format::Html]).unwrap();
    let page = tmp.path().join("report.html");
    std::fs::copy(&page, out.join("report.html")).unwrap();

    // Self-test pages: the detection must catch a console error and a CSP violation.
    let bad_console = tmp.path().join("bad-console.html");
    std::fs::write(
        &bad_console,
        "<!DOCTYPE html><title>x</title><script>console.error('selftest-error')</script>",
    )
    .unwrap();
    let bad_csp = tmp.path().join("bad-csp.html");
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::write(
        &bad_csp,
        html.replace("<main>", "<main><img alt=\"\" src=\"http://127.0.0.1:9/blocked.png\">"),
    )
    .unwrap();

    let profile = tempfile::tempdir().unwrap();
    let mut cdp = Cdp::launch(&chromium, &profile.path().join("profile"));
    let session = cdp.open_page();
    let url = |p: &Path| format!("file://{}", p.display());

    cdp.navigate(&session, &url(&bad_console));
    let errors = cdp.take_errors();
    assert!(errors.iter().any(|e| e.contains("selftest-error")), "console error not detected: {errors:?}");
    cdp.navigate(&session, &url(&bad_csp));
    let errors = cdp.take_errors();
    assert!(
        errors.iter().any(|e| e.contains("Content Security Policy") || e.contains("blocked")),
        "CSP violation not detected: {errors:?}"
    );

    // The report itself: every section, screen and print layout, and a PDF comes out.
    cdp.navigate(&session, &url(&page));
    let layout = cdp.eval(&session, LAYOUT_CHECK);
    let sections: Vec<&str> =
        layout["sections"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(
        sections,
        ["summary", "cohort", "relink", "attacks", "reid", "attributes", "utility", "mitigate", "runs"]
    );
    check_screen_and_print(&mut cdp, &session, &page, &out, "report");
    let pdf = cdp.call(Some(&session), "Page.printToPDF", json!({"printBackground": false}));
    let pdf = base64_decode(pdf["data"].as_str().unwrap());
    assert!(pdf.starts_with(b"%PDF") && pdf.len() > 20_000, "PDF of {} bytes", pdf.len());
    std::fs::write(out.join("report.pdf"), pdf).unwrap();
    let errors = cdp.take_errors();
    assert!(errors.is_empty(), "errors while printing: {errors:?}");

    // The demo's shape: four labelled models (specialization levels), no attacks, a
    // two-point mitigation. Many series: the legends must still not collide.
    let demo = tempfile::tempdir().unwrap();
    demo_like_run(demo.path());
    linkrisk::report::write_report(demo.path(), &[linkrisk::report::Format::Html]).unwrap();
    check_screen_and_print(&mut cdp, &session, &demo.path().join("report.html"), &out, "demo");

    // The measured two-model run: both directions, subgroups, every attack and attacker.
    let (measured, _) = super::models::two_model_run();
    linkrisk::report::write_report(measured.path(), &[linkrisk::report::Format::Html]).unwrap();
    let page = measured.path().join("report.html");
    std::fs::copy(&page, out.join("measured.html")).unwrap();
    check_screen_and_print(&mut cdp, &session, &page, &out, "measured");
    eprintln!("browser test: screenshots and PDF in {}", out.display());
}

/// A run like `linkrisk demo` writes: relink for four labelled models of increasing
/// specialization (the fixture's figures scaled), re-ID, utility and a two-point mitigation.
fn demo_like_run(dir: &Path) {
    use linkrisk::report::run::{RunDir, RunEntry};
    let mut run = RunDir::open_or_create(dir).unwrap();
    let mut cohort = super::fixtures::load("cohort.json");
    cohort["synthetic"] = json!(true);
    run.set_cohort_summary(cohort).unwrap();
    let base = super::fixtures::load("relink_image_report.json");
    for (level, factor) in [("general", 0.3), ("medical", 0.6), ("radiology", 1.0), ("chest X-ray", 1.4)] {
        let mut audit = base.clone();
        let obj = audit.as_object_mut().unwrap();
        for key in ["attacks", "strongest_attack", "strongest_attack_pool_size", "skipped_attacks", "side"] {
            obj.remove(key);
            obj["reverse"].as_object_mut().unwrap().remove(key);
        }
        for pool in obj["pools"].as_array_mut().unwrap() {
            let recall = pool["recall_at_1"].as_f64().unwrap() * factor;
            let chance = pool["chance_at_1"].as_f64().unwrap();
            pool["recall_at_1"] = json!(recall);
            pool["lift_at_1"] = json!(recall / chance);
            pool["ci95_recall_at_1"] = json!([recall * 0.9, recall * 1.1]);
            if let Some(e) = pool.get("expected_recall_at_1").and_then(Value::as_f64) {
                pool["expected_recall_at_1"] = json!(e * factor);
            }
        }
        let full = &mut obj["full"];
        let recall = full["recall_at_1"].as_f64().unwrap() * factor;
        full["lift_at_1"] = json!(recall / full["chance_at_1"].as_f64().unwrap());
        full["recall_at_1"] = json!(recall);
        full["ci95_recall_at_1"] = json!([recall * 0.85, recall * 1.15]);
        run.record_entry(RunEntry {
            key: String::new(),
            label: Some(format!("specialization: {level}")),
            cohort_fingerprint: None,
            command: vec!["linkrisk".into(), "demo".into()],
            seed: Some(0),
            started_unix: 0,
            seconds: 1.0,
            linkrisk_version: linkrisk::VERSION.into(),
            audit,
        })
        .unwrap();
    }
    for file in ["reid_image.json", "reid_image_linear_metric.json", "utility_image.json"] {
        run.record_entry(RunEntry {
            key: String::new(),
            label: Some("specialization: chest X-ray".into()),
            command: vec!["linkrisk".into(), "demo".into()],
            seed: Some(0),
            started_unix: 0,
            seconds: 1.0,
            linkrisk_version: linkrisk::VERSION.into(),
            cohort_fingerprint: None,
            audit: super::fixtures::load(file),
        })
        .unwrap();
    }
    let mut mitigate = super::fixtures::load("mitigate.json");
    let points = mitigate["points"].as_array_mut().unwrap();
    points.retain(|p| p["epsilon"].is_null() || p["epsilon"] == json!(0.34));
    run.record(vec!["linkrisk".into(), "demo".into()], Some(0), 1.0, mitigate).unwrap();
}

#[test]
fn base64_decoder_round_trips_known_vectors() {
    // RFC 4648 section 10 test vectors.
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_decode(encoded), plain.as_bytes());
    }
}
