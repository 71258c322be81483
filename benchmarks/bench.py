#!/usr/bin/env python3
"""SwiftMalloc benchmark runner (python3 standard library only).

Invoked through benchmarks/run.sh; see benchmarks/README.md for the workloads
and the output. In short:

  1. installs the peer allocators and tools when missing (apt-get);
  2. builds the workloads into an output directory (default
     $TMPDIR/swiftmalloc-bench-<uid>);
  3. runs every workload under every allocator in alternating rounds
     (A B C D E, A B C D E, ...), measuring wall time and the peak RSS that
     wait4(2) reports for the child (ru_maxrss, which includes the children it
     waited for, e.g. gcc's cc1);
  4. counts instructions per malloc(32)+free pair with callgrind, the
     instructions of one run of each C workload (repeatable where times are
     not), and the cost of preloading each library into `true` and `ls`;
  5. writes a Markdown table, JSON, CSV and an SVG chart.

Exit status: 0 when every run succeeded, 1 when any workload crashed, timed
out, exited non-zero or printed a different result than under glibc, 2 when
the runner could not set up (no swiftmalloc library, no compiler).
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD_DIR = os.path.join(HERE, "workloads")
PROGRAM_DIR = os.path.join(HERE, "programs")
SWIFT_SRC = os.path.join(HERE, "swift", "alloc_heavy.swift")

# name, Debian package, shared object
PEERS = [
    ("jemalloc", "libjemalloc2", "libjemalloc.so.2"),
    ("tcmalloc", "libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    ("mimalloc", "libmimalloc2.0", "libmimalloc.so.2"),
]
ALLOCATORS = ["glibc", "jemalloc", "tcmalloc", "mimalloc", "swiftmalloc"]
# libswiftmalloc.so under settings: allocators of their own, chosen with --allocators.
SETTINGS = {"swiftmalloc-mixed": {"SWIFTMALLOC_MIXED": "1"}}
PEER_NAMES = ["glibc", "jemalloc", "tcmalloc", "mimalloc"]
TOOL_PACKAGES = ["valgrind", "time"]
OPTIONAL_PACKAGES = ["hyperfine"]
COLORS = {
    "glibc": "#7f7f7f",
    "jemalloc": "#1f77b4",
    "tcmalloc": "#2ca02c",
    "mimalloc": "#9467bd",
    "swiftmalloc": "#f05138",
    "swiftmalloc-mixed": "#f5a623",
}

# Keys a C workload prints that must be identical under every allocator.
DETERMINISTIC_KEYS = ("checksum", "ops", "steps", "threads", "small_blocks", "large_blocks")


class Workload:
    """One benchmark program.

    kind: "c" (benchmarks/workloads/NAME.c), "swift", or "program" (a real
    program under preload). scale/quick: the SCALE argument (or, for sqlite
    and gcc, rows/functions) of a full and a --quick run.
    """

    def __init__(self, name, kind, desc, scale, quick, threads=None):
        self.name = name
        self.kind = kind
        self.desc = desc
        self.scale = scale
        self.quick = quick
        self.default_threads = threads  # None: not threaded

    @property
    def threaded(self):
        return self.default_threads is not None


WORKLOADS = [
    Workload("small", "c", "malloc/free of 8–512 B: LIFO, FIFO, sliding window, pairs", 1.0, 0.02),
    Workload("larson", "c", "server simulation: threads replace random blocks (16–1024 B) in their "
             "arrays, pass 1 in 16 to another thread; threads replaced every round", 1.0, 0.02, threads=4),
    Workload("prodcons", "c", "producer allocates 16–512 B blocks, consumer frees them "
             "(ring of 65536); THREADS/2 pairs", 1.0, 0.02, threads=2),
    Workload("realloc", "c", "realloc growth: doubling to 4 KiB–2 MiB, and +1..64 B increments to "
             "256 B–64 KiB, interleaved buffers", 1.0, 0.02),
    Workload("frag", "c", "fill 200 MiB with 16–512 B, free a random 90%, refill 100 MiB with "
             "600–2000 B", 1.0, 0.02),
    Workload("large", "c", "churn of 8 blocks of 64 KiB–64 MiB (log-uniform), every page written",
             1.0, 0.02),
    Workload("contention", "c", "THREADS threads (default 16) replacing blocks of 8–256 B in "
             "32-block windows, fixed work per thread", 1.0, 0.02, threads=16),
    Workload("swift", "swift", "Swift program (swiftc -O): class trees, arrays, strings, "
             "dictionaries", 1.0, 0.02),
    Workload("python", "program", "python3 running a dict/str-heavy script", 1.0, 0.02),
    Workload("sqlite", "program", "sqlite3 :memory: — one transaction of single-row INSERTs "
             "(150k rows, 2 indexes), update, delete, queries", 150000, 2000),
    Workload("gcc", "program", "gcc -O2 -c on a generated C file (180 functions)", 180, 6),
]
EXTRA_ONLY = ("callgrind", "instructions", "startup")
# Scale of the C workloads' runs under callgrind ("instructions"); --quick uses theirs,
# and counts only these of them (valgrind's start-up dominates at those sizes).
INSTRUCTIONS_SCALE = 0.1
INSTRUCTIONS_QUICK = ("small", "frag")


# ---------------------------------------------------------------- utilities


def log(msg=""):
    print(msg, flush=True)


def warn(msg):
    print("warning: " + msg, file=sys.stderr, flush=True)


def run_quiet(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, **kw)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


# ------------------------------------------------------------ installation


def dpkg_installed(pkg):
    try:
        r = run_quiet(["dpkg-query", "-W", "-f=${Status}", pkg])
    except FileNotFoundError:
        return None  # not a dpkg system
    return r.returncode == 0 and "install ok installed" in r.stdout


def apt_install(pkgs, sudo):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = run_quiet(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + pkgs, env=env)
    return r.returncode == 0, r.stdout


def ensure_packages(extra):
    """Install the peers and tools that are missing; apt-get update only if the
    first attempt fails. Failures are warnings: what is missing is skipped."""
    want = [p for _, p, _ in PEERS] + TOOL_PACKAGES + OPTIONAL_PACKAGES + extra
    state = {p: dpkg_installed(p) for p in want}
    if any(v is None for v in state.values()):
        warn("dpkg-query not available; not installing anything")
        return
    missing = [p for p in want if not state[p]]
    if not missing:
        return
    if not shutil.which("apt-get"):
        warn("missing packages %s and no apt-get" % " ".join(missing))
        return
    if os.geteuid() == 0:
        sudo = []
    elif shutil.which("sudo"):
        sudo = ["sudo", "-n"]
    else:
        warn("missing packages %s; not root and no sudo" % " ".join(missing))
        return
    log("installing: " + " ".join(missing))
    ok, out = apt_install(missing, sudo)
    if not ok:
        log("apt-get install failed; running apt-get update")
        run_quiet(sudo + ["apt-get", "update", "-qq"])
        ok, out = apt_install(missing, sudo)
    if not ok:
        # one at a time, so one unavailable package does not block the rest
        for p in missing:
            ok1, out1 = apt_install([p], sudo)
            if not ok1:
                warn("could not install %s: %s" % (p, out1.strip().splitlines()[-1:] or ""))


def multiarch_dirs():
    dirs = []
    try:
        r = run_quiet(["gcc", "-print-multiarch"])
        if r.returncode == 0 and r.stdout.strip():
            ma = r.stdout.strip()
            dirs += ["/usr/lib/" + ma, "/lib/" + ma]
    except FileNotFoundError:
        pass
    return dirs + ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64"]


def find_lib(soname):
    for d in multiarch_dirs():
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return p
    return None


def package_version(pkg):
    try:
        r = run_quiet(["dpkg-query", "-W", "-f=${Version}", pkg])
        return r.stdout.strip() if r.returncode == 0 else None
    except FileNotFoundError:
        return None


# ------------------------------------------------------------------ set-up


def swiftmalloc_source(args):
    if args.lib:
        return os.path.abspath(args.lib)
    if os.environ.get("SWIFTMALLOC_LIB"):
        return os.path.abspath(os.environ["SWIFTMALLOC_LIB"])
    return os.path.join(ROOT, ".build", "release", "libswiftmalloc.so")


def snapshot_swiftmalloc(args, outdir):
    """Copy the library into the output directory, so that a rebuild during the
    run cannot change (or remove) what is measured. Builds it when there is no
    build at all; waits a while when a build directory exists but the file is
    missing (a rebuild in progress)."""
    src = swiftmalloc_source(args)
    if not os.path.exists(src) and not args.lib and not os.environ.get("SWIFTMALLOC_LIB"):
        if os.path.isdir(os.path.join(ROOT, ".build", "release")):
            log("waiting for %s (being rebuilt?)" % src)
            for _ in range(60):
                time.sleep(1)
                if os.path.exists(src):
                    time.sleep(1)
                    break
        if not os.path.exists(src) and shutil.which("swift"):
            log("building libswiftmalloc.so: swift build -c release")
            r = subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT)
            if r.returncode != 0:
                return None
    if not os.path.exists(src):
        return None
    libdir = os.path.join(outdir, "lib")
    os.makedirs(libdir, exist_ok=True)
    dst = os.path.join(libdir, "libswiftmalloc.so")
    for attempt in range(10):
        try:
            shutil.copyfile(src, dst + ".tmp")
            os.replace(dst + ".tmp", dst)
            break
        except (FileNotFoundError, OSError):
            time.sleep(1)
    else:
        return None
    return dst


def build_workloads(outdir, workloads, args):
    """Compile the C workloads, loop.c and the Swift program into outdir/bin.
    Returns (failed, skipped): names that did not build, and names skipped
    because their compiler is missing."""
    bindir = os.path.join(outdir, "bin")
    os.makedirs(bindir, exist_ok=True)
    cc = os.environ.get("CC", "gcc")
    common = os.path.join(WORKLOAD_DIR, "common.h")
    failed, skipped = set(), set()

    def stale(target, sources):
        if not os.path.exists(target):
            return True
        t = os.path.getmtime(target)
        return any(os.path.getmtime(s) > t for s in sources)

    c_names = [w.name for w in workloads if w.kind == "c"] + ["loop", "measure"]
    for name in c_names:
        src = os.path.join(HERE, "tools" if name == "measure" else "workloads", name + ".c")
        out = os.path.join(bindir, name)
        if not stale(out, [src, common, __file__]):
            continue
        argv = [cc, "-O2", "-g", "-Wall", "-Wextra", "-Wno-unused-function", "-pthread",
                "-o", out, src, "-lm"]
        r = run_quiet(argv)
        if r.returncode != 0:
            warn("building %s failed:\n%s" % (name, r.stdout))
            failed.add(name)
    if any(w.kind == "swift" for w in workloads):
        out = os.path.join(bindir, "alloc_heavy")
        swiftc = shutil.which("swiftc")
        if not swiftc:
            warn("swiftc not found: the swift workload is skipped")
            skipped.add("swift")
        elif stale(out, [SWIFT_SRC]):
            log("compiling alloc_heavy.swift (swiftc -O)")
            r = run_quiet([swiftc, "-O", SWIFT_SRC, "-o", out])
            if r.returncode != 0:
                warn("building the Swift program failed:\n" + r.stdout)
                failed.add("swift")
    return failed, skipped


def generated_input(outdir, kind, n):
    """sqlite: the SQL script for n rows; gcc: the C file with n functions."""
    gendir = os.path.join(outdir, "inputs")
    os.makedirs(gendir, exist_ok=True)
    if kind == "sqlite":
        path, gen = os.path.join(gendir, "load-%d.sql" % n), "gen_sqlite.py"
    else:
        path, gen = os.path.join(gendir, "big-%d.c" % n), "gen_gcc.py"
    src = os.path.join(PROGRAM_DIR, gen)
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(src):
        with open(path + ".tmp", "w") as f:
            subprocess.run([sys.executable, src, str(n)], stdout=f, check=True)
        os.replace(path + ".tmp", path)
    return path


def pick_python():
    """A real python3 executable (not a wrapper script such as a pyenv shim),
    so the preloaded allocator serves the interpreter itself."""
    for c in ["/usr/bin/python3", shutil.which("python3") or "", sys.executable]:
        if c and os.path.exists(c):
            real = os.path.realpath(c)
            try:
                with open(real, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        return real
            except OSError:
                pass
            try:
                r = run_quiet([c, "-c", "import sys; print(sys.executable)"])
                exe = r.stdout.strip()
                if r.returncode == 0 and exe and os.path.exists(exe):
                    return os.path.realpath(exe)
            except OSError:
                pass
    return None


# -------------------------------------------------------------- measuring


class Result:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def to_dict(self):
        return dict(self.__dict__)


def base_env():
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "SWIFTMALLOC_STATS", "SWIFTMALLOC_CHECK", "SWIFTMALLOC_MIXED", "MALLOC_CONF",
              "JE_MALLOC_CONF", "MIMALLOC_VERBOSE", "MIMALLOC_SHOW_STATS"):
        env.pop(k, None)
    env["LC_ALL"] = "C"
    return env


MEASURE = None  # path of the built tools/measure.c


def measure(argv, preload, stdin_path=None, timeout=300, cwd=None, settings=None):
    """Run argv once through tools/measure (which forks and execs it, with
    LD_PRELOAD=preload for the command alone, and the environment variables in
    `settings`); return wall seconds, peak RSS (KiB, from wait4), exit status,
    stdout and the tail of stderr."""
    env = base_env()
    env.update(settings or {})
    fd, resf = tempfile.mkstemp(prefix="measure-", suffix=".txt")
    os.close(fd)
    cmd = [MEASURE, "-t", str(timeout), "-o", resf] + (["-p", preload] if preload else []) + ["--"] + argv
    failed_start = None
    try:
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe, \
                open(stdin_path or os.devnull, "rb") as fi:
            try:
                subprocess.run(cmd, stdin=fi, stdout=fo, stderr=fe, env=env, cwd=cwd,
                               timeout=timeout + 30, start_new_session=True)
            except subprocess.TimeoutExpired:
                failed_start = "measure did not return"
            fo.seek(0)
            fe.seek(0)
            out = fo.read().decode("utf-8", "replace")
            err = fe.read().decode("utf-8", "replace")
        with open(resf) as f:
            kv = parse_kv(f.read())
    finally:
        os.remove(resf)
    rc = kv.get("exit")
    sig = kv.get("signal")
    timed_out = bool(kv.get("timed_out"))
    error = None
    if failed_start or "wall_s" not in kv:
        error = failed_start or "not measured: " + err.strip()[-200:]
    elif timed_out:
        error = "timed out after %d s" % timeout
    elif sig is not None:
        try:
            signame = signal.Signals(sig).name
        except ValueError:
            signame = "?"
        error = "killed by signal %d (%s)" % (sig, signame)
    elif rc != 0:
        error = "exit status %s" % rc
    return Result(wall_s=float(kv.get("wall_s", 0.0)), maxrss_kib=int(kv.get("maxrss_kib", 0)),
                  user_s=float(kv.get("user_s", 0.0)), sys_s=float(kv.get("sys_s", 0.0)),
                  rc=rc, signal=sig, timed_out=timed_out, stdout=out,
                  stderr="\n".join(err.strip().splitlines()[-8:]), ok=error is None, error=error)


KV = re.compile(r"^([a-z_]+)=(-?[0-9]+(?:\.[0-9]+)?)$")


def parse_kv(text):
    d = {}
    for line in text.splitlines():
        m = KV.match(line.strip())
        if m:
            v = m.group(2)
            d[m.group(1)] = float(v) if "." in v else int(v)
    return d


# --------------------------------------------------------------- the plan


class Job:
    """A workload at one thread count, ready to run under any allocator."""

    def __init__(self, w, label, threads, argv_fn, stdin=None, signature_fn=None):
        self.w = w
        self.label = label
        self.threads = threads
        self.argv_fn = argv_fn  # allocator name -> argv
        self.stdin = stdin
        self.signature_fn = signature_fn  # (Result, allocator) -> comparable output


def make_jobs(workloads, args, outdir, unbuilt):
    bindir = os.path.join(outdir, "bin")
    jobs = []
    python = pick_python()
    sqlite3 = shutil.which("sqlite3")
    gcc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("gcc")
    scaling = [int(x) for x in args.scaling.split(",")] if args.scaling else None

    def c_signature(res, alloc):
        kv = parse_kv(res.stdout)
        return tuple((k, kv.get(k)) for k in DETERMINISTIC_KEYS if k in kv)

    def stdout_signature(res, alloc):
        return hashlib.sha256(res.stdout.encode()).hexdigest()

    for w in workloads:
        if w.name in unbuilt:
            continue
        scale = w.quick if args.quick else w.scale
        if w.kind == "c":
            exe = os.path.join(bindir, w.name)
            counts = [None]
            if w.threaded:
                counts = scaling or [args.threads or w.default_threads]
            for t in counts:
                label = w.name if not (w.threaded and scaling) else "%s-t%d" % (w.name, t)
                argv = [exe, str(scale)] + ([str(t)] if t else [])
                jobs.append(Job(w, label, t, lambda a, argv=argv: argv, signature_fn=c_signature))
        elif w.kind == "swift":
            argv = [os.path.join(bindir, "alloc_heavy"), str(scale)]
            jobs.append(Job(w, w.name, None, lambda a, argv=argv: argv, signature_fn=stdout_signature))
        elif w.name == "python":
            if not python:
                warn("no python3 executable found: the python workload is skipped")
                continue
            argv = [python, os.path.join(PROGRAM_DIR, "dictstr.py"), str(scale)]
            jobs.append(Job(w, w.name, None, lambda a, argv=argv: argv, signature_fn=stdout_signature))
        elif w.name == "sqlite":
            if not sqlite3:
                warn("sqlite3 not found: the sqlite workload is skipped")
                continue
            sql = generated_input(outdir, "sqlite", int(scale))
            jobs.append(Job(w, w.name, None, lambda a: [sqlite3, ":memory:"], stdin=sql,
                            signature_fn=stdout_signature))
        elif w.name == "gcc":
            if not gcc:
                warn("gcc not found: the gcc workload is skipped")
                continue
            csrc = generated_input(outdir, "gcc", int(scale))
            objdir = os.path.join(outdir, "obj")
            os.makedirs(objdir, exist_ok=True)

            def gcc_argv(alloc, csrc=csrc, objdir=objdir):
                return [gcc, "-O2", "-c", csrc, "-o", os.path.join(objdir, "big-%s.o" % alloc)]

            def gcc_signature(res, alloc, objdir=objdir):
                obj = os.path.join(objdir, "big-%s.o" % alloc)
                return sha256_file(obj) if os.path.exists(obj) else None

            jobs.append(Job(w, w.name, None, gcc_argv, signature_fn=gcc_signature))
    return jobs


# ---------------------------------------------------------------- callgrind


def callgrind_ir(loop, preload, n, tmpdir, timeout):
    return callgrind_total([loop, str(n)], preload, tmpdir, timeout)


def callgrind_total(cmd, preload, tmpdir, timeout, settings=None):
    """Instructions (Ir) of one run of cmd under callgrind, or (None, error)."""
    outf = os.path.join(tmpdir, "callgrind.out.%d" % os.getpid())
    if os.path.exists(outf):
        os.remove(outf)
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + outf] + cmd
    res = measure(argv, preload, timeout=timeout, settings=settings)
    if not res.ok:
        return None, res.error + (": " + res.stderr if res.stderr else "")
    ir = None
    try:
        with open(outf) as f:
            for line in f:
                if line.startswith("totals:") or (ir is None and line.startswith("summary:")):
                    ir = int(line.split()[1])
    except OSError as e:
        return None, str(e)
    finally:
        if os.path.exists(outf):
            os.remove(outf)
    if ir is None:
        return None, "no totals in callgrind output"
    return ir, None


def run_callgrind(allocs, outdir, quick, timeout):
    """Ir per malloc(32)+free pair = (Ir(N2) - Ir(N1)) / (N2 - N1)."""
    loop = os.path.join(outdir, "bin", "loop")
    n1, n2 = (100000, 200000) if quick else (1000000, 2000000)
    results = {}
    if not shutil.which("valgrind"):
        warn("valgrind not found: no callgrind figures")
        return {"skipped": "valgrind not found"}
    if not os.path.exists(loop):
        return {"skipped": "loop not built"}
    log("callgrind: Ir per malloc(32)+free pair, N = %d and %d" % (n1, n2))
    for name, lib in allocs:
        preload = valgrind_preload(name, lib, outdir)
        ir1, e1 = callgrind_ir(loop, preload, n1, outdir, timeout)
        ir2, e2 = callgrind_ir(loop, preload, n2, outdir, timeout)
        if ir1 is None or ir2 is None:
            results[name] = {"error": e1 or e2}
            log("  %-11s FAILED: %s" % (name, e1 or e2))
            continue
        per = (ir2 - ir1) / float(n2 - n1)
        results[name] = {"ir_n1": ir1, "ir_n2": ir2, "n1": n1, "n2": n2, "ir_per_pair": per}
        log("  %-11s %6.1f Ir/pair" % (name, per))
    return results


def valgrind_preload(name, lib, outdir):
    """The library to preload under valgrind: for swiftmalloc a copy without debug
    information (valgrind 3.19 cannot read the DWARF 5 of the Swift/clang objects)."""
    if lib and name.startswith("swiftmalloc"):
        stripped = os.path.join(outdir, "lib", "libswiftmalloc.stripped.so")
        if run_quiet(["strip", "--strip-debug", "-o", stripped, lib]).returncode == 0:
            return stripped
    return lib


def run_instructions(allocs, outdir, workloads, args, timeout):
    """Instructions (callgrind Ir) of one run of each C workload under each allocator:
    the program's own work is the same under all of them, so the differences are
    the allocators', and unlike times they repeat from run to run."""
    if not shutil.which("valgrind"):
        warn("valgrind not found: no instruction counts")
        return {"skipped": "valgrind not found"}
    bindir = os.path.join(outdir, "bin")
    results = {"scale": None if args.quick else INSTRUCTIONS_SCALE, "workloads": {}}
    todo = [w for w in workloads if w.kind == "c" and os.path.exists(os.path.join(bindir, w.name))
            and (not args.quick or w.name in INSTRUCTIONS_QUICK)]
    log("instructions: one run of each C workload under callgrind, %s" % (
        "--quick sizes" if args.quick else "scale %g" % INSTRUCTIONS_SCALE))
    for w in todo:
        scale = w.quick if args.quick else INSTRUCTIONS_SCALE
        cmd = [os.path.join(bindir, w.name), str(scale)]
        if w.threaded:
            cmd.append(str(args.threads or w.default_threads))
        row = results["workloads"].setdefault(w.name, {})
        for name, lib in allocs:
            ir, err = callgrind_total(cmd, valgrind_preload(name, lib, outdir), outdir, timeout,
                                      settings=SETTINGS.get(name))
            row[name] = {"ir": ir} if ir is not None else {"error": err}
            log("  %-11s %-11s %s" % (w.name, name, "%.1f M Ir" % (ir / 1e6) if ir is not None
                                      else "FAILED: %s" % err))
    return results


