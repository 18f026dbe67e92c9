//! The prover-shaped benchmark in Rust: bench/prover.c's proof, written with std `Vec`s, under
//! several global allocators.
//!
//! The workload is bench/prover.h's, phase for phase and value for value: trace generation
//! (witness rows), commit (each column extended by an inverse and a forward NTT, a Merkle tree
//! over the rows), permutation (running products, extended and committed), quotient (constraint
//! accumulators over the extended domain) and FRI (fold down to 8 points, then the queries). The
//! transcript checksum depends on every value computed and on no address, so it must come out
//! the same under every allocator, and the same as the C benchmark's for the same shape.
//!
//! What changes between modes is only the process's global allocator. A Rust prover allocates
//! through `Vec`, so that is what is measured: every buffer of the proof is a `Vec`, allocated on
//! the proving thread between parallel loops and dropped where its lifetime ends (scratch at the
//! end of its scope, the rest at the end of the proof, the witness zeroed first).
//!
//!  - `system`: std's `System` (glibc malloc).
//!  - `mimalloc`: Debian's libmimalloc, linked directly (only when build.rs found it).
//!  - `floor`: no allocator on the proof's path: one region mapped with MAP_NORESERVE, sized by
//!    an untimed first proof that also faults every page in, then carved by a bump pointer (a
//!    block freed last-in-first-out is given back; the rest at the end of the proof). Nothing
//!    can do less work; every figure is reported as a ratio to it.
//!  - `nalloc`: `nalloc::Global` with routes. The witness (trace and permutation columns) is
//!    routed into the witness arena, the LDE vectors, trees and quotients into the polynomial
//!    arena, each scope's temporaries into the scratch arena (freed when the scope drops them);
//!    everything else (the threads' bookkeeping, the transcript) goes to `System`. At the end of
//!    the proof the polynomial and scratch arenas are reset and the witness arena wiped, which
//!    zeroes the witness (so the proof does not zero it by hand, as the other modes do). The
//!    arenas are sized by an untimed dry run (address space only), with 10% headroom, and
//!    created with every page faulted in, as the floor's region is.
//!
//! The global allocator is one dispatcher ([`BenchAlloc`]) whose mode is read from the
//! environment on the process's first allocation, so a process never mixes two allocators'
//! blocks (the floor excepted, which serves only the proving thread during a proof and tells
//! its blocks by address). Each mode runs in its own process, started by the driver, and rounds
//! alternate the order of the modes. The nalloc mode uses the hooks every mode implements
//! (`Heap::with_kind`, `Heap::scope`, `Heap::proof_end`, `Heap::wipes_witness`).
//!
//! Usage: `cargo bench --offline --bench prover -- [--modes system,mimalloc,floor,nalloc] [--rounds 3]
//! [--proofs 4] [--threads N] [--scale N] [--smoke] [--csv FILE]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_long, c_void};
use std::io::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

// ---- The global allocator -------------------------------------------------------------------

const MODE_ENV: &[u8] = b"NALLOC_RS_BENCH_MODE\0";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Mode {
    Unset = 0,
    System = 1,
    Mimalloc = 2,
    Floor = 3,
    Nalloc = 4,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Unset => "driver",
            Mode::System => "system",
            Mode::Mimalloc => "mimalloc",
            Mode::Floor => "floor",
            Mode::Nalloc => "nalloc",
        }
    }
    fn from_name(name: &str) -> Option<Mode> {
        [Mode::System, Mode::Mimalloc, Mode::Floor, Mode::Nalloc]
            .into_iter()
            .find(|m| m.name() == name)
    }
    fn what(self) -> &'static str {
        match self {
            Mode::System => "std System (glibc malloc)",
            Mode::Mimalloc => "libmimalloc (Debian), linked",
            Mode::Floor => "pre-faulted region, bump pointer (the limit)",
            Mode::Nalloc => "nalloc::Global, routes to witness, polynomial and scratch arenas",
            Mode::Unset => "",
        }
    }
}

extern "C" {
    fn getenv(name: *const c_char) -> *const c_char;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn getrusage(who: c_int, usage: *mut RUsage) -> c_int;
}

#[cfg(have_mimalloc)]
#[link(name = "mimalloc")]
extern "C" {
    fn mi_malloc_aligned(size: usize, alignment: usize) -> *mut c_void;
    fn mi_zalloc_aligned(size: usize, alignment: usize) -> *mut c_void;
    fn mi_realloc_aligned(p: *mut c_void, newsize: usize, alignment: usize) -> *mut c_void;
    fn mi_free(p: *mut c_void);
    fn mi_version() -> c_int;
}

static MODE: AtomicU8 = AtomicU8::new(Mode::Unset as u8);
static LIVE: AtomicUsize = AtomicUsize::new(0); // bytes the process has allocated and not freed
static PEAK: AtomicUsize = AtomicUsize::new(0); // most of LIVE since the last reset

/// The floor: a region carved by a bump pointer. Only the proving thread allocates from it, and
/// only during a proof; frees are told apart by address.
struct Floor {
    base: AtomicUsize,
    capacity: AtomicUsize,
    offset: AtomicUsize, // bytes
    high_water: AtomicUsize,
}

static FLOOR: Floor = Floor {
    base: AtomicUsize::new(0),
    capacity: AtomicUsize::new(0),
    offset: AtomicUsize::new(0),
    high_water: AtomicUsize::new(0),
};

thread_local! {
    /// Set on the proving thread while a proof runs in floor mode.
    static FLOOR_ON: Cell<bool> = const { Cell::new(false) };
}

impl Floor {
    fn contains(&self, p: *mut u8) -> bool {
        let base = self.base.load(Ordering::Relaxed);
        (p as usize).wrapping_sub(base) < self.capacity.load(Ordering::Relaxed)
    }

