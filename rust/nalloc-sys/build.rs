//! Build script of nalloc-sys: find or build the C library, and record its struct layouts.
//!
//! Where the library comes from, first match wins:
//!
//! 1. `NALLOC_LIB_DIR`: an installed nalloc (`libnalloc.a` or `libnalloc.so` there; headers in
//!    `NALLOC_INCLUDE_DIR`, default `$NALLOC_LIB_DIR/../include`). Static when only the archive
//!    is there or `NALLOC_STATIC=1`.
//! 2. `NALLOC_USE_PKG_CONFIG=1`, or no C sources next to this crate: `pkg-config nalloc` (with
//!    the `cuda` feature `pkg-config nalloc-cuda`, which adds the CUDA toolkit's headers).
//! 3. Otherwise the C sources of the repository this crate lives in (`../..`, or
//!    `NALLOC_SOURCE_DIR`), built with CMake into `OUT_DIR` as a static, host-only library (the
//!    `cuda` feature adds the CUDA parts). The build is incremental (CMake's own dependency
//!    tracking in a build folder that survives between cargo runs) and quiet: CMake's output goes
//!    to `OUT_DIR/cmake.log`, printed only when it fails.
//!
//! Then the layout probe: the build script reads the public headers, writes a C program that
//! prints sizeof, alignof and offsetof of every field of every struct they define, and the value
//! of every enumerator and numeric macro, and the name of every function (exported or `static
//! inline`), compiles it with the C compiler (`CC`, default `cc`)
//! against the very headers the library was built from, runs it, and saves what it prints as
//! Rust constants (`OUT_DIR/c_layout.rs`). `tests/layout.rs` compares them with the Rust
//! declarations in `src/lib.rs`, so a header change that the bindings do not follow fails the
//! tests instead of corrupting memory. (Cross-compiling, the probe cannot run; the constants then
//! say so and the test checks nothing.)
//!
//! The library's generated `nalloc/config.h` says how it was built; its `NALLOC_HAVE_CUDA` and
//! `NALLOC_HAVE_NVTX` become constants of this crate (`OUT_DIR/config.rs`).
//!
//! Dependents' build scripts see `DEP_NALLOC_INCLUDE` (the header folders, `:`-separated),
//! `DEP_NALLOC_CUDA` (`1` when the library has its CUDA parts), `DEP_NALLOC_NVTX` (`1` when it
//! has NVTX annotations) and `DEP_NALLOC_CUDA_LIB_DIR`.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the library and its headers are, once found or built.
struct Library {
    include_dirs: Vec<PathBuf>,
    has_cuda: bool,
    has_nvtx: bool,
}

fn main() {
    for var in [
        "NALLOC_LIB_DIR",
        "NALLOC_INCLUDE_DIR",
        "NALLOC_STATIC",
        "NALLOC_USE_PKG_CONFIG",
        "NALLOC_SOURCE_DIR",
        "NALLOC_CMAKE_BUILD_TYPE",
        "NALLOC_CUDA_ARCHITECTURES",
        "CUDA_PATH",
        "CC",
        "CMAKE",
        "PKG_CONFIG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let want_cuda = env::var_os("CARGO_FEATURE_CUDA").is_some();
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let source = env::var_os("NALLOC_SOURCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../.."));
    let have_source = source.join("CMakeLists.txt").is_file() && source.join("src").is_dir();

    let lib = if let Some(dir) = env::var_os("NALLOC_LIB_DIR") {
        installed(Path::new(&dir))
    } else if env_flag("NALLOC_USE_PKG_CONFIG") || !have_source {
        let module = if want_cuda { "nalloc-cuda" } else { "nalloc" };
        pkg_config(module).unwrap_or_else(|why| {
            fail(&format!(
                "nalloc-sys: no C sources at {} and pkg-config found no {module} ({why}); set \
                 NALLOC_LIB_DIR to an installed nalloc, or NALLOC_SOURCE_DIR to its sources",
                source.display()
            ))
        })
    } else {
        build_from_source(&source, &out, want_cuda)
    };

    if want_cuda && !lib.has_cuda {
        fail(
            "nalloc-sys: the `cuda` feature needs a nalloc built with its CUDA parts, and this one \
             has none (nalloc/config.h: NALLOC_HAVE_CUDA 0)",
        );
    }
    if lib.has_cuda {
        let cuda_lib = cuda_lib_dir();
        println!("cargo:rustc-link-search=native={}", cuda_lib.display());
        println!("cargo:rustc-link-lib=dylib=cudart");
        println!("cargo:cuda_lib_dir={}", cuda_lib.display());
    }
    println!("cargo:cuda={}", u8::from(lib.has_cuda));
    println!("cargo:nvtx={}", u8::from(lib.has_nvtx));
    let joined = env::join_paths(&lib.include_dirs).expect("include paths contain no ':'");
    println!("cargo:include={}", joined.to_string_lossy());

    write_config(&lib, &out);
    write_layout(&lib, &out, want_cuda);
}