# ------------------------------------------------------------ preload cost


def run_startup(allocs, quick, outdir):
    """Time `true` and `ls -l /usr/bin` without and with each library preloaded."""
    runs = 20 if quick else 200
    cmds = [("true", ["/bin/true"]), ("ls", ["ls", "-l", "/usr/bin"])]
    variants = [("none", None)] + [(n, l) for n, l in allocs if l and n not in SETTINGS]
    results = {"runs": runs, "tool": None, "times": {}, "sizes": {}}
    for name, lib in allocs:
        if lib:
            results["sizes"][name] = os.path.getsize(os.path.realpath(lib))
    hyperfine = shutil.which("hyperfine")
    log("preload cost: %s, %d runs each" % ("hyperfine" if hyperfine else "spawn loop", runs))
    failures = []
    for cname, cargv in cmds:
        if hyperfine:
            results["tool"] = "hyperfine"
            jf = os.path.join(outdir, "hyperfine-%s.json" % cname)
            argv = [hyperfine, "-N", "--warmup", "5", "--runs", str(runs), "--export-json", jf,
                    "--style", "none"]
            for vname, lib in variants:
                argv.append(" ".join(["env"] + (["LD_PRELOAD=" + lib] if lib else []) + cargv))
            r = run_quiet(argv, env=base_env())
            if r.returncode == 0:
                with open(jf) as f:
                    data = json.load(f)
                for (vname, _), rr in zip(variants, data["results"]):
                    results["times"].setdefault(vname, {})[cname] = {
                        "mean_ms": rr["mean"] * 1e3, "min_ms": rr["min"] * 1e3,
                        "stddev_ms": (rr.get("stddev") or 0) * 1e3}
                continue
            warn("hyperfine failed (%s); using a spawn loop" % r.stdout.strip().splitlines()[-1:])
        results["tool"] = "spawn loop"
        for vname, lib in variants:
            env = base_env()
            if lib:
                env["LD_PRELOAD"] = lib
            times = []
            bad = None
            for _ in range(runs):
                t0 = time.perf_counter()
                r = subprocess.run(["env"] + cargv, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                times.append(time.perf_counter() - t0)
                if r.returncode != 0:
                    bad = "exit status %d" % r.returncode
                    break
            if bad:
                failures.append("startup %s under %s: %s" % (cname, vname, bad))
                continue
            results["times"].setdefault(vname, {})[cname] = {
                "mean_ms": statistics.mean(times) * 1e3, "min_ms": min(times) * 1e3,
                "stddev_ms": statistics.pstdev(times) * 1e3}
    # a preloaded `true`/`ls` that fails is a crash, whichever tool measured it
    for vname, lib in variants:
        for cname, cargv in cmds:
            env = base_env()
            if lib:
                env["LD_PRELOAD"] = lib
            r = subprocess.run(cargv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if r.returncode != 0:
                failures.append("%s under %s: exit status %d %s" % (
                    cname, vname, r.returncode, r.stderr.decode(errors="replace").strip()[-200:]))
    for vname in results["times"]:
        t = results["times"][vname]
        log("  %-11s true %.2f ms (min %.2f)   ls %.2f ms (min %.2f)" % (
            vname, t.get("true", {}).get("mean_ms", float("nan")), t.get("true", {}).get("min_ms", float("nan")),
            t.get("ls", {}).get("mean_ms", float("nan")), t.get("ls", {}).get("min_ms", float("nan"))))
    results["failures"] = failures
    return results


# ---------------------------------------------------------------- summary


def summarize(jobs, runs, allocs):
    """Per job and allocator: medians and ranges over the successful rounds."""
    names = [n for n, _ in allocs]
    summary = {}
    for job in jobs:
        per = {}
        for a in names:
            rs = [r for r in runs if r["workload"] == job.label and r["allocator"] == a]
            good = [r for r in rs if r["ok"]]
            s = {"runs": len(rs), "failed": len(rs) - len(good)}
            if good:
                times = [r["wall_s"] for r in good]
                rss = [r["maxrss_kib"] / 1024.0 for r in good]
                s.update(time_med=median(times), time_min=min(times), time_max=max(times),
                         rss_med=median(rss), rss_min=min(rss), rss_max=max(rss))
                utils = [r["extras"]["requested_bytes_peak"] / (r["maxrss_kib"] * 1024.0)
                         for r in good if "requested_bytes_peak" in r["extras"] and r["maxrss_kib"]]
                if utils:
                    s["util_med"] = median(utils)
                ends = [r["extras"]["rss_end_kib"] / 1024.0 for r in good if "rss_end_kib" in r["extras"]]
                if ends:
                    s["rss_end_med"] = median(ends)
                after = [(r["extras"]["live_after_bytes"], r["extras"]["rss_after_kib"]) for r in good
                         if "live_after_bytes" in r["extras"] and r["extras"].get("rss_after_kib")]
                if after:
                    s["rss_after_med"] = median([b / 1024.0 for _, b in after])
                    s["util_after_med"] = median([a / (b * 1024.0) for a, b in after])
            per[a] = s
        # ratios to glibc and to the best peer (the fastest / leanest of glibc,
        # jemalloc, tcmalloc, mimalloc)
        peers = [a for a in PEER_NAMES if a in per and "time_med" in per[a]]
        best_t = min(peers, key=lambda a: per[a]["time_med"]) if peers else None
        best_r = min(peers, key=lambda a: per[a]["rss_med"]) if peers else None
        g = per.get("glibc", {})
        for a, s in per.items():
            if "time_med" not in s:
                continue
            if "time_med" in g:
                s["time_vs_glibc"] = s["time_med"] / g["time_med"]
                s["rss_vs_glibc"] = s["rss_med"] / g["rss_med"]
            if best_t:
                s["time_vs_best"] = s["time_med"] / per[best_t]["time_med"]
                s["rss_vs_best"] = s["rss_med"] / per[best_r]["rss_med"]
        summary[job.label] = {"per": per, "best_time_peer": best_t, "best_rss_peer": best_r,
                              "workload": job.w.name, "threads": job.threads, "desc": job.w.desc}
    return summary


def fmt(x, nd=2):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return ("%." + str(nd) + "f") % x


def md_section(L, title, data):
    """Appends a section heading to L; False (after saying why) when the figures
    under it were skipped."""
    L += ["", "## " + title, ""]
    if "skipped" in data:
        L.append("Skipped: %s." % data["skipped"])
        return False
    return True


def markdown(meta, jobs, summary, allocs, cg, st, failures, ins=None):
    names = [n for n, _ in allocs]
    L = []
    L.append("# SwiftMalloc benchmarks: %s, %s" % (meta["date"], meta["host"]))
    L.append("")
    L.append("- machine: %s, %d CPUs, Linux %s, %s, glibc %s" % (
        meta["cpu"], meta["ncpu"], meta["kernel"], meta["os"], meta["glibc"]))
    L.append("- allocators: " + "; ".join("%s %s" % (n, meta["versions"].get(n, "")) for n in names))
    L.append("- %s run, %d alternating round%s (%s), threads: %s" % (
        "quick" if meta["quick"] else "full", meta["rounds"], "" if meta["rounds"] == 1 else "s",
        " ".join(names), meta["threads_desc"]))
    L.append("- runner wall time: %.0f s" % meta["elapsed_s"])
    L.append("")
    L.append("Wall-clock figures on a shared machine move by 10–30% between runs; compare only within "
             "one run. Peak RSS is `ru_maxrss` of the process (for gcc: its largest child, cc1). "
             "Utilization = requested bytes at peak ÷ peak RSS (program and library pages included).")
    L.append("")
    if cg and "skipped" not in cg:
        parts = []
        for n in names:
            c = cg.get(n, {})
            parts.append("%s %s" % (n, fmt(c.get("ir_per_pair"), 1) if "ir_per_pair" in c else "FAILED"))
        L.append("**Fast path (callgrind), instructions per malloc(32)+free pair:** " + ", ".join(parts) + ".")
        L.append("")
    # summary matrix
    L.append("## Median time in s (peak RSS in MiB)")
    L.append("")
    L.append("| workload | " + " | ".join(names) + " |")
    L.append("|---|" + "---|" * len(names))
    for job in jobs:
        s = summary[job.label]
        per = s["per"]
        present = [a for a in names if "time_med" in per.get(a, {})]
        best_t = min(present, key=lambda a: per[a]["time_med"]) if present else None
        best_r = min(present, key=lambda a: per[a]["rss_med"]) if present else None
        cells = []
        for a in names:
            p = per.get(a, {})
            if "time_med" not in p:
                cells.append("FAILED" if p.get("failed") else "–")
                continue
            t = fmt(p["time_med"])
            r = fmt(p["rss_med"], 1)
            if a == best_t:
                t = "**%s**" % t
            if a == best_r:
                r = "**%s**" % r
            c = "%s (%s)" % (t, r)
            if p.get("failed"):
                c += " ⚠%d failed" % p["failed"]
            cells.append(c)
        L.append("| %s | %s |" % (job.label, " | ".join(cells)))
    for key, title in (("time_vs_glibc", "geometric mean, time ÷ glibc"),
                       ("rss_vs_glibc", "geometric mean, peak RSS ÷ glibc")):
        cells = []
        for a in names:
            g = geomean([summary[j.label]["per"].get(a, {}).get(key) for j in jobs])
            cells.append(fmt(g))
        L.append("| *%s* | %s |" % (title, " | ".join(cells)))
    L.append("")
    L.append("Bold: the fastest / leanest in the row.")
    L.append("")
    # detail tables
    L.append("## Per workload: median (min–max) and ratios")
    L.append("")
    L.append("×glibc and ×best peer are ratios of medians (below 1 is better); the best peer is the "
             "best of glibc, jemalloc, tcmalloc and mimalloc in that row. \"RSS at end\" is VmRSS "
             "after the workload freed everything, as the workload itself reports it.")
    for job in jobs:
        s = summary[job.label]
        per = s["per"]
        L.append("")
        L.append("### %s" % job.label)
        L.append("")
        L.append(job.w.desc + ("; %d threads" % job.threads if job.threads else "") +
                 ". Best peer: time %s, RSS %s." % (s["best_time_peer"] or "–", s["best_rss_peer"] or "–"))
        L.append("")
        has_util = any("util_med" in p for p in per.values())
        has_end = any("rss_end_med" in p for p in per.values())
        has_after = any("rss_after_med" in p for p in per.values())
        head = ["allocator", "time s", "×glibc", "×best peer", "peak RSS MiB", "×glibc", "×best peer"]
        if has_util:
            head.append("utilization")
        if has_after:
            head += ["RSS after refill MiB", "live ÷ RSS after refill"]
        if has_end:
            head.append("RSS at end MiB")
        L.append("| " + " | ".join(head) + " |")
        L.append("|---" * len(head) + "|")
        for a in names:
            p = per.get(a, {})
            if "time_med" not in p:
                L.append("| %s | %s |" % (a, "FAILED (%d of %d runs)" % (p.get("failed", 0), p.get("runs", 0))
                                          if p.get("failed") else "–"))
                continue
            row = [a + (" ⚠%d failed" % p["failed"] if p.get("failed") else ""),
                   "%s (%s–%s)" % (fmt(p["time_med"], 3), fmt(p["time_min"], 3), fmt(p["time_max"], 3)),
                   fmt(p.get("time_vs_glibc")), fmt(p.get("time_vs_best")),
                   "%s (%s–%s)" % (fmt(p["rss_med"], 1), fmt(p["rss_min"], 1), fmt(p["rss_max"], 1)),
                   fmt(p.get("rss_vs_glibc")), fmt(p.get("rss_vs_best"))]
            if has_util:
                row.append(fmt(p.get("util_med")))
            if has_after:
                row += [fmt(p.get("rss_after_med"), 1), fmt(p.get("util_after_med"))]
            if has_end:
                row.append(fmt(p.get("rss_end_med"), 1))
            L.append("| " + " | ".join(row) + " |")
    # callgrind
    if cg and md_section(L, "Fast path: instructions per malloc(32)+free pair", cg):
        some = next((c for c in cg.values() if "n1" in c), None)
        if some:
            L.append("`valgrind --tool=callgrind` on `loop N` (gcc -O2): (Ir at N=%d − Ir at N=%d) ÷ %d. "
                     "About 9 of them are the loop and the two PLT jumps. swiftmalloc is measured on a "
                     "`strip --strip-debug` copy of the library (valgrind 3.19 cannot read its DWARF 5)."
                     % (some["n2"], some["n1"], some["n2"] - some["n1"]))
            L.append("")
        L.append("| allocator | Ir at N1 | Ir at N2 | Ir/pair |")
        L.append("|---|---|---|---|")
        for n in names:
            c = cg.get(n)
            if not c:
                continue
            if "ir_per_pair" in c:
                L.append("| %s | %d | %d | %.1f |" % (n, c["ir_n1"], c["ir_n2"], c["ir_per_pair"]))
            else:
                L.append("| %s | FAILED: %s | | |" % (n, c.get("error", "")[:200].replace("|", "/")))
    # instructions per workload
    if ins and md_section(L, "Instructions per workload (callgrind)", ins):
        L.append("`valgrind --tool=callgrind`, one run of each C workload (%s; the threaded ones with "
                 "their thread count, which valgrind runs one at a time): millions of instructions of "
                 "the whole process. The program's own work is the same under every allocator, so the "
                 "differences are the allocators'; unlike the times, these repeat from run to run."
                 % ("--quick sizes" if ins.get("scale") is None else "scale %g" % ins["scale"]))
        L.append("")
        peers = [n for n in names if n in PEER_NAMES]
        L.append("| workload | " + " | ".join(names) + " | swiftmalloc ÷ best peer |")
        L.append("|---|" + "---|" * (len(names) + 1))
        for wname, row in ins["workloads"].items():
            cells = []
            for n in names:
                c = row.get(n, {})
                cells.append("%.1f" % (c["ir"] / 1e6) if c.get("ir") is not None else "failed")
            best = [row[n]["ir"] for n in peers if row.get(n, {}).get("ir") is not None]
            ours = row.get("swiftmalloc", {}).get("ir")
            ratio = "%.2f" % (ours / float(min(best))) if ours is not None and best else "–"
            L.append("| %s | %s | %s |" % (wname, " | ".join(cells), ratio))
    # preload cost
    if st:
        L.append("")
        L.append("## Preload cost")
        L.append("")
        L.append("`env [LD_PRELOAD=lib] /bin/true` and `env [LD_PRELOAD=lib] ls -l /usr/bin`, %d runs each "
                 "(%s): mean (min) in ms; library file size." % (st["runs"], st["tool"]))
        L.append("")
        L.append("| preload | library size | `true` ms | `ls -l /usr/bin` ms |")
        L.append("|---|---|---|---|")
        for v in ["none"] + names:
            t = st["times"].get(v)
            if not t:
                continue
            size = st["sizes"].get(v)
            L.append("| %s | %s | %s (%s) | %s (%s) |" % (
                v, "%d KiB" % round(size / 1024.0) if size else "–",
                fmt(t.get("true", {}).get("mean_ms")), fmt(t.get("true", {}).get("min_ms")),
                fmt(t.get("ls", {}).get("mean_ms")), fmt(t.get("ls", {}).get("min_ms"))))
    # scaling
    labels = [j for j in jobs if j.threads and "-t" in j.label]
    if labels:
        L.append("")
        L.append("## Thread scaling: median time in s")
        L.append("")
        L.append("| workload | threads | " + " | ".join(names) + " |")
        L.append("|---|---|" + "---|" * len(names))
        for j in labels:
            per = summary[j.label]["per"]
            L.append("| %s | %d | %s |" % (j.w.name, j.threads, " | ".join(
                fmt(per.get(a, {}).get("time_med"), 3) for a in names)))
    L.append("")
    L.append("## Failures")
    L.append("")
    if failures:
        for f in failures:
            L.append("- " + f.replace("\n", " ⏎ "))
    else:
        L.append("None: every run exited 0 with the same output as under glibc.")
    L.append("")
    return "\n".join(L)


def write_csv(path, runs):
    cols = ["workload", "allocator", "round", "threads", "wall_s", "user_s", "sys_s", "maxrss_kib",
            "requested_bytes_peak", "utilization", "rss_end_kib", "hwm_kib", "rss_after_kib",
            "live_after_bytes", "ok", "error"]
    with open(path, "w") as f:
        f.write(",".join(cols) + "\n")
        for r in runs:
            ex = r["extras"]
            req = ex.get("requested_bytes_peak")
            util = req / (r["maxrss_kib"] * 1024.0) if req is not None and r["maxrss_kib"] else None
            vals = [r["workload"], r["allocator"], r["round"], r.get("threads") or "",
                    "%.4f" % r["wall_s"], "%.3f" % r.get("user_s", 0), "%.3f" % r.get("sys_s", 0),
                    r["maxrss_kib"], "" if req is None else req, "" if util is None else "%.4f" % util,
                    ex.get("rss_end_kib", ""), ex.get("hwm_kib", ""), ex.get("rss_after_kib", ""),
                    ex.get("live_after_bytes", ""), int(r["ok"]),
                    '"%s"' % (r.get("error") or "").replace('"', "'")]
            f.write(",".join(str(v) for v in vals) + "\n")


def svg_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(path, meta, jobs, summary, allocs):
    """For each workload, time and peak RSS relative to glibc, one horizontal bar
    per allocator, on a log scale centred on 1 (left of the line: better)."""
    names = [n for n, _ in allocs]
    lo, hi = -3.0, 4.0  # log2 range: 1/8 .. 16
    label_w, panel_w, gap, right = 130, 360, 40, 20
    bar_h, bar_gap, group_pad = 10, 2, 14
    top = 78
    group_h = len(names) * (bar_h + bar_gap) + group_pad
    height = top + group_h * len(jobs) + 40
    width = label_w + 2 * panel_w + gap + right
    panels = [("time ÷ glibc", "time_vs_glibc", label_w),
              ("peak RSS ÷ glibc", "rss_vs_glibc", label_w + panel_w + gap)]

    def x_of(x0, ratio):
        v = max(lo, min(hi, math.log2(ratio)))
        return x0 + (v - lo) / (hi - lo) * panel_w

    o = []
    o.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
             'font-family="Helvetica, Arial, sans-serif" font-size="11">' % (width, height, width, height))
    o.append('<rect width="100%" height="100%" fill="white"/>')
    o.append('<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>' % (
        8, svg_escape("SwiftMalloc benchmarks — %s, %s (%d round%s, medians)" % (
            meta["date"], meta["host"], meta["rounds"], "" if meta["rounds"] == 1 else "s"))))
    lx = 8
    for n in names:
        o.append('<rect x="%d" y="28" width="12" height="10" fill="%s"/>' % (lx, COLORS.get(n, "#333")))
        o.append('<text x="%d" y="37">%s</text>' % (lx + 16, n))
        lx += 16 + 8 * len(n) + 18
    o.append('<text x="%d" y="37" fill="#555">log scale; shorter to the left of 1 is better</text>' % (lx + 10))
    ticks = [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]
    for title, key, x0 in panels:
        o.append('<text x="%d" y="56" font-weight="bold" text-anchor="middle">%s</text>' % (
            x0 + panel_w / 2, title))
        for t in ticks:
            x = x_of(x0, t)
            o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="%s"/>' % (
                x, top - 6, x, height - 30, "#000" if t == 1 else "#ddd", "1.2" if t == 1 else "1"))
            lab = ("1/%d" % round(1 / t)) if t < 1 else "%g" % t
            o.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>' % (x, top - 9, lab))
            o.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>' % (
                x, height - 18, lab))
    y = top
    for j in jobs:
        per = summary[j.label]["per"]
        o.append('<text x="%d" y="%.1f" font-weight="bold">%s</text>' % (
            8, y + (len(names) * (bar_h + bar_gap)) / 2 + 4, svg_escape(j.label)))
        for i, n in enumerate(names):
            p = per.get(n, {})
            by = y + i * (bar_h + bar_gap)
            for _, key, x0 in panels:
                r = p.get(key)
                if r is None or r <= 0:
                    if p.get("failed"):
                        o.append('<text x="%.1f" y="%.1f" fill="#c00" font-size="9">failed</text>' % (
                            x_of(x0, 1) + 3, by + bar_h - 1))
                    continue
                x1, x2 = x_of(x0, 1), x_of(x0, r)
                xa, xb = min(x1, x2), max(x1, x2)
                o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s %s: %.2f</title>'
                         '</rect>' % (xa, by, max(xb - xa, 1.0), bar_h, COLORS.get(n, "#333"),
                                      svg_escape(j.label), n, r))
                tx = xb + 3 if r >= 1 else xa - 3
                anchor = "start" if r >= 1 else "end"
                o.append('<text x="%.1f" y="%.1f" text-anchor="%s" font-size="9" fill="#333">%.2f</text>' % (
                    tx, by + bar_h - 1, anchor, r))
        y += group_h
        o.append('<line x1="8" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>' % (y - group_pad / 2, width - 8,
                                                                               y - group_pad / 2))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


