//! What `nalloc::Global` costs per allocation: the routed path, and what the unrouted path adds
//! to the fallback allocator.
//!
//! Every program that installs `Global` pays the unrouted path on every allocation it makes
//! outside routes, so that is the figure that matters most: an allocate-and-free pair through
//! `Global<A>` outside any route, against the same pair through `A` alone. The routed figure is
//! a `Box<u64>` made and dropped inside a route (a block from the thread's chunk of the arena,
//! given back at once).
//!
//! Variants, each an allocate-and-free pair of an 8-byte, 8-aligned block, timed in batches:
//!
//!  - `system`: `System.alloc` and `System.dealloc` called directly (glibc malloc);
//!  - `global/system`: the same calls on this binary's global allocator, `Global<System>`,
//!    outside any route; `global/system, Box`: `Box::new` and its drop, which reach it through
//!    the global-allocator shim (as any global allocator is reached);
//!  - `mimalloc` and `global/mimalloc`: Debian's libmimalloc alone, and `Global` with it as the
//!    fallback (when build.rs found the library), called directly;
//!  - `routed` and `routed, Box`: the pair inside `nalloc::route`, called directly and as a
//!    `Box<u64>`; `routed, C malloc family`: C's `nalloc_malloc` and `nalloc_free` inside the
//!    same route, the C library's own share of the routed cost.
//!
//! Two phases. Before routing: the unrouted variants, before any arena exists in the process
//! (what a program that installs `Global` and never routes pays). After routing: every variant,
//! with a routed block alive (the free's filter then has a bit set: a fallback block's free
//! still skips C unless it lies in a GiB of address space where a routed block was).
//!
//! Rounds run the variants in turn, alternating the order; each round times every variant over
//! one batch, in CPU time of the benchmark's thread (time spent waiting for a CPU on a loaded
//! machine is left out); the figure is the median over rounds of nanoseconds per pair.
//!
//! Usage: `cargo bench --offline --bench global -- [--rounds 21] [--pairs 2000000] [--smoke]
//! [--csv FILE]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::Write as _;

use nalloc::{route, Arena, Global, Kind};

#[global_allocator]
static ALLOC: Global = Global::new();

#[cfg(have_mimalloc)]
mod mi {
    use std::alloc::{GlobalAlloc, Layout};
    use std::ffi::c_void;

    #[link(name = "mimalloc")]
    extern "C" {
        fn mi_malloc_aligned(size: usize, alignment: usize) -> *mut c_void;
        fn mi_free(p: *mut c_void);
        pub fn mi_version() -> i32;
    }

    /// Debian's libmimalloc as a `GlobalAlloc`.
    pub struct MiMalloc;

    unsafe impl GlobalAlloc for MiMalloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
        unsafe fn dealloc(&self, ptr: *mut u8, _: Layout) {
            mi_free(ptr.cast())
        }
    }
}

/// `pairs` allocate-and-free pairs through `a`, called directly.
#[inline(never)]
fn pairs_direct<A: GlobalAlloc>(a: &A, pairs: usize) {
    let layout = Layout::new::<u64>();
    for i in 0..pairs {
        // SAFETY: a non-zero layout; the block is written within its size and freed once.
        unsafe {
            let p = a.alloc(layout);
            p.cast::<u64>().write(i as u64);
            a.dealloc(black_box(p), layout);
        }
    }
}

/// `pairs` pairs of C's `nalloc_malloc` and `nalloc_free`: the C library's own routed path,
/// without the Rust layer (inside a route, which pushes C's route too).
#[inline(never)]
fn pairs_c(pairs: usize) {
    for i in 0..pairs {
        // SAFETY: an 8-byte block, written within its size and freed once.
        unsafe {
            let p = nalloc::sys::nalloc_malloc(8).cast::<u64>();
            p.write(i as u64);
            nalloc::sys::nalloc_free(black_box(p).cast());
        }
    }
}

/// `pairs` `Box<u64>` made and dropped through the global allocator.
#[inline(never)]
fn pairs_box(pairs: usize) {
    for i in 0..pairs {
        drop(black_box(Box::new(i as u64)));
    }
}