fn env_flag(name: &str) -> bool {
    matches!(
        env::var(name).as_deref(),
        Ok("1") | Ok("ON") | Ok("on") | Ok("yes") | Ok("true")
    )
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1);
}

// ---- Finding or building the library ------------------------------------------------------------

fn installed(lib_dir: &Path) -> Library {
    let include = env::var_os("NALLOC_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| lib_dir.join("../include"));
    if !include.join("nalloc/nalloc.h").is_file() {
        fail(&format!(
            "nalloc-sys: NALLOC_LIB_DIR is {}, but {} has no nalloc/nalloc.h (set NALLOC_INCLUDE_DIR)",
            lib_dir.display(),
            include.display()
        ));
    }
    let has_static = lib_dir.join("libnalloc.a").is_file();
    let has_shared = lib_dir.join("libnalloc.so").exists();
    if !has_static && !has_shared {
        fail(&format!(
            "nalloc-sys: no libnalloc.a or libnalloc.so in {}",
            lib_dir.display()
        ));
    }
    let link_static = has_static && (env_flag("NALLOC_STATIC") || !has_shared);
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    let has_cuda = config_flag(&include, "NALLOC_HAVE_CUDA");
    if link_static {
        println!("cargo:rustc-link-lib=static=nalloc");
        println!("cargo:rustc-link-lib=dylib=m");
        if has_cuda {
            println!("cargo:rustc-link-lib=dylib=stdc++"); // the .cu objects' host code
        }
    } else {
        println!("cargo:rustc-link-lib=dylib=nalloc");
    }
    Library {
        has_nvtx: config_flag(&include, "NALLOC_HAVE_NVTX"),
        include_dirs: vec![include],
        has_cuda,
    }
}

fn pkg_config(module: &str) -> Result<Library, String> {
    let link_static = env_flag("NALLOC_STATIC");
    let mut args = vec!["--cflags", "--libs"];
    if link_static {
        args.push("--static");
    }
    let output = Command::new("pkg-config")
        .args(&args)
        .arg(module)
        .output()
        .map_err(|e| format!("cannot run pkg-config: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    let mut include_dirs = Vec::new();
    for word in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        if let Some(dir) = word.strip_prefix("-I") {
            include_dirs.push(PathBuf::from(dir));
        } else if let Some(dir) = word.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(name) = word.strip_prefix("-l") {
            if name == "nalloc" && link_static {
                println!("cargo:rustc-link-lib=static=nalloc");
            } else if name != "cudart" {
                println!("cargo:rustc-link-lib={name}"); // cudart: linked below, from CUDA_PATH
            }
        }
    }
    let include = include_dirs
        .iter()
        .find(|d| d.join("nalloc/nalloc.h").is_file())
        .cloned()
        .ok_or("its Cflags name no folder with nalloc/nalloc.h")?;
    let has_cuda = config_flag(&include, "NALLOC_HAVE_CUDA");
    if link_static && has_cuda {
        println!("cargo:rustc-link-lib=dylib=stdc++"); // the .cu objects' host code
    }
    Ok(Library {
        has_nvtx: config_flag(&include, "NALLOC_HAVE_NVTX"),
        include_dirs,
        has_cuda,
    })
}

/// A `NALLOC_HAVE_*` macro of the generated nalloc/config.h, defined to 0 or 1 there (absent,
/// in a library from before it: 0).
fn config_flag(include: &Path, name: &str) -> bool {
    let text = fs::read_to_string(include.join("nalloc/config.h")).unwrap_or_default();
    text.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words == ["#define", name, "1"]
    })
}

/// The constants of nalloc/config.h, for `src/lib.rs`.
fn write_config(lib: &Library, out: &Path) {
    let rs = format!(
        "// Generated by nalloc-sys/build.rs from nalloc/config.h: do not edit.\n\
         /// `NALLOC_HAVE_CUDA`: the library was built with its CUDA parts (nalloc/cuda.h).\n\
         pub const NALLOC_HAVE_CUDA: bool = {};\n\
         /// `NALLOC_HAVE_NVTX`: the library was built with NVTX annotations.\n\
         pub const NALLOC_HAVE_NVTX: bool = {};\n",
        lib.has_cuda, lib.has_nvtx
    );
    fs::write(out.join("config.rs"), rs).expect("write config.rs");
}