# -------------------------------------------------------------------- main


def machine_meta():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    osname = platform.system()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
    except (ValueError, OSError, AttributeError):
        glibc = "?"
    return {"cpu": cpu, "ncpu": os.cpu_count() or 1, "kernel": platform.release(), "os": osname,
            "glibc": glibc}


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="benchmarks/run.sh",
        description="Run the SwiftMalloc benchmarks against glibc, jemalloc, tcmalloc and mimalloc.")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3; 1 with --quick)")
    ap.add_argument("--threads", type=int, default=None,
                    help="thread count for larson, prodcons and contention (default 4, 2, 16)")
    ap.add_argument("--scaling", default=None, metavar="1,2,4,...",
                    help="run the threaded workloads at each of these thread counts")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, 1 round, results in the output directory (a smoke test)")
    ap.add_argument("--only", default=None, metavar="W,...",
                    help="workloads to run: %s, plus callgrind, instructions and startup"
                         % ",".join(w.name for w in WORKLOADS))
    ap.add_argument("--allocators", default=None, metavar="A,...",
                    help="allocators to compare (default: %s; also: %s, libswiftmalloc.so under settings)"
                         % (",".join(ALLOCATORS), ",".join(SETTINGS)))
    ap.add_argument("--lib", default=None, help="libswiftmalloc.so to measure "
                    "(default: $SWIFTMALLOC_LIB or .build/release/libswiftmalloc.so)")
    ap.add_argument("--out", default=None, help="build/output directory "
                    "(default: $TMPDIR/swiftmalloc-bench-<uid>)")
    ap.add_argument("--results", default=None, help="directory for the results "
                    "(default: benchmarks/results; with --quick: <out>/results)")
    ap.add_argument("--timeout", type=int, default=None, help="seconds per run (default 300; 60 with --quick)")
    ap.add_argument("--no-install", action="store_true", help="do not install missing packages")
    args = ap.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be at least 1")
    if args.scaling:
        try:
            counts = [int(x) for x in args.scaling.split(",")]
            if any(c < 1 for c in counts):
                raise ValueError
        except ValueError:
            ap.error("--scaling takes a comma-separated list of positive thread counts")
    if args.timeout is None:
        args.timeout = 60 if args.quick else 300
    known = [w.name for w in WORKLOADS] + list(EXTRA_ONLY)
    if args.only:
        sel = [x.strip() for x in args.only.split(",") if x.strip()]
        bad = [x for x in sel if x not in known]
        if bad:
            ap.error("unknown workload(s) %s; known: %s" % (",".join(bad), ",".join(known)))
        args.only = sel
    if args.allocators:
        sel = [x.strip() for x in args.allocators.split(",") if x.strip()]
        bad = [x for x in sel if x not in ALLOCATORS and x not in SETTINGS]
        if bad:
            ap.error("unknown allocator(s) %s; known: %s" % (",".join(bad), ",".join(ALLOCATORS + list(SETTINGS))))
        args.allocators = sel
    return args