    /// nalloc's policy: 64 bytes, 4 KiB from 1 MiB up, more if the layout asks.
    fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout
            .align()
            .max(if layout.size() >= 1 << 20 { 4096 } else { 64 });
        let base = self.base.load(Ordering::Relaxed);
        let offset = self.offset.load(Ordering::Relaxed);
        let start = (base + offset).next_multiple_of(align) - base;
        let end = start + layout.size();
        if end > self.capacity.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        self.offset.store(end, Ordering::Relaxed);
        self.high_water.fetch_max(end, Ordering::Relaxed);
        (base + start) as *mut u8
    }

    /// Give a block back if it is the last one (a scope's temporaries die in reverse order).
    fn free(&self, p: *mut u8, size: usize) {
        let end = p as usize - self.base.load(Ordering::Relaxed) + size;
        let _ = self
            .offset
            .compare_exchange(end, end - size, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The nalloc mode's allocator: routed allocations from arenas, the rest from `System`.
static NALLOC: nalloc::Global = nalloc::Global::new();

/// The benchmark's global allocator: one of the modes, fixed for the whole process.
struct BenchAlloc;

#[global_allocator]
static ALLOC: BenchAlloc = BenchAlloc;

fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::System,
        2 => Mode::Mimalloc,
        3 => Mode::Floor,
        4 => Mode::Nalloc,
        _ => {
            // First allocation of the process: read the mode without allocating (getenv does not).
            // SAFETY: a NUL-terminated name; the result is NULL or a NUL-terminated string.
            let value = unsafe { getenv(MODE_ENV.as_ptr().cast()) };
            let m = if value.is_null() {
                Mode::System
            } else {
                let bytes = unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes();
                match bytes {
                    b"mimalloc" if cfg!(have_mimalloc) => Mode::Mimalloc,
                    b"floor" => Mode::Floor,
                    b"nalloc" => Mode::Nalloc,
                    _ => Mode::System,
                }
            };
            MODE.store(m as u8, Ordering::Relaxed);
            m
        }
    }
}