fn cuda_root() -> PathBuf {
    env::var_os("CUDA_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/cuda"))
}

fn cuda_lib_dir() -> PathBuf {
    let root = cuda_root();
    [
        "lib64",
        "lib",
        "targets/x86_64-linux/lib",
        "targets/sbsa-linux/lib",
    ]
    .iter()
    .map(|d| root.join(d))
    .find(|d| d.join("libcudart.so").exists())
    .unwrap_or_else(|| {
        fail(&format!(
            "nalloc-sys: no libcudart.so under {} (set CUDA_PATH to the CUDA toolkit)",
            root.display()
        ))
    })
}

/// Configure (when the arguments changed) and build the static library target with CMake.
fn build_from_source(source: &Path, out: &Path, cuda: bool) -> Library {
    for dir in ["src", "include", "cuda", "cmake", "CMakeLists.txt"] {
        println!("cargo:rerun-if-changed={}", source.join(dir).display());
    }
    let cmake = env::var("CMAKE").unwrap_or_else(|_| "cmake".into());
    let build = out.join("cmake-build");
    let log = out.join("cmake.log");
    let build_type = env::var("NALLOC_CMAKE_BUILD_TYPE").unwrap_or_else(|_| {
        // Debug builds of the Rust code get the C library's internal assertions (NALLOC_DEBUG=2).
        match env::var("PROFILE").as_deref() {
            Ok("release") => "Release".into(),
            _ => "Debug".into(),
        }
    });
    let mut args = vec![
        format!("-DCMAKE_BUILD_TYPE={build_type}"),
        "-DBUILD_SHARED_LIBS=OFF".into(),
        "-DNALLOC_BUILD_TESTS=OFF".into(),
        "-DNALLOC_BUILD_BENCH=OFF".into(),
        "-DNALLOC_FUZZ=OFF".into(),
        "-DNALLOC_WERROR=OFF".into(), // a newer compiler's new warning must not break a user's build
        format!("-DNALLOC_CUDA={}", if cuda { "ON" } else { "OFF" }),
    ];
    if cuda {
        let nvcc = cuda_root().join("bin/nvcc");
        if nvcc.is_file() {
            args.push(format!("-DCMAKE_CUDA_COMPILER={}", nvcc.display()));
            args.push(format!("-DCUDAToolkit_ROOT={}", cuda_root().display()));
        }
        if let Ok(archs) = env::var("NALLOC_CUDA_ARCHITECTURES") {
            args.push(format!("-DCMAKE_CUDA_ARCHITECTURES={archs}"));
        }
    }
    // Configure only when the cache is missing or the arguments changed; a change to the
    // CMakeLists is noticed by the build step itself.
    let _ = fs::remove_file(&log); // this run's steps only
    let stamp = build.join("nalloc-sys.args");
    let wanted = format!("{}\n{}", source.display(), args.join("\n"));
    if fs::read_to_string(&stamp).ok().as_deref() != Some(&wanted)
        || !build.join("CMakeCache.txt").is_file()
    {
        fs::create_dir_all(&build).expect("create the CMake build folder");
        let mut configure = Command::new(&cmake);
        configure
            .arg("-S")
            .arg(source)
            .arg("-B")
            .arg(&build)
            .args(&args);
        run_logged(configure, &log, "configure");
        fs::write(&stamp, &wanted).expect("write the configure stamp");
    }
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".into());
    let mut compile = Command::new(&cmake);
    compile
        .arg("--build")
        .arg(&build)
        .args(["--target", "nalloc", "--parallel", &jobs]);
    run_logged(compile, &log, "build");

    println!("cargo:rustc-link-search=native={}", build.display());
    println!("cargo:rustc-link-lib=static=nalloc");
    println!("cargo:rustc-link-lib=dylib=m");
    if cuda {
        // The .cu objects' host code: nvcc compiles it as C++.
        println!("cargo:rustc-link-lib=dylib=stdc++");
    }
    let include_dirs = vec![source.join("include"), build.join("include")];
    Library {
        has_cuda: config_flag(&build.join("include"), "NALLOC_HAVE_CUDA"),
        has_nvtx: config_flag(&build.join("include"), "NALLOC_HAVE_NVTX"),
        include_dirs,
    }
}