def main(argv):
    args = parse_args(argv)
    started = time.time()
    start_dt = datetime.datetime.now()
    selected = args.only or [w.name for w in WORKLOADS] + list(EXTRA_ONLY)
    workloads = [w for w in WORKLOADS if w.name in selected]
    # The instruction counts cover the selected C workloads, or all of them when
    # only extras are selected.
    counted = [w for w in workloads if w.kind == "c"] or [w for w in WORKLOADS if w.kind == "c"]
    want_allocs = args.allocators or ALLOCATORS

    outdir = os.path.abspath(args.out or os.path.join(tempfile.gettempdir(),
                                                      "swiftmalloc-bench-%d" % os.getuid()))
    os.makedirs(outdir, exist_ok=True)
    log("output directory: " + outdir)

    if not args.no_install:
        extra = []
        if any(w.name == "sqlite" for w in workloads) and not shutil.which("sqlite3"):
            extra.append("sqlite3")
        ensure_packages(extra)

    # allocators
    allocs = []
    versions = {"glibc": machine_meta()["glibc"]}
    for name in want_allocs:
        if name == "glibc":
            allocs.append(("glibc", None))
        elif name == "swiftmalloc" or name in SETTINGS:
            lib = snapshot_swiftmalloc(args, outdir)
            if not lib:
                print("error: libswiftmalloc.so not found at %s (build it with `swift build -c release`, "
                      "or pass --lib)" % swiftmalloc_source(args), file=sys.stderr)
                return 2
            allocs.append((name, lib))
            commit = run_quiet(["git", "-C", ROOT, "describe", "--always", "--dirty"]).stdout.strip()
            versions[name] = "%s (sha256 %s, from %s)%s" % (
                commit or "?", sha256_file(lib)[:12], swiftmalloc_source(args),
                "".join(" with %s=%s" % kv for kv in sorted(SETTINGS.get(name, {}).items())))
        else:
            pkg, soname = next((p, s) for n, p, s in PEERS if n == name)
            lib = find_lib(soname)
            if not lib:
                warn("%s (%s) not found: skipped" % (name, soname))
                continue
            allocs.append((name, lib))
            versions[name] = package_version(pkg) or ""
    log("allocators: " + ", ".join("%s%s" % (n, " (" + l + ")" if l else "") for n, l in allocs))

    if not shutil.which(os.environ.get("CC", "gcc")):
        print("error: gcc not found", file=sys.stderr)
        return 2
    unbuilt, skipped = build_workloads(
        outdir, workloads + ([w for w in counted if w not in workloads] if "instructions" in selected else []), args)
    global MEASURE
    MEASURE = os.path.join(outdir, "bin", "measure")
    if "measure" in unbuilt:
        print("error: could not build tools/measure.c", file=sys.stderr)
        return 2
    jobs = make_jobs(workloads, args, outdir, unbuilt | skipped)
    setup_failures = ["%s: build failed" % n for n in sorted(unbuilt)]

    # ---- the alternating rounds
    runs = []
    failures = list(setup_failures)
    total = len(jobs) * args.rounds * len(allocs)
    k = 0
    reference = {}  # job label -> glibc's (or the first allocator's) output signature
    for job in jobs:
        if not args.quick:
            # one unrecorded run to warm the page cache (binary, inputs)
            measure(job.argv_fn(allocs[0][0]), allocs[0][1], job.stdin, timeout=args.timeout)
        for rnd in range(args.rounds):
            for name, lib in allocs:
                k += 1
                res = measure(job.argv_fn(name), lib, job.stdin, timeout=args.timeout, settings=SETTINGS.get(name))
                extras = parse_kv(res.stdout)
                if res.ok and job.signature_fn:
                    sig = job.signature_fn(res, name)
                    if job.label not in reference:
                        reference[job.label] = (name, sig)
                    elif sig != reference[job.label][1]:
                        res.ok = False
                        res.error = "output differs from %s's" % reference[job.label][0]
                rec = {"workload": job.label, "base": job.w.name, "allocator": name, "round": rnd + 1,
                       "threads": job.threads, "wall_s": res.wall_s, "maxrss_kib": res.maxrss_kib,
                       "user_s": getattr(res, "user_s", 0.0), "sys_s": getattr(res, "sys_s", 0.0),
                       "rc": res.rc, "signal": res.signal, "timed_out": res.timed_out,
                       "ok": res.ok, "error": res.error, "extras": extras}
                runs.append(rec)
                line = "[%3d/%d] %-14s %-11s round %d/%d  %7.3f s  %8.1f MiB" % (
                    k, total, job.label, name, rnd + 1, args.rounds, res.wall_s, res.maxrss_kib / 1024.0)
                if "requested_bytes_peak" in extras and res.maxrss_kib:
                    line += "  util %.2f" % (extras["requested_bytes_peak"] / (res.maxrss_kib * 1024.0))
                if not res.ok:
                    line += "  FAILED: " + res.error
                    failures.append("%s under %s, round %d: %s%s" % (
                        job.label, name, rnd + 1, res.error,
                        (" — stderr: " + res.stderr[-300:]) if res.stderr else ""))
                log(line)
                if not res.ok and res.stderr:
                    log("    " + res.stderr.replace("\n", "\n    "))

    cg = None
    if "callgrind" in selected:
        cg = run_callgrind(allocs, outdir, args.quick, max(args.timeout, 300))
        for n, c in cg.items():
            if isinstance(c, dict) and "error" in c:
                failures.append("callgrind loop under %s: %s" % (n, c["error"]))
    ins = None
    if "instructions" in selected:
        ins = run_instructions(allocs, outdir, [w for w in counted if w.name not in unbuilt], args,
                               max(args.timeout, 300))
        for wname, row in ins.get("workloads", {}).items():
            for n, c in row.items():
                if "error" in c:
                    failures.append("%s under callgrind with %s: %s" % (wname, n, c["error"]))
    st = None
    if "startup" in selected:
        st = run_startup(allocs, args.quick, outdir)
        failures += st.pop("failures", [])

    # ---- results
    summary = summarize(jobs, runs, allocs)
    elapsed = time.time() - started
    host = socket.gethostname().split(".")[0] or "host"
    meta = dict(machine_meta())
    if args.scaling:
        threads_desc = "scaling " + args.scaling
    elif args.threads:
        threads_desc = "%d for the threaded workloads" % args.threads
    else:
        threads_desc = "defaults (larson 4, prodcons 2, contention 16)"
    meta.update(date=start_dt.strftime("%Y-%m-%d %H:%M"), host=host, quick=args.quick, rounds=args.rounds,
                threads_desc=threads_desc, versions=versions, elapsed_s=elapsed,
                allocators={n: l for n, l in allocs}, argv=argv)
    md = markdown(meta, jobs, summary, allocs, cg, st, failures, ins)

    resdir = args.results or (os.path.join(outdir, "results") if args.quick else os.path.join(HERE, "results"))
    os.makedirs(resdir, exist_ok=True)
    stem = os.path.join(resdir, "%s-%s%s" % (start_dt.strftime("%Y-%m-%d-%H%M"), host,
                                            "-quick" if args.quick else ""))
    with open(stem + ".md", "w") as f:
        f.write(md)
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "summary": summary, "callgrind": cg, "instructions": ins, "startup": st,
                   "runs": runs,
                   "failures": failures}, f, indent=1, sort_keys=True)
    write_csv(stem + ".csv", runs)
    svg = os.path.join(resdir, "latest.svg")
    if jobs:
        write_svg(svg, meta, jobs, summary, allocs)

    log("")
    log(md)
    log("results: %s.md, .json, .csv%s" % (stem, "; chart: " + svg if jobs else ""))
    log("runner wall time: %.1f s" % elapsed)
    if failures:
        log("%d failure(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