fn count_alloc(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for BenchAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        match mode() {
            #[cfg(have_mimalloc)]
            Mode::Mimalloc => mi_malloc_aligned(layout.size(), layout.align()).cast(),
            Mode::Nalloc => NALLOC.alloc(layout),
            Mode::Floor if FLOOR_ON.with(Cell::get) => {
                let p = FLOOR.alloc(layout);
                if p.is_null() {
                    System.alloc(layout)
                } else {
                    p
                }
            }
            _ => System.alloc(layout),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match mode() {
            #[cfg(have_mimalloc)]
            Mode::Mimalloc => {
                count_alloc(layout.size());
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
            Mode::Nalloc => {
                count_alloc(layout.size());
                NALLOC.alloc_zeroed(layout)
            }
            Mode::Floor if FLOOR_ON.with(Cell::get) => {
                let p = self.alloc(layout);
                if !p.is_null() {
                    p.write_bytes(0, layout.size());
                }
                p
            }
            _ => {
                count_alloc(layout.size());
                System.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        match mode() {
            #[cfg(have_mimalloc)]
            Mode::Mimalloc => mi_free(p.cast()),
            Mode::Nalloc => NALLOC.dealloc(p, layout),
            Mode::Floor if FLOOR.contains(p) => FLOOR.free(p, layout.size()),
            _ => System.dealloc(p, layout),
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match mode() {
            #[cfg(have_mimalloc)]
            Mode::Mimalloc => {
                LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                count_alloc(new_size);
                mi_realloc_aligned(p.cast(), new_size, layout.align()).cast()
            }
            Mode::Nalloc => {
                LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                count_alloc(new_size);
                NALLOC.realloc(p, layout, new_size)
            }
            Mode::Floor if FLOOR.contains(p) || FLOOR_ON.with(Cell::get) => {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let q = self.alloc(new_layout);
                if !q.is_null() {
                    std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    self.dealloc(p, layout);
                }
                q
            }
            _ => {
                LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                count_alloc(new_size);
                System.realloc(p, layout, new_size)
            }
        }
    }
}

// ---- Heaps: what the prover asks of the allocator -------------------------------------------

/// The kind of memory a buffer is, as nalloc's arenas see it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Poly,
    Witness,
    Scratch,
}

/// The hooks a mode implements, bench/heap.h's interface. A `Vec` allocates through the global
/// allocator, so the System, mimalloc and floor modes need none of them; a nalloc mode routes
/// each kind's allocations to its arena (`nalloc::route`), may run a scope as a phase of the
/// scratch arena, and resets the arenas at the end of the proof.
trait Heap {
    /// Run `f`, whose allocations are of `kind`.
    fn with_kind<R>(&self, kind: Kind, f: impl FnOnce() -> R) -> R {
        let _ = kind;
        f()
    }
    /// Run `f`, a scope: the scratch buffers it allocates are dead when it returns
    /// (bench/heap.h's heap_scope_begin and heap_scope_end around it).
    fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
    /// Everything of the proof has been freed.
    fn proof_end(&self) {}
    /// Whether `proof_end` zeroes the witness itself (the proof then does not).
    fn wipes_witness(&self) -> bool {
        false
    }
}

struct GlobalHeap; // System and mimalloc: the global allocator is the whole story
impl Heap for GlobalHeap {}

struct FloorHeap;
impl Heap for FloorHeap {
    fn proof_end(&self) {
        FLOOR.offset.store(0, Ordering::Relaxed);
    }
}

/// The nalloc mode: each kind's buffers routed into its arena of a context.
struct NallocHeap {
    ctx: std::cell::RefCell<nalloc::Context>,
}

impl NallocHeap {
    fn kind(kind: Kind) -> nalloc::Kind {
        match kind {
            Kind::Poly => nalloc::Kind::Poly,
            Kind::Witness => nalloc::Kind::Witness,
            Kind::Scratch => nalloc::Kind::Scratch,
        }
    }
}

impl Heap for NallocHeap {
    fn with_kind<R>(&self, kind: Kind, f: impl FnOnce() -> R) -> R {
        let ctx = self.ctx.borrow();
        let arena = ctx
            .arena(Self::kind(kind))
            .expect("every kind has an arena");
        nalloc::route(arena, f)
    }
    fn proof_end(&self) {
        let mut ctx = self.ctx.borrow_mut();
        let [poly, witness, scratch] = ctx.arenas_mut();
        // Refused only if a routed block of the proof were still alive: a bug of the benchmark.
        poly.unwrap().reset().expect("reset the polynomial arena");
        scratch.unwrap().reset().expect("reset the scratch arena");
        witness.unwrap().wipe().expect("wipe the witness arena");
    }
    fn wipes_witness(&self) -> bool {
        true
    }
}

fn alloc_vec<T: Clone>(heap: &impl Heap, kind: Kind, len: usize, value: T) -> Vec<T> {
    heap.with_kind(kind, || vec![value; len])
}

// ---- Fields and NTTs (bench/field.h, bench/ntt.c) ---------------------------------------------

const GL_P: u64 = 0xFFFF_FFFF_0000_0001;
const GL_EPSILON: u64 = 0xFFFF_FFFF;
const BB_P: u32 = 2_013_265_921;

/// A prime field element type: u64 is Goldilocks, u32 BabyBear.
trait Field: Copy + Default + Send + Sync + 'static {
    const P: u64;
    const GENERATOR: Self;
    fn add(self, b: Self) -> Self;
    fn sub(self, b: Self) -> Self;
    fn mul(self, b: Self) -> Self;
    fn from_random(x: u64) -> Self;
    fn from_u64(x: u64) -> Self; // x < P
    fn to_u64(self) -> u64;
    fn one() -> Self {
        Self::from_u64(1)
    }
    fn pow(self, mut e: u64) -> Self {
        let (mut r, mut b) = (Self::one(), self);
        while e != 0 {
            if e & 1 != 0 {
                r = r.mul(b);
            }
            b = b.mul(b);
            e >>= 1;
        }
        r
    }
    fn inv(self) -> Self {
        self.pow(Self::P - 2)
    }
    fn root_of_unity(log_n: u32) -> Self {
        Self::GENERATOR.pow((Self::P - 1) >> log_n)
    }
}

impl Field for u64 {
    const P: u64 = GL_P;
    const GENERATOR: u64 = 7;
    fn add(self, b: u64) -> u64 {
        let (mut s, over) = self.overflowing_add(b);
        if over {
            s = s.wrapping_add(GL_EPSILON);
        }
        if s >= GL_P {
            s - GL_P
        } else {
            s
        }
    }
    fn sub(self, b: u64) -> u64 {
        let (d, under) = self.overflowing_sub(b);
        if under {
            d.wrapping_sub(GL_EPSILON)
        } else {
            d
        }
    }
    fn mul(self, b: u64) -> u64 {
        let x = self as u128 * b as u128;
        let (lo, hi) = (x as u64, (x >> 64) as u64);
        let (hi_hi, hi_lo) = (hi >> 32, hi & GL_EPSILON);
        let (mut t0, under) = lo.overflowing_sub(hi_hi);
        if under {
            t0 = t0.wrapping_sub(GL_EPSILON);
        }
        let t1 = hi_lo * GL_EPSILON;
        let (mut t2, over) = t0.overflowing_add(t1);
        if over {
            t2 = t2.wrapping_add(GL_EPSILON);
        }
        if t2 >= GL_P {
            t2 - GL_P
        } else {
            t2
        }
    }
    fn from_random(x: u64) -> u64 {
        if x >= GL_P {
            x - GL_P
        } else {
            x
        }
    }
    fn from_u64(x: u64) -> u64 {
        x
    }
    fn to_u64(self) -> u64 {
        self
    }
}

impl Field for u32 {
    const P: u64 = BB_P as u64;
    const GENERATOR: u32 = 31;
    fn add(self, b: u32) -> u32 {
        let s = self + b;
        if s >= BB_P {
            s - BB_P
        } else {
            s
        }
    }
    fn sub(self, b: u32) -> u32 {
        if self >= b {
            self - b
        } else {
            self + (BB_P - b)
        }
    }
    fn mul(self, b: u32) -> u32 {
        ((self as u64 * b as u64) % BB_P as u64) as u32
    }
    fn from_random(x: u64) -> u32 {
        (x % BB_P as u64) as u32
    }
    fn from_u64(x: u64) -> u32 {
        x as u32
    }
    fn to_u64(self) -> u64 {
        self as u64
    }
}

fn twiddles<F: Field>(tw: &mut [F], log_n: u32) {
    let w = F::root_of_unity(log_n);
    let mut x = F::one();
    for t in tw.iter_mut().take((1usize << log_n) / 2) {
        *t = x;
        x = x.mul(w);
    }
}

fn ntt<F: Field>(a: &mut [F], log_n: u32, tw: &[F], stride: usize) {
    let n = 1usize << log_n;
    let mut j = 0usize;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j ^= bit;
        if i < j {
            a.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let (half, step) = (len / 2, (n / len) * stride);
        for chunk in a[..n].chunks_exact_mut(len) {
            let (lo, hi) = chunk.split_at_mut(half);
            for k in 0..half {
                let (u, v) = (lo[k], hi[k].mul(tw[k * step]));
                lo[k] = u.add(v);
                hi[k] = u.sub(v);
            }
        }
        len <<= 1;
    }
}

fn intt<F: Field>(a: &mut [F], log_n: u32, tw: &[F], stride: usize) {
    let n = 1usize << log_n;
    ntt(a, log_n, tw, stride);
    let mut k = 1;
    while k < n - k {
        a.swap(k, n - k);
        k += 1;
    }
    let n_inv = F::from_u64(n as u64 % F::P).inv();
    for x in &mut a[..n] {
        *x = x.mul(n_inv);
    }
}

/// Low-degree extension in place: col holds h values, gets h << log_blowup.
fn lde<F: Field>(col: &mut [F], log_h: u32, log_blowup: u32, shift: F, tw: &[F]) {
    let h = 1usize << log_h;
    intt(&mut col[..h], log_h, tw, 1 << log_blowup);
    let mut x = F::one();
    for v in &mut col[..h] {
        *v = v.mul(x);
        x = x.mul(shift);
    }
    col[h..].fill(F::default());
    ntt(col, log_h + log_blowup, tw, 1);
}

// ---- Hashing, transcript (bench/prover.c) -----------------------------------------------------

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix64(*state)
}

type Digest = [u64; 4];

fn lane_absorb(lane: u64, v: u64) -> u64 {
    (lane ^ v)
        .rotate_left(23)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn compress(a: &Digest, b: &Digest) -> Digest {
    std::array::from_fn(|l| {
        mix64(a[l] ^ b[l].rotate_left(17) ^ 0x632b_e59b_d9b4_e019u64.wrapping_mul(l as u64 + 1))
    })
}

fn absorb(t: &mut u64, v: u64) {
    *t = mix64(*t ^ v).wrapping_add(0x2545_f491_4f6c_dd1d);
}

fn absorb_digest(t: &mut u64, d: &Digest) {
    for &w in d {
        absorb(t, w);
    }
}

fn challenge(t: &mut u64, modulus: u64) -> u64 {
    absorb(t, 0x5eed);
    *t % modulus
}

// ---- Parallel loops ---------------------------------------------------------------------------

const ROW_CHUNK: usize = 2048;

/// A pointer the workers of one loop share; each writes a disjoint part.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}
impl<T> Shared<T> {
    fn new(v: &mut [T]) -> Shared<T> {
        Shared(v.as_mut_ptr())
    }
    /// Element i.
    fn at(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
    /// Elements [start, start + len).
    /// SAFETY: in bounds, and no other worker touches them meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Run f(begin, end) over [0, n) in chunks, on `threads` threads (the caller's included).
fn par_for(threads: usize, n: usize, chunk: usize, f: impl Fn(usize, usize) + Sync) {
    let chunks = n.div_ceil(chunk);
    if threads <= 1 || chunks <= 1 {
        for c in 0..chunks {
            f(c * chunk, ((c + 1) * chunk).min(n));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let work = || loop {
        let c = next.fetch_add(1, Ordering::Relaxed);
        if c >= chunks {
            break;
        }
        f(c * chunk, ((c + 1) * chunk).min(n));
    };
    // The threads' own bookkeeping (spawning allocates) never comes from the floor: a thread
    // may free it after the proof has ended and the floor has been reset.
    let floor = FLOOR_ON.with(|f| f.replace(false));
    std::thread::scope(|s| {
        for _ in 1..threads.min(chunks) {
            s.spawn(work);
        }
        work();
    });
    FLOOR_ON.with(|f| f.set(floor));
}

// ---- The prover -------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Params {
    traces: u32,
    min_log_height: u32,
    max_log_height: u32,
    small_percent: u32,
    min_width: u32,
    max_width: u32,
    elem: u32, // 8, 4 or 0 (mixed)
    log_blowup: u32,
    log_scale: u32,
    queries: u32,
    seed: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            traces: 40,
            min_log_height: 5,
            max_log_height: 12,
            small_percent: 70,
            min_width: 8,
            max_width: 400,
            elem: 8,
            log_blowup: 1,
            log_scale: 0,
            queries: 30,
            seed: 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Table {
    log_height: u32,
    width: u32,
    elem: u32,
}

fn tables(p: &Params) -> Vec<Table> {
    let mut rng = p.seed;
    let (lo, hi) = (p.min_log_height, p.max_log_height);
    let mid = lo + (hi - lo) / 2;
    (0..p.traces)
        .map(|_| {
            let small = random(&mut rng) % 100 < p.small_percent as u64 || mid == hi;
            let (base, span) = if small {
                (lo, mid - lo + 1)
            } else {
                (mid + 1, hi - mid)
            };
            let log_height = base + (random(&mut rng) % span as u64) as u32 + p.log_scale;
            let u = (random(&mut rng) >> 11) as f64 / 9_007_199_254_740_992.0;
            let (min, max) = (p.min_width as f64, p.max_width as f64);
            let w = (min.ln() + u * ((max + 1.0).ln() - min.ln())).exp();
            let width = (w as u32).clamp(p.min_width, p.max_width);
            let elem = if p.elem != 0 {
                p.elem
            } else if random(&mut rng) & 1 != 0 {
                8
            } else {
                4
            };
            Table {
                log_height,
                width,
                elem,
            }
        })
        .collect()
}

fn perm_width(t: &Table) -> usize {
    2 * (1 + t.width as usize / 16)
}

/// One table's buffers that live until the end of the proof.
struct TableData<F> {
    witness: Vec<F>,  // h x width, row-major
    perm: Vec<F>,     // perm_width columns of h (witness memory too)
    lde: Vec<F>,      // width columns of n
    perm_lde: Vec<F>, // perm_width columns of n
    quotient: Vec<F>, // 2 columns of n
    trees: Vec<Vec<Digest>>,
}

enum Data {
    Gl(TableData<u64>),
    Bb(TableData<u32>),
}

impl Data {
    fn load(&self, which: usize, index: usize) -> u64 {
        fn pick<F: Field>(d: &TableData<F>, which: usize, index: usize) -> u64 {
            [&d.lde, &d.perm_lde, &d.quotient][which][index].to_u64()
        }
        match self {
            Data::Gl(d) => pick(d, which, index),
            Data::Bb(d) => pick(d, which, index),
        }
    }
}

/// A Merkle tree over the rows of a column-major matrix (cols columns of `rows`); its root.
fn merkle<F: Field>(
    heap: &impl Heap,
    threads: usize,
    m: &[F],
    cols: usize,
    rows: usize,
) -> (Vec<Digest>, Digest) {
    let mut tree = alloc_vec(heap, Kind::Poly, 2 * rows, [0u64; 4]);
    let out = Shared::new(&mut tree);
    par_for(threads, rows, ROW_CHUNK, |begin, end| {
        let leaves = unsafe { out.slice(rows + begin, end - begin) };
        for (i, d) in (begin..end).zip(leaves) {
            let mut lane = [1u64, 2, 3, 4];
            for c in 0..cols {
                lane[c & 3] = lane_absorb(lane[c & 3], m[c * rows + i].to_u64());
            }
            *d = std::array::from_fn(|l| mix64(lane[l] ^ cols as u64));
        }
    });
    let mut level = rows / 2;
    while level >= 1 {
        par_for(threads, level, ROW_CHUNK, |begin, end| {
            for i in level + begin..level + end {
                // SAFETY: node i is written by this chunk alone; its children are a finished level.
                unsafe {
                    let (a, b) = (*out.at(2 * i), *out.at(2 * i + 1));
                    *out.at(i) = compress(&a, &b);
                }
            }
        });
        level /= 2;
    }
    tree[0] = tree[1];
    let root = tree[1];
    (tree, root)
}

/// Extend `cols` columns of h rows (src row-major or column-major) into n-row columns.
#[allow(clippy::too_many_arguments)] // the C kernel's job struct, spelled out
fn extend<F: Field>(
    threads: usize,
    t: &Table,
    log_blowup: u32,
    src: &[F],
    row_major: bool,
    cols: usize,
    dst: &mut [F],
    tw: &[F],
) {
    let (log_h, h) = (t.log_height, 1usize << t.log_height);
    let n = h << log_blowup;
    let out = Shared::new(dst);
    par_for(threads, cols, 1, |begin, end| {
        for c in begin..end {
            let col = unsafe { out.slice(c * n, n) };
            if row_major {
                for r in 0..h {
                    col[r] = src[r * cols + c];
                }
            } else {
                col[..h].copy_from_slice(&src[c * h..(c + 1) * h]);
            }
            lde(col, log_h, log_blowup, F::GENERATOR, tw);
        }
    });
}

struct Prover {
    params: Params,
    tables: Vec<Table>,
    threads: usize,
}

impl Prover {
    fn prove(&self, heap: &impl Heap, index: u32) -> u64 {
        let p = &self.params;
        let mut transcript = mix64(p.seed.wrapping_add(index as u64));
        let mut data: Vec<Data> = Vec::with_capacity(self.tables.len());
        // Trace generation.
        for (i, t) in self.tables.iter().enumerate() {
            let seed = mix64(p.seed ^ ((index as u64) << 32) ^ i as u64);
            data.push(match t.elem {
                8 => Data::Gl(self.trace::<u64>(heap, t, seed)),
                _ => Data::Bb(self.trace::<u32>(heap, t, seed)),
            });
        }
        // Commit, permutation, quotient: phase by phase over all tables, as bench/prover.c does.
        for phase in 0..3 {
            let r = match phase {
                0 => 0,
                _ => challenge(&mut transcript, GL_P),
            };
            for (t, d) in self.tables.iter().zip(&mut data) {
                let root = heap.scope(|| match d {
                    Data::Gl(d) => self.phase::<u64>(heap, phase, t, d, r),
                    Data::Bb(d) => self.phase::<u32>(heap, phase, t, d, r),
                });
                absorb_digest(&mut transcript, &root);
            }
        }
        let (fri, fri_trees) = self.fri(heap, &data, &mut transcript);
        // Queries.
        for _ in 0..p.queries {
            let index = challenge(&mut transcript, u64::MAX);
            for (t, d) in self.tables.iter().zip(&data) {
                let n = 1usize << (t.log_height + p.log_blowup);
                let row = index as usize & (n - 1);
                for (which, cols) in [(0, t.width as usize), (1, perm_width(t)), (2, 2)] {
                    for c in 0..cols {
                        absorb(&mut transcript, d.load(which, c * n + row));
                    }
                }
            }
            for layer in &fri {
                absorb(&mut transcript, layer[index as usize & (layer.len() - 1)]);
            }
        }
        // The end of the proof: the witness is zeroed (by the heap, or here), then everything is
        // freed.
        for d in data.iter_mut().filter(|_| !heap.wipes_witness()) {
            match d {
                Data::Gl(d) => {
                    wipe(&mut d.witness);
                    wipe(&mut d.perm);
                }
                Data::Bb(d) => {
                    wipe(&mut d.witness);
                    wipe(&mut d.perm);
                }
            }
        }
        drop(fri_trees);
        drop(fri);
        drop(data);
        heap.proof_end();
        transcript
    }

    fn trace<F: Field>(&self, heap: &impl Heap, t: &Table, seed: u64) -> TableData<F> {
        let (h, cols) = (1usize << t.log_height, t.width as usize);
        let mut witness = alloc_vec(heap, Kind::Witness, h * cols, F::default());
        let out = Shared::new(&mut witness);
        par_for(self.threads, h, ROW_CHUNK / 4, |begin, end| {
            let rows = unsafe { out.slice(begin * cols, (end - begin) * cols) };
            for (k, v) in rows.iter_mut().enumerate() {
                *v = F::from_random(mix64(seed.wrapping_add((begin * cols + k) as u64)));
            }
        });
        TableData {
            witness,
            perm: Vec::new(),
            lde: Vec::new(),
            perm_lde: Vec::new(),
            quotient: Vec::new(),
            trees: Vec::new(),
        }
    }

    /// Phase 0 commit, 1 permutation (r = beta), 2 quotient (r = alpha) for one table.
    fn phase<F: Field>(
        &self,
        heap: &impl Heap,
        phase: u32,
        t: &Table,
        d: &mut TableData<F>,
        r: u64,
    ) -> Digest {
        let lb = self.params.log_blowup;
        let (log_h, h) = (t.log_height, 1usize << t.log_height);
        let (log_n, n) = (log_h + lb, h << lb);
        let width = t.width as usize;
        let threads = self.threads;
        match phase {
            0 => {
                let mut tw = alloc_vec(heap, Kind::Scratch, n / 2, F::default());
                d.lde = alloc_vec(heap, Kind::Poly, n * width, F::default());
                twiddles(&mut tw, log_n);
                extend(threads, t, lb, &d.witness, true, width, &mut d.lde, &tw);
                let (tree, root) = merkle(heap, threads, &d.lde, width, n);
                d.trees.push(tree);
                root
            }
            1 => {
                let pw = perm_width(t);
                let mut den = alloc_vec(heap, Kind::Scratch, h * pw, F::default());
                d.perm = alloc_vec(heap, Kind::Witness, h * pw, F::default());
                let (den_out, perm_out) = (Shared::new(&mut den), Shared::new(&mut d.perm));
                let w = &d.witness;
                par_for(threads, pw, 1, |begin, end| {
                    for k in begin..end {
                        let (den, perm) =
                            unsafe { (den_out.slice(k * h, h), perm_out.slice(k * h, h)) };
                        let beta = F::from_u64((r.wrapping_add(k as u64)) % F::P);
                        let col = k % width;
                        for r in 0..h {
                            den[r] = beta.add(w[r * width + col]);
                        }
                        let mut acc = F::one();
                        for r in 0..h {
                            acc = acc.mul(den[r]);
                            perm[r] = acc;
                        }
                    }
                });
                let mut tw = alloc_vec(heap, Kind::Scratch, n / 2, F::default());
                d.perm_lde = alloc_vec(heap, Kind::Poly, n * pw, F::default());
                twiddles(&mut tw, log_n);
                extend(threads, t, lb, &d.perm, false, pw, &mut d.perm_lde, &tw);
                let (tree, root) = merkle(heap, threads, &d.perm_lde, pw, n);
                d.trees.push(tree);
                drop(tw);
                drop(den);
                root
            }
            _ => {
                let mut acc = alloc_vec(heap, Kind::Scratch, 2 * n, F::default());
                let mut zinv = alloc_vec(heap, Kind::Scratch, 1 << lb, F::default());
                d.quotient = alloc_vec(heap, Kind::Poly, 2 * n, F::default());
                let mut x = F::GENERATOR.pow(1u64 << log_h);
                let wb = F::root_of_unity(lb);
                for z in zinv.iter_mut() {
                    *z = x.sub(F::one()).inv();
                    x = x.mul(wb);
                }
                let alpha = F::from_u64(r % F::P);
                let (acc_out, q_out) = (Shared::new(&mut acc), Shared::new(&mut d.quotient));
                let (lde, perm_lde, zinv_ref) = (&d.lde, &d.perm_lde, &zinv);
                let pw = perm_width(t);
                let mask = (1usize << lb) - 1;
                par_for(threads, n, ROW_CHUNK, |begin, end| {
                    let (acc0, acc1) = unsafe {
                        (
                            acc_out.slice(begin, end - begin),
                            acc_out.slice(n + begin, end - begin),
                        )
                    };
                    acc0.fill(F::default());
                    acc1.fill(F::default());
                    let mut coef = F::one();
                    for (acc, m, cols) in [(&mut *acc0, lde, width), (&mut *acc1, perm_lde, pw)] {
                        for c in 0..cols {
                            let col = &m[c * n + begin..c * n + end];
                            for (a, v) in acc.iter_mut().zip(col) {
                                *a = a.add(coef.mul(*v));
                            }
                            coef = coef.mul(alpha);
                        }
                    }
                    let (q0, q1) = unsafe {
                        (
                            q_out.slice(begin, end - begin),
                            q_out.slice(n + begin, end - begin),
                        )
                    };
                    for k in 0..end - begin {
                        let z = zinv_ref[(begin + k) & mask];
                        q0[k] = acc0[k].mul(z);
                        q1[k] = acc1[k].mul(z);
                    }
                });
                let (tree, root) = merkle(heap, threads, &d.quotient, 2, n);
                d.trees.push(tree);
                drop(zinv);
                drop(acc);
                root
            }
        }
    }

    /// FRI over Goldilocks: batch every quotient into one codeword, fold to 8 points.
    /// Returns the layers and their trees, which live until the end of the proof.
    #[allow(clippy::type_complexity)]
    fn fri(
        &self,
        heap: &impl Heap,
        data: &[Data],
        transcript: &mut u64,
    ) -> (Vec<Vec<u64>>, Vec<Vec<Digest>>) {
        let lb = self.params.log_blowup;
        let mut log_n = self
            .tables
            .iter()
            .map(|t| t.log_height + lb)
            .max()
            .unwrap_or(0);
        let alpha = challenge(transcript, GL_P);
        let mut f = alloc_vec(heap, Kind::Poly, 1 << log_n, 0u64);
        let out = Shared::new(&mut f);
        par_for(self.threads, 1 << log_n, ROW_CHUNK, |begin, end| {
            let f = unsafe { out.slice(begin, end - begin) };
            f.fill(0);
            let mut coef = 1u64;
            for (t, d) in self.tables.iter().zip(data) {
                let n = 1usize << (t.log_height + lb);
                for (k, v) in f.iter_mut().enumerate() {
                    let i = (begin + k) & (n - 1);
                    let q = d.load(2, i).add(d.load(2, n + i));
                    *v = v.add(coef.mul(q));
                }
                coef = coef.mul(alpha);
            }
        });
        let mut layers = Vec::new();
        let mut trees = Vec::new();
        loop {
            let (tree, root) = merkle(heap, self.threads, &f, 1, 1 << log_n);
            trees.push(tree);
            absorb_digest(transcript, &root);
            if log_n <= 3 {
                layers.push(f);
                break;
            }
            let beta = challenge(transcript, GL_P);
            log_n -= 1;
            let half = 1usize << log_n;
            let mut next = alloc_vec(heap, Kind::Poly, half, 0u64);
            let out = Shared::new(&mut next);
            let cur = &f;
            par_for(self.threads, half, ROW_CHUNK, |begin, end| {
                let next = unsafe { out.slice(begin, end - begin) };
                for (k, v) in next.iter_mut().enumerate() {
                    *v = cur[begin + k].add(beta.mul(cur[begin + k + half]));
                }
            });
            layers.push(std::mem::replace(&mut f, next));
        }
        (layers, trees)
    }
}

/// Zero a witness buffer with stores the optimizer must keep.
fn wipe<F: Field>(v: &mut [F]) {
    v.fill(F::default());
    std::hint::black_box(&v);
}

// ---- Measuring --------------------------------------------------------------------------------

#[repr(C)]
#[derive(Default)]
struct RUsage {
    utime: [c_long; 2],
    stime: [c_long; 2],
    rest: [c_long; 14], // maxrss, ixrss, idrss, isrss, minflt, majflt, ...
}

struct Usage {
    wall: f64,
    user: f64,
    sys: f64,
    minflt: c_long,
    majflt: c_long,
}

fn usage_now(start: Instant) -> Usage {
    let mut r = RUsage::default();
    unsafe { getrusage(0, &mut r) }; // RUSAGE_SELF
    let secs = |t: [c_long; 2]| t[0] as f64 + t[1] as f64 * 1e-6;
    Usage {
        wall: start.elapsed().as_secs_f64(),
        user: secs(r.utime),
        sys: secs(r.stime),
        minflt: r.rest[4],
        majflt: r.rest[5],
    }
}

fn proc_status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn rss_peak_reset() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

// ---- Worker: one mode, one process --------------------------------------------------------------

const PROT_READ_WRITE: c_int = 0x1 | 0x2;
const MAP_PRIVATE_ANON_NORESERVE: c_int = 0x02 | 0x20 | 0x4000;

fn worker(mode: Mode, prover: &Prover, proofs: u32, round: u32) {
    let mut setup = 0.0;
    let heap_floor = FloorHeap;
    if mode == Mode::Floor {
        // Reserve address space, size the region with one untimed proof (which faults its pages
        // in), then touch every page up to the high-water mark: the proofs that follow fault
        // nothing.
        let start = Instant::now();
        let reserve = 1usize << 40;
        let base = unsafe {
            mmap(
                std::ptr::null_mut(),
                reserve,
                PROT_READ_WRITE,
                MAP_PRIVATE_ANON_NORESERVE,
                -1,
                0,
            )
        };
        assert!(base as isize != -1, "floor: cannot reserve address space");
        FLOOR.base.store(base as usize, Ordering::Relaxed);
        FLOOR.capacity.store(reserve, Ordering::Relaxed);
        FLOOR_ON.with(|f| f.set(true));
        prover.prove(&heap_floor, u32::MAX);
        FLOOR_ON.with(|f| f.set(false));
        let high_water = FLOOR.high_water.load(Ordering::Relaxed);
        for page in (0..high_water).step_by(4096) {
            unsafe { (base as *mut u8).add(page).write_volatile(0) };
        }
        setup = start.elapsed().as_secs_f64();
        println!("#floor region={high_water}");
    }
    let heap_nalloc = (mode == Mode::Nalloc).then(|| {
        // Size the arenas with one untimed proof on a dry-run context (address space only),
        // then create them 10% larger with every page faulted in.
        let start = Instant::now();
        let dry = nalloc::ContextConfig::dry_run(nalloc::Memory::Host, 0)
            .build()
            .expect("a dry-run context");
        let heap = NallocHeap {
            ctx: std::cell::RefCell::new(dry),
        };
        prover.prove(&heap, u32::MAX);
        let profile = heap.ctx.borrow().profile().expect("the dry run's profile");
        drop(heap);
        let mut config = nalloc::ContextConfig::from_profile(nalloc::Memory::Host, &profile, 0.10)
            .expect("a sized configuration");
        for kind in nalloc::Kind::ALL {
            config.arena_mut(kind).enable(nalloc::Flags::POPULATE);
        }
        let ctx = config.build().expect("the sized context");
        setup = start.elapsed().as_secs_f64();
        let capacity = |k| ctx.arena(k).map_or(0, |a: &nalloc::Arena| a.capacity());
        println!(
            "#nalloc arenas poly={} witness={} scratch={}",
            capacity(nalloc::Kind::Poly),
            capacity(nalloc::Kind::Witness),
            capacity(nalloc::Kind::Scratch)
        );
        NallocHeap {
            ctx: std::cell::RefCell::new(ctx),
        }
    });
    let per_proof_rss = rss_peak_reset();
    for i in 0..proofs {
        rss_peak_reset();
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        let live_before = LIVE.load(Ordering::Relaxed);
        let start = Instant::now();
        let before = usage_now(start);
        let checksum = if mode == Mode::Floor {
            FLOOR_ON.with(|f| f.set(true));
            let c = prover.prove(&heap_floor, i);
            FLOOR_ON.with(|f| f.set(false));
            c
        } else if let Some(heap) = &heap_nalloc {
            prover.prove(heap, i)
        } else {
            prover.prove(&GlobalHeap, i)
        };
        let after = usage_now(start);
        println!(
            "{},{},{},{:.6},{:.6},{:.6},{},{},{},{},{},{:.6},{:016x}",
            mode.name(),
            round,
            i + 1,
            after.wall,
            after.user - before.user,
            after.sys - before.sys,
            after.minflt - before.minflt,
            after.majflt - before.majflt,
            proc_status_kib("VmHWM") * 1024,
            proc_status_kib("VmRSS") * 1024,
            PEAK.load(Ordering::Relaxed) - live_before,
            if i == 0 || mode == Mode::Floor {
                setup
            } else {
                0.0
            },
            checksum
        );
    }
    if !per_proof_rss {
        println!("# note: /proc/self/clear_refs refused; peak RSS is the process-wide peak");
    }
    if let Some(heap) = &heap_nalloc {
        // Requests an arena had no room for went to System: say so, the sizing was short.
        for arena in heap.ctx.borrow().arenas().into_iter().flatten() {
            let s = arena.stats();
            if s.fallbacks > 0 {
                eprintln!(
                    "bench: the {} arena fell back to System {} times",
                    s.name, s.fallbacks
                );
            }
        }
    }
}

// ---- Driver -------------------------------------------------------------------------------------

struct Sample {
    mode: String,
    round: u32,
    proof: u32,
    wall: f64,
    user: f64,
    sys: f64,
    minflt: f64,
    peak_rss: f64,
    peak_live: f64,
    checksum: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn available_modes() -> Vec<Mode> {
    let mut modes = vec![Mode::Floor, Mode::System, Mode::Nalloc];
    if cfg!(have_mimalloc) {
        modes.push(Mode::Mimalloc);
    }
    modes
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench prover -- [--modes floor,system,mimalloc,nalloc] [--rounds N] [--proofs N]\n\
         \x20      [--threads N] [--scale N] [--traces N] [--smoke] [--csv FILE]"
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut params = Params::default();
    let (mut rounds, mut proofs) = (3u32, 4u32);
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut modes = available_modes();
    let (mut csv, mut worker_mode, mut round) = (None::<String>, None::<Mode>, 0u32);
    let mut smoke = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| usage());
        let number = |v: String| v.parse::<u64>().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--bench" => {} // cargo bench passes it
            "--smoke" => smoke = true,
            "--worker" => worker_mode = Some(Mode::from_name(&value()).unwrap_or_else(|| usage())),
            "--round" => round = number(value()) as u32,
            "--modes" => {
                modes = value()
                    .split(',')
                    .map(|m| Mode::from_name(m).unwrap_or_else(|| usage()))
                    .collect();
                if !cfg!(have_mimalloc) && modes.contains(&Mode::Mimalloc) {
                    eprintln!("bench: libmimalloc was not found at build time; skipping mimalloc");
                    modes.retain(|&m| m != Mode::Mimalloc);
                }
            }
            "--rounds" => rounds = number(value()) as u32,
            "--proofs" => proofs = number(value()) as u32,
            "--threads" => threads = number(value()).max(1) as usize,
            "--scale" => params.log_scale = (number(value()).max(1) as f64).log2() as u32,
            "--traces" => params.traces = number(value()) as u32,
            "--max-log-height" => params.max_log_height = number(value()) as u32,
            "--csv" => csv = Some(value()),
            _ => usage(),
        }
    }
    if smoke {
        // bench_prover --smoke's trace: every phase, a few seconds for everything.
        (
            params.traces,
            params.min_log_height,
            params.max_log_height,
            params.max_width,
            params.queries,
        ) = (6, 3, 6, 24, 4);
        (rounds, proofs) = (1, 2);
    }
    let prover = Prover {
        tables: tables(&params),
        params: params.clone(),
        threads,
    };

    if let Some(mode) = worker_mode {
        if mode != self::mode() {
            let name = mode.name();
            eprintln!("bench: worker for {name} started without NALLOC_RS_BENCH_MODE={name}");
            std::process::exit(3);
        }
        worker(mode, &prover, proofs, round);
        return;
    }

    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut forwarded = vec![
        "--threads".to_string(),
        threads.to_string(),
        "--proofs".into(),
        proofs.to_string(),
    ];
    for (flag, value) in [
        ("--traces", params.traces),
        ("--max-log-height", params.max_log_height),
        ("--scale", 1 << params.log_scale),
    ] {
        forwarded.extend([flag.to_string(), value.to_string()]);
    }
    if smoke {
        forwarded.push("--smoke".into());
    }
    let heights: Vec<u32> = prover.tables.iter().map(|t| t.log_height).collect();
    let (lo, hi) = (
        heights.iter().min().unwrap_or(&0),
        heights.iter().max().unwrap_or(&0),
    );
    println!(
        "prover-shaped benchmark (Rust, std Vec): {} tables, heights 2^{lo}..2^{hi}, widths {}..{}, blowup {}, \
         {} queries, {threads} threads; {rounds} rounds of {proofs} proofs per allocator",
        params.traces,
        prover.tables.iter().map(|t| t.width).min().unwrap_or(0),
        prover.tables.iter().map(|t| t.width).max().unwrap_or(0),
        1 << params.log_blowup,
        params.queries,
    );
    println!(
        "rustc build: {} profile; machine: {} CPUs",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        threads
    );
    #[cfg(have_mimalloc)]
    println!("mimalloc: {}", unsafe { mi_version() });
    #[cfg(not(have_mimalloc))]
    println!("mimalloc: not found at build time (apt-get install libmimalloc-dev), skipped");

    let mut samples = Vec::new();
    for r in 0..rounds {
        let mut order = modes.clone();
        if r % 2 == 1 {
            order.reverse();
        }
        for &mode in &order {
            let out = Command::new(&exe)
                .args(["--worker", mode.name(), "--round", &r.to_string()])
                .args(&forwarded)
                .env("NALLOC_RS_BENCH_MODE", mode.name())
                .output()
                .expect("start a worker");
            if !out.status.success() {
                eprintln!(
                    "bench: the {} worker failed:\n{}",
                    mode.name(),
                    String::from_utf8_lossy(&out.stderr)
                );
                std::process::exit(1);
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if line.starts_with('#') {
                    continue;
                }
                let f: Vec<&str> = line.split(',').collect();
                let num = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
                samples.push(Sample {
                    mode: f[0].to_string(),
                    round: f[1].parse().unwrap_or(0),
                    proof: f[2].parse().unwrap_or(0),
                    wall: num(3),
                    user: num(4),
                    sys: num(5),
                    minflt: num(6),
                    peak_rss: num(8),
                    peak_live: num(10),
                    checksum: f[12].to_string(),
                });
            }
        }
    }

    // Every allocator must have computed the same proofs.
    for s in &samples {
        let reference = samples
            .iter()
            .find(|t| t.proof == s.proof)
            .expect("itself at least");
        if s.checksum != reference.checksum {
            eprintln!(
                "bench: proof {} differs: {} under {}, {} under {}",
                s.proof, s.checksum, s.mode, reference.checksum, reference.mode
            );
            std::process::exit(1);
        }
    }

    if let Some(path) = &csv {
        let mut file = std::fs::File::create(path).expect("create the CSV file");
        writeln!(
            file,
            "mode,round,proof,wall_s,user_s,sys_s,minflt,peak_rss_bytes,peak_live_bytes,checksum"
        )
        .unwrap();
        for s in &samples {
            writeln!(
                file,
                "{},{},{},{:.6},{:.6},{:.6},{},{},{},{}",
                s.mode,
                s.round,
                s.proof,
                s.wall,
                s.user,
                s.sys,
                s.minflt,
                s.peak_rss,
                s.peak_live,
                s.checksum
            )
            .unwrap();
        }
    }

    let summary = |mode: Mode, first: bool| {
        let pick: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.mode == mode.name() && (s.proof == 1) == first)
            .collect();
        let m = |f: fn(&Sample) -> f64| median(pick.iter().map(|s| f(s)).collect());
        (
            m(|s| s.wall),
            m(|s| s.user),
            m(|s| s.sys),
            m(|s| s.minflt),
            m(|s| s.peak_rss),
            m(|s| s.peak_live),
            pick.len(),
            m(|s| s.user + s.sys),
        )
    };
    println!(
        "checksums agree across allocators: proof 1 = {}",
        samples[0].checksum
    );
    println!();
    println!(
        "medians; ratio = wall time over the floor's; cpu_ratio = user + system time over the \
         floor's (on a loaded machine, wall time is mostly waiting for a CPU)"
    );
    println!(
        "{:<10} {:<7} {:>4} {:>9} {:>7} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10}",
        "mode",
        "proofs",
        "n",
        "wall_s",
        "ratio",
        "user_s",
        "sys_s",
        "cpu_ratio",
        "minflt",
        "peak_rss",
        "peak_live"
    );
    for first in [true, false] {
        if !first && proofs < 2 {
            continue;
        }
        let floor = summary(Mode::Floor, first);
        let ratio = |x: f64, floor: f64| {
            if floor > 0.0 {
                format!("{:.2}", x / floor)
            } else {
                "-".into()
            }
        };
        for &mode in &modes {
            let (wall, user, sys, minflt, rss, live, n, cpu) = summary(mode, first);
            println!(
                "{:<10} {:<7} {:>4} {:>9.3} {:>7} {:>8.3} {:>8.3} {:>9} {:>10.0} {:>9.1}M {:>9.1}M",
                mode.name(),
                if first { "first" } else { "steady" },
                n,
                wall,
                ratio(wall, floor.0),
                user,
                sys,
                ratio(cpu, floor.7),
                minflt,
                rss / 1048576.0,
                live / 1048576.0
            );
        }
    }
    // Rounds alternate the order of the modes, and the load on a shared machine drifts within a
    // run: each mode against the floor of its own round cancels most of the drift.
    if proofs >= 2 && modes.contains(&Mode::Floor) {
        println!();
        println!(
            "steady state, each round against the floor of the same round (median over rounds):"
        );
        let total = |mode: Mode, round: u32, f: fn(&Sample) -> f64| -> f64 {
            samples
                .iter()
                .filter(|s| s.mode == mode.name() && s.round == round && s.proof >= 2)
                .map(f)
                .sum()
        };
        for &mode in modes.iter().filter(|&&m| m != Mode::Floor) {
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                let floor_wall = total(Mode::Floor, round, |s| s.wall);
                let floor_cpu = total(Mode::Floor, round, |s| s.user + s.sys);
                if floor_wall > 0.0 && floor_cpu > 0.0 {
                    wall.push(total(mode, round, |s| s.wall) / floor_wall);
                    cpu.push(total(mode, round, |s| s.user + s.sys) / floor_cpu);
                }
            }
            println!(
                "  {:<10} wall {:.3}  cpu {:.3}",
                mode.name(),
                median(wall),
                median(cpu)
            );
        }
    }
    for &mode in &modes {
        println!("  {}: {}", mode.name(), mode.what());
    }
}