fn run_logged(mut command: Command, log: &Path, step: &str) {
    let output = command.output().unwrap_or_else(|e| {
        fail(&format!(
            "nalloc-sys: cannot run {command:?}: {e} (is CMake installed?)"
        ))
    });
    let mut text = format!("$ {command:?}\n").into_bytes();
    text.extend_from_slice(&output.stdout);
    text.extend_from_slice(&output.stderr);
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the CMake log");
    let _ = file.write_all(&text);
    if !output.status.success() {
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        fail(&format!(
            "nalloc-sys: CMake {step} of the C library failed (full log: {}):\n{tail}",
            log.display()
        ));
    }
}

// ---- The layout probe ---------------------------------------------------------------------------

/// What the headers declare, read from their text.
#[derive(Default)]
struct Declarations {
    structs: BTreeMap<String, Vec<String>>, // struct name -> its fields, in order
    enums: Vec<String>,                     // type names of the enums
    constants: Vec<String>,                 // enumerators and numeric macros
    functions: Vec<String>,                 // NALLOC_API and static inline functions
}

fn write_layout(lib: &Library, out: &Path, cuda: bool) {
    let dest = out.join("c_layout.rs");
    let host = env::var("HOST").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    if host != target {
        fs::write(&dest, "/// Cross-compiled: the layout probe could not run.\nconst C_LAYOUT: Option<CLayout> = None;\n")
            .expect("write c_layout.rs");
        return;
    }
    let mut headers = vec!["nalloc/nalloc.h"];
    if cuda {
        headers.push("nalloc/cuda.h");
    }
    let mut decls = Declarations::default();
    for h in &headers {
        let path = lib
            .include_dirs
            .iter()
            .map(|d| d.join(h))
            .find(|p| p.is_file())
            .unwrap_or_else(|| fail(&format!("nalloc-sys: {h} not found")));
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(&path).expect("read a header");
        parse_header(&strip_comments(&text), &mut decls);
    }

    let mut c = String::new();
    c.push_str("#include <stdalign.h>\n#include <stddef.h>\n#include <stdio.h>\n");
    for h in &headers {
        let _ = writeln!(c, "#include \"{h}\"");
    }
    c.push_str("#define F(s, f) printf(\"            (\\\"%s\\\", %zu, %zu),\\n\", #f, offsetof(s, f), sizeof(((s *)0)->f));\n");
    c.push_str("int main(void)\n{\n");
    c.push_str(
        "    printf(\"const C_LAYOUT: Option<CLayout> = Some(CLayout {\\n    structs: &[\\n\");\n",
    );
    for (name, fields) in &decls.structs {
        let _ = writeln!(
            c,
            "    printf(\"        (\\\"{name}\\\", %zu, %zu, &[\\n\", sizeof({name}), alignof({name}));"
        );
        for f in fields {
            let _ = writeln!(c, "    F({name}, {f})");
        }
        c.push_str("    printf(\"        ]),\\n\");\n");
    }
    c.push_str("    printf(\"    ],\\n    enums: &[\\n\");\n");
    for e in &decls.enums {
        let _ = writeln!(
            c,
            "    printf(\"        (\\\"{e}\\\", %zu, %s),\\n\", sizeof({e}), ({e})-1 < 0 ? \"true\" : \"false\");"
        );
    }
    c.push_str("    printf(\"    ],\\n    constants: &[\\n\");\n");
    for k in &decls.constants {
        let _ = writeln!(
            c,
            "    printf(\"        (\\\"{k}\\\", %lld),\\n\", (long long)({k}));"
        );
    }
    c.push_str("    printf(\"    ],\\n    functions: &[\\n\");\n");
    decls.functions.sort();
    decls.functions.dedup();
    for f in &decls.functions {
        let _ = writeln!(c, "    printf(\"        \\\"{f}\\\",\\n\");");
    }
    c.push_str("    printf(\"    ],\\n});\\n\");\n    return 0;\n}\n");

    let probe_c = out.join("layout_probe.c");
    let probe = out.join("layout_probe");
    fs::write(&probe_c, c).expect("write the layout probe");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut compile = Command::new(&cc);
    compile.arg("-std=c11").arg("-o").arg(&probe).arg(&probe_c);
    for d in &lib.include_dirs {
        compile.arg("-I").arg(d);
    }
    if cuda {
        compile.arg("-I").arg(cuda_root().join("include"));
    }
    let output = compile
        .output()
        .unwrap_or_else(|e| fail(&format!("nalloc-sys: cannot run the C compiler {cc}: {e}")));
    if !output.status.success() {
        fail(&format!(
            "nalloc-sys: the layout probe {} does not compile:\n{}",
            probe_c.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let output = Command::new(&probe).output().expect("run the layout probe");
    if !output.status.success() {
        fail("nalloc-sys: the layout probe failed");
    }
    let mut rs =
        String::from("// Generated by nalloc-sys/build.rs from the C headers: do not edit.\n");
    rs.push_str(&String::from_utf8_lossy(&output.stdout));
    fs::write(&dest, rs).expect("write c_layout.rs");
}

/// The header without its comments (a comment becomes one space, as in C).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |end| &r[end + 2..]);
            out.push(' ');
        } else if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |end| &r[end..]);
        } else {
            let ch = rest.chars().next().expect("not empty");
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

fn is_ident(word: &str) -> bool {
    let mut chars = word.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The functions the header declares: the first name followed by `(` after each `NALLOC_API`
/// (an exported function) and each `static inline` (a wrapper defined in the header), when it
/// is one of nalloc's (the definition of NALLOC_API itself is followed by `__attribute__(`).
fn parse_functions(text: &str, decls: &mut Declarations) {
    for marker in ["NALLOC_API", "static inline"] {
        for (at, _) in text.match_indices(marker) {
            let rest = &text[at + marker.len()..];
            let mut chars = rest.char_indices().peekable();
            while let Some((i, ch)) = chars.next() {
                if !(ch.is_ascii_alphabetic() || ch == '_') {
                    continue;
                }
                let mut end = i + ch.len_utf8();
                while let Some(&(j, c)) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        break;
                    }
                    end = j + c.len_utf8();
                    chars.next();
                }
                if rest[end..].trim_start().starts_with('(') {
                    let name = &rest[i..end];
                    if name.starts_with("nalloc_") {
                        decls.functions.push(name.to_string());
                    }
                    break;
                }
            }
        }
    }
}