struct Variant {
    name: &'static str,
    run: Box<dyn Fn(usize)>,
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CPU time this thread has run, in nanoseconds: on a loaded machine the time it waited for a
/// CPU is left out, which wall time would add to every figure.
fn thread_cpu_ns() -> u64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: a valid clock and out pointer.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The unrouted variants: the fallbacks alone, and through `Global`.
fn unrouted_variants() -> Vec<Variant> {
    #[allow(unused_mut)]
    let mut variants = vec![
        Variant {
            name: "system",
            run: Box::new(|n| pairs_direct(&System, n)),
        },
        Variant {
            name: "global/system",
            run: Box::new(|n| pairs_direct(&ALLOC, n)),
        },
        Variant {
            name: "global/system, Box",
            run: Box::new(pairs_box),
        },
    ];
    #[cfg(have_mimalloc)]
    {
        static GLOBAL_MI: Global<mi::MiMalloc> = Global::with_fallback(mi::MiMalloc);
        variants.push(Variant {
            name: "mimalloc",
            run: Box::new(|n| pairs_direct(&mi::MiMalloc, n)),
        });
        variants.push(Variant {
            name: "global/mimalloc",
            run: Box::new(|n| pairs_direct(&GLOBAL_MI, n)),
        });
    }
    variants
}

/// Median nanoseconds per pair of each variant (and every sample), over `rounds` rounds that
/// alternate the order of the variants.
fn measure(variants: &[Variant], rounds: usize, pairs: usize) -> Vec<Vec<f64>> {
    for v in variants {
        (v.run)(pairs.min(100_000)); // warm up: first pages, first chunk
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let start = thread_cpu_ns();
            (variants[i].run)(pairs);
            samples[i].push((thread_cpu_ns() - start) as f64 / pairs as f64);
        }
    }
    samples
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut rounds, mut pairs, mut csv) = (21usize, 2_000_000usize, None::<String>);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match a.as_str() {
            "--bench" => {}
            "--smoke" => (rounds, pairs) = (3, 10_000),
            "--rounds" => rounds = value().parse().expect("--rounds N"),
            "--pairs" => pairs = value().parse().expect("--pairs N"),
            "--csv" => csv = Some(value()),
            other => {
                eprintln!("usage: --rounds N --pairs N --smoke --csv FILE (not {other})");
                std::process::exit(2);
            }
        }
    }
    let load_before = load_average();

    // Phase 1: nothing has been routed in this process yet (no arena exists): what a program
    // that installs Global and never routes pays.
    let before = unrouted_variants();
    let before_samples = measure(&before, rounds, pairs);

    // Phase 2: routed pairs, and the unrouted ones again with a routed block alive.
    let arena: &'static Arena = Box::leak(Box::new(
        Arena::new(Kind::Scratch, 64 << 20).expect("an arena"),
    ));
    let kept = route(arena, || Box::new(0u64));
    assert!(arena.contains((&*kept as *const u64).cast()));
    let mut after = vec![
        Variant {
            name: "routed",
            run: Box::new(move |n| route(arena, || pairs_direct(&ALLOC, n))),
        },
        Variant {
            name: "routed, Box",
            run: Box::new(move |n| route(arena, || pairs_box(n))),
        },
        Variant {
            name: "routed, C malloc family",
            run: Box::new(move |n| route(arena, || pairs_c(n))),
        },
    ];
    after.extend(unrouted_variants());
    let after_samples = measure(&after, rounds, pairs);
    drop(kept);
    let load_after = load_average();

    println!(
        "Global's cost per allocate-and-free pair (8-byte blocks), thread CPU time, {} build, \
         {rounds} rounds of {pairs} pairs; load average {load_before} before, {load_after} after",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    #[cfg(have_mimalloc)]
    // SAFETY: a plain query.
    println!("mimalloc: {}", unsafe { mi::mi_version() });
    println!(
        "{:<16} {:<26} {:>10} {:>10} {:>10}",
        "phase", "variant", "median_ns", "min_ns", "max_ns"
    );
    let phases = [
        ("before routing", &before, &before_samples),
        ("after routing", &after, &after_samples),
    ];
    for (phase, variants, samples) in phases {
        for (v, s) in variants.iter().zip(samples.iter()) {
            let min = s.iter().copied().fold(f64::INFINITY, f64::min);
            let max = s.iter().copied().fold(0.0, f64::max);
            println!(
                "{:<16} {:<26} {:>10.2} {:>10.2} {:>10.2}",
                phase,
                v.name,
                median(s.clone()),
                min,
                max
            );
        }
    }
    // The load on a shared machine drifts within a run, moving every variant together: each
    // figure below pairs two variants within the same round (timed a fraction of a second apart)
    // and takes the median over rounds of the difference or ratio.
    let paired =
        |variants: &[Variant], samples: &[Vec<f64>], a: &str, b: &str, f: fn(f64, f64) -> f64| {
            let i = variants.iter().position(|v| v.name == a)?;
            let j = variants.iter().position(|v| v.name == b)?;
            Some(median(
                samples[i]
                    .iter()
                    .zip(&samples[j])
                    .map(|(&x, &y)| f(x, y))
                    .collect(),
            ))
        };
    println!();
    println!("paired within rounds (medians over rounds):");
    for (phase, variants, samples) in phases {
        for (fallback, global) in [("system", "global/system"), ("mimalloc", "global/mimalloc")] {
            if let Some(d) = paired(variants, samples, global, fallback, |x, y| x - y) {
                println!(
                    "  {phase}: unrouted overhead over {fallback}: {d:+.2} ns per pair (target <= 2)"
                );
            }
        }
    }
    let routed_box = paired(&after, &after_samples, "routed, Box", "system", |x, _| x);
    let ratio = paired(&after, &after_samples, "routed, Box", "system", |x, y| {
        x / y
    });
    let rust = paired(
        &after,
        &after_samples,
        "routed",
        "routed, C malloc family",
        |x, y| x - y,
    );
    if let (Some(r), Some(ratio), Some(rust)) = (routed_box, ratio, rust) {
        println!(
            "  routed Box<u64> pair: {r:.2} ns (target <= 10), {ratio:.2} times System's pair; \
             the Rust layer over C's own routed pair: {rust:+.2} ns"
        );
    }
    if let Some(path) = csv {
        let mut f = std::fs::File::create(&path).expect("create the CSV file");
        writeln!(f, "phase,variant,round,ns_per_pair").unwrap();
        for (phase, variants, samples) in phases {
            for (v, s) in variants.iter().zip(samples.iter()) {
                for (r, x) in s.iter().enumerate() {
                    writeln!(f, "{phase},\"{}\",{r},{x:.4}", v.name).unwrap();
                }
            }
        }
    }
}