/// Structs with a body (`typedef struct X { ... } X;`), enums and their enumerators, the public
/// macros whose value is an integer constant expression, and the functions.
fn parse_header(text: &str, decls: &mut Declarations) {
    parse_functions(text, decls);
    // Macros, line by line (continuation lines do not occur in the values we keep).
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let Some(name) = words.next() else { continue };
        let value: String = words.collect::<Vec<_>>().join(" ");
        if !name.starts_with("NALLOC_") || name.contains('(') || value.is_empty() {
            continue;
        }
        let bare = value
            .replace("size_t", "")
            .replace("uint64_t", "")
            .replace("unsigned", "");
        if bare
            .chars()
            .all(|c| c.is_ascii_hexdigit() || " ()<>|+-*xXuUlL".contains(c))
        {
            decls.constants.push(name.to_string());
        }
    }
    // Braced declarations.
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let head = &rest[..open];
        // A struct or enum head ends with "struct name" or "enum name", perhaps with an
        // attribute macro between the two; anything else (an extern "C" block) is stepped into,
        // not over.
        let head_words: Vec<&str> = head.split_whitespace().rev().take(3).collect();
        let tag = head_words.first().copied().unwrap_or("");
        let keyword = head_words
            .iter()
            .skip(1)
            .copied()
            .find(|w| *w == "struct" || *w == "enum")
            .unwrap_or("");
        if keyword.is_empty() || !is_ident(tag) {
            rest = &rest[open + 1..];
            continue;
        }
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let body = &rest[open + 1..open + close];
        let tail = &rest[open + close + 1..];
        let typedef_name = tail
            .split(';')
            .next()
            .map(str::trim)
            .filter(|n| is_ident(n))
            .map(str::to_string);
        if keyword == "struct" {
            let name = typedef_name.unwrap_or_else(|| format!("struct {tag}"));
            let fields = body
                .split(';')
                .filter_map(|decl| {
                    let decl = decl.split('[').next().unwrap_or("").trim();
                    let last = decl
                        .rsplit(|c: char| c.is_whitespace() || c == '*')
                        .next()?;
                    is_ident(last).then(|| last.to_string())
                })
                .collect();
            decls.structs.insert(name, fields);
        } else {
            decls
                .enums
                .push(typedef_name.unwrap_or_else(|| format!("enum {tag}")));
            for item in body.split(',') {
                let name = item.split('=').next().unwrap_or("").trim();
                if is_ident(name) {
                    decls.constants.push(name.to_string());
                }
            }
        }
        rest = tail;
    }
}
