// The few things the Swift core cannot say itself: thread-local storage with the
// initial-exec model, errno, futex-based locks, atomics on plain words, and thin
// wrappers over the system calls the allocator makes. Nothing here allocates.
#ifndef SWIFTMALLOC_SHIMS_H
#define SWIFTMALLOC_SHIMS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/auxv.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <malloc.h>

#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif

// ---- Thread-local state -------------------------------------------------------
// swm_tls_cache: this thread's cache; until the thread has one it points at
// swm_empty_cache, a zeroed cache whose bins are all empty with limit 0, so the
// fast paths need no null test: they simply fall through to the slow path.
// swm_tls_state: 0 = no cache yet, 1 = cache live, 2 = torn down at thread exit
// (later calls from that thread bypass caching).
// swm_tls_shard: the central-list row of a thread that allocates without a cache
// (hardened mode bypasses caches), plus one; 0 until its first such allocation
// takes one, and again once the thread gives it back (Heap.cachelessShard).
#define SWM_EMPTY_CACHE_BYTES 8192
extern char swm_empty_cache[SWM_EMPTY_CACHE_BYTES];
static inline __attribute__((always_inline)) void *swm_empty_cache_get(void) { return swm_empty_cache; }
extern __thread void *swm_tls_cache __attribute__((tls_model("initial-exec")));
extern __thread int swm_tls_state __attribute__((tls_model("initial-exec")));
extern __thread uint32_t swm_tls_shard __attribute__((tls_model("initial-exec")));

static inline __attribute__((always_inline)) void *swm_tls_cache_get(void) { return swm_tls_cache; }
static inline __attribute__((always_inline)) void swm_tls_cache_set(void *c) { swm_tls_cache = c; }
static inline __attribute__((always_inline)) int swm_tls_state_get(void) { return swm_tls_state; }
static inline __attribute__((always_inline)) void swm_tls_state_set(int s) { swm_tls_state = s; }
static inline uint32_t swm_tls_shard_get(void) { return swm_tls_shard; }
static inline void swm_tls_shard_set(uint32_t s) { swm_tls_shard = s; }
/// An address in the main thread's stack above every frame (its environment
/// array, from the library's constructor), or 0 when unknown (unwind.c).
extern uintptr_t swm_main_stack_top;
/// The top of the calling thread's stack, for an address `sp` on it: glibc puts a
/// thread's control block (the thread pointer) above its stack, and the main
/// thread's stack ends at its environment array (swm_main_stack_top); 0 when
/// neither is known.
static inline uintptr_t swm_stack_top_for(uintptr_t sp) {
    uintptr_t tp = 0;
#if defined(__x86_64__)
    __asm__("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
    tp = (uintptr_t)__builtin_thread_pointer();
#endif
    return sp < tp ? tp : swm_main_stack_top;
}

// ---- The page map's root --------------------------------------------------------
// 2^17 leaf pointers (one per GiB of the 47-bit address space) in .bss: 1 MiB of
// address space whose pages become resident only where a leaf is installed.
#define SWM_PAGE_ROOT_ENTRIES (1u << 17)
extern void *swm_page_root[SWM_PAGE_ROOT_ENTRIES];
static inline __attribute__((always_inline)) void **swm_page_root_get(void) { return swm_page_root; }
// The flat page map: the leaves of one 16 TiB window of address space laid end to
// end in a single read-only reservation (pieces are made writable as leaves), so
// free finds a page's entry with one load from here (PageMap.swift). NULL under an
// address-space limit or when the reservation failed; the window's base is
// swm_page_window.
//
// An entry holds its span descriptor's address minus swm_page_entry_base, so the
// entry 0 of a page that is not ours stands for a descriptor of zeros there (its
// fastLimit 0 fails the free fast path's test, with no test of its own for "none"):
// the page below the flat map, or without one a static descriptor of zeros.
extern void *swm_page_flat __attribute__((visibility("hidden")));
extern uintptr_t swm_page_window __attribute__((visibility("hidden")));
extern uintptr_t swm_page_entry_base __attribute__((visibility("hidden")));
#define SWM_PAGE_FLAT_GUARD 4096
/// The flat map for lookups, NULL without one or once retired (swm_page_flat_retire).
/// Read once per lookup and passed to the functions below.
static inline __attribute__((always_inline)) uintptr_t *swm_page_flat_get(void) {
    return (uintptr_t *)__atomic_load_n(&swm_page_flat, __ATOMIC_RELAXED);
}
static inline __attribute__((always_inline)) uintptr_t swm_page_window_get(void) { return swm_page_window; }
static inline __attribute__((always_inline)) uintptr_t swm_page_entry_base_get(void) { return swm_page_entry_base; }
/// Flat map `flat`'s entry for `p`'s page, entry (p >> 12) mod 2^32, as stored (0
/// where none). The empty asm keeps the index a 32-bit value, taken with one
/// zero-extending move instead of a 64-bit mask that needs an instruction of its
/// own to load.
static inline __attribute__((always_inline)) uintptr_t swm_page_flat_entry(const uintptr_t *flat, uintptr_t p) {
    uint32_t i = (uint32_t)(p >> 12);
    __asm__("" : "+r"(i));
    return flat[i];
}
/// The descriptor flat map `flat` gives for `p`'s page, the zero descriptor where
/// none; the base is folded into the field loads' addressing.
static inline __attribute__((always_inline)) void *swm_page_flat_span(const uintptr_t *flat, uintptr_t p) {
    return (void *)((const char *)flat - SWM_PAGE_FLAT_GUARD + swm_page_flat_entry(flat, p));
}
/// The same through swm_page_entry_base, which a retirement leaves as it was: for
/// `free`'s flat entry, which a thread may still be running when the map retires
/// (it then reads only entries of blocks it holds, whose leaves stay mapped).
static inline __attribute__((always_inline)) void *swm_page_flat_span_unretired(uintptr_t p) {
    const char *base = (const char *)swm_page_entry_base;
    return (void *)(base + swm_page_flat_entry((const uintptr_t *)(base + SWM_PAGE_FLAT_GUARD), p));
}
/// Installs the flat map whose zero descriptor is the guard page below `flat`.
static inline void swm_page_flat_set(void *flat, uintptr_t window) {
    swm_page_window = window;
    swm_page_entry_base = (uintptr_t)flat - SWM_PAGE_FLAT_GUARD;
    swm_page_flat = flat;
}
/// Retires the flat map (PageMap.swift, retireFlatPageMap): lookups take the two
/// levels from now on. swm_page_entry_base stays: entries keep their encoding.
static inline void swm_page_flat_retire(void) { __atomic_store_n(&swm_page_flat, NULL, __ATOMIC_RELEASE); }

// ---- Process-wide root --------------------------------------------------------
// swm_heap: the allocator's global state (a Heap in the Swift core), mapped at
// first use. NULL until initialised.
extern void *swm_heap;
static inline __attribute__((always_inline)) void *swm_heap_get(void) { return __atomic_load_n(&swm_heap, __ATOMIC_ACQUIRE); }
static inline void swm_heap_publish(void *h) { __atomic_store_n(&swm_heap, h, __ATOMIC_RELEASE); }

// ---- errno --------------------------------------------------------------------
static inline void swm_set_errno(int e) { errno = e; }
static inline int swm_get_errno(void) { return errno; }

// ---- Locks: a three-state futex mutex (0 free, 1 held, 2 held with waiters) ----
// swm_tls_locks counts the locks of ours the thread holds or is taking (raised
// before a lock is taken, lowered after it is released; the signal fences keep
// the compiler from moving either across), so a signal handler can tell that its
// thread is inside the allocator (shims.c, reports when a signal ends the process).
extern __thread int swm_tls_locks __attribute__((tls_model("initial-exec")));
/// An ending signal that arrived while the thread held a lock of ours (0: none):
/// its reports are written, and the signal raised again, when the thread releases
/// its last lock (shims.c).
extern __thread volatile int swm_tls_deferred_signal __attribute__((tls_model("initial-exec")));
/// The process that noted swm_tls_deferred_signal: after fork() the child keeps a
/// signal only if it noted it itself.
extern __thread volatile pid_t swm_tls_deferred_pid __attribute__((tls_model("initial-exec")));
void swm_deferred_signal_deliver(void);
static inline __attribute__((always_inline)) void swm_locks_enter(void) {
    swm_tls_locks++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}
static inline __attribute__((always_inline)) void swm_locks_leave(void) {
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (--swm_tls_locks == 0 && __builtin_expect(swm_tls_deferred_signal != 0, 0)) swm_deferred_signal_deliver();
}
/// errno is left as it was: a wait that finds the word changed fails with EAGAIN,
/// inside an allocation or a free that succeeds.
static inline void swm_lock_slow(int32_t *l) {
    int saved = errno;
    int32_t c = __atomic_exchange_n(l, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
        syscall(SYS_futex, l, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
        c = __atomic_exchange_n(l, 2, __ATOMIC_ACQUIRE);
    }
    errno = saved;
}
static inline __attribute__((always_inline)) void swm_lock(int32_t *l) {
    swm_locks_enter();
    int32_t expected = 0;
    if (__builtin_expect(__atomic_compare_exchange_n(l, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED), 1)) return;
    for (int i = 0; i < 64; i++) {
        __builtin_ia32_pause();
        expected = 0;
        if (__atomic_load_n(l, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(l, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    }
    swm_lock_slow(l);
}
/// Takes the lock only if it is free; returns whether it did.
static inline __attribute__((always_inline)) int swm_trylock(int32_t *l) {
    swm_locks_enter();
    int32_t expected = 0;
    if (__atomic_compare_exchange_n(l, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 1;
    swm_locks_leave();
    return 0;
}
static inline __attribute__((always_inline)) void swm_unlock(int32_t *l) {
    if (__atomic_exchange_n(l, 0, __ATOMIC_RELEASE) == 2)
        syscall(SYS_futex, l, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    swm_locks_leave();
}
/// Only for the child after fork(): no other thread exists, so the lock is simply free.
static inline void swm_lock_reset(int32_t *l) { __atomic_store_n(l, 0, __ATOMIC_RELAXED); }
/// In the child after fork(): the forking thread's locks were reset, not released.
/// A signal noted before the fork was the parent's, which delivers it itself; one
/// noted since (the child's fork handler holds the locks it inherited) is the
/// child's, delivered when its fork handlers are done (shims.c).
static inline void swm_locks_reset(void) {
    swm_tls_locks = 0;
    if (swm_tls_deferred_signal != 0 && swm_tls_deferred_pid != getpid()) swm_tls_deferred_signal = 0;
}
/// Installs the handler that writes the exit reports when SIGINT, SIGTERM, SIGHUP
/// or SIGPIPE ends the process, for those of them whose action is the default.
void swm_install_signal_reports(void);
/// The library has exit reports to write: a second thread's exit() waits for the first's.
void swm_exit_reports_want(void);
/// errno value `e`'s name ("EMFILE"), or NULL for 0 or an unknown value; never allocates.
const char *swm_errno_name(int e);

// ---- Atomics on plain words ---------------------------------------------------
static inline uintptr_t swm_load_acquire(uintptr_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void swm_store_release(uintptr_t *p, uintptr_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uintptr_t swm_load_relaxed(uintptr_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint32_t swm_load_relaxed_u32(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void swm_store_relaxed_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
/// Asks for the line at `address` to be brought into the cache; never faults.
static inline __attribute__((always_inline)) void swm_prefetch(uintptr_t address) { __builtin_prefetch((const void *)address); }
static inline void swm_store_relaxed(uintptr_t *p, uintptr_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uintptr_t swm_fetch_add(uintptr_t *p, uintptr_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline int swm_cas(uintptr_t *p, uintptr_t expected, uintptr_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

// ---- Operating system ---------------------------------------------------------
/// Fresh zeroed read-write pages, or NULL (errno from mmap).
/// Without MAP_NORESERVE: under the kernel's default overcommit policy a request
/// far beyond memory and swap then fails here, as glibc's does, instead of
/// succeeding and ending the program when it touches the pages.
static inline void *swm_os_map(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
/// Fresh zeroed pages at exactly `at`, or NULL when anything is mapped there
/// (MAP_FIXED_NOREPLACE; a kernel that ignores the flag may place them elsewhere,
/// which is undone here). errno is left as it was.
static inline void *swm_os_map_at(void *at, size_t size) {
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
    int saved = errno;
    void *p = mmap(at, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != MAP_FAILED && p != at) { munmap(p, size); p = MAP_FAILED; }
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}
static inline int swm_os_unmap(void *p, size_t size) { return munmap(p, size); }
/// Address space that reads as zeros and cannot be written, committing nothing
/// (a read-only private mapping is never charged to the commit limit), with huge
/// pages forbidden; NULL when it cannot be had. errno is left as it was.
static inline void *swm_os_reserve_zeros(size_t size) {
    int saved = errno;
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) (void)madvise(p, size, MADV_NOHUGEPAGE);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}
/// Whether the process runs under an address-space limit (RLIMIT_AS, `ulimit -v`).
static inline int swm_address_space_limited(void) {
    struct rlimit r;
    return getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY;
}
/// Makes [p, p+size) of such a reservation writable; 0 on success. errno is left as it was.
static inline int swm_os_make_writable(void *p, size_t size) {
    int saved = errno;
    int r = mprotect(p, size, PROT_READ | PROT_WRITE);
    errno = saved;
    return r;
}
/// Lets the kernel back [p, p+size) with transparent huge pages, or forbids it.
static inline int swm_os_hugepage(void *p, size_t size, int on) {
    int saved = errno;
    int r = madvise(p, size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    errno = saved;
    return r;
}
/// Give the pages' physical memory back; the range stays mapped and reads as zero.
static inline int swm_os_purge(void *p, size_t size) { return madvise(p, size, MADV_DONTNEED); }
/// Resizes a mapping where it is; NULL when it cannot grow in place. errno is left
/// as it was (the caller moves the block then, and may well succeed).
static inline void *swm_os_remap_in_place(void *p, size_t oldSize, size_t newSize) {
    int saved = errno;
    void *q = mremap(p, oldSize, newSize, 0);
    errno = saved;
    return q == MAP_FAILED ? NULL : q;
}
/// Moves a mapping's pages onto `target` (a mapping the caller owns, replaced).
static inline void *swm_os_remap_to(void *p, size_t oldSize, size_t newSize, void *target) {
    void *q = mremap(p, oldSize, newSize, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    return q == MAP_FAILED ? NULL : q;
}
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
/// Moves the pages of [from, from+size) onto [to, to+size), replacing what was
/// mapped there; `from` stays mapped and reads as zero (Linux 5.7 and later).
/// Returns 0, or the error number (EINVAL: the kernel lacks MREMAP_DONTUNMAP;
/// EFAULT: `from` spans more than one mapping); errno is left unchanged.
static inline int swm_os_move_pages(void *from, void *to, size_t size) {
    int saved = errno;
    void *q = mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to);
    int err = q == MAP_FAILED ? errno : 0;
    errno = saved;
    return err;
}
/// One byte per page of [p, p+size): bit 0 set when the page is resident.
/// Returns 0, or -1 (errno left unchanged).
static inline int swm_os_residency(void *p, size_t size, unsigned char *vec) {
    int saved = errno;
    int r = mincore(p, size, vec);
    errno = saved;
    return r;
}
/// fwrite to a stdio stream (a FILE *, kept opaque here); it may allocate, so the
/// caller holds no allocator lock. Returns 0, or -1 when the stream reports an error.
int swm_stream_write(void *stream, const void *buf, size_t len);
/// Turns the calling thread's cancellation off and returns the state to restore.
/// open, read, write, close and nanosleep are cancellation points: a thread
/// cancelled in one of them (deferred cancellation, the default) unwinds on the
/// spot, and inside the allocator it would leave its locks held and every other
/// thread waiting on them for ever. Every such call in the library runs between
/// swm_cancel_off and swm_cancel_restore.
static inline int swm_cancel_off(void) {
    int old = PTHREAD_CANCEL_ENABLE;
    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}
static inline void swm_cancel_restore(int old) {
    int ignored;
    (void)pthread_setcancelstate(old, &ignored);
}
/// A report's file when the process holds as many descriptors as its soft limit
/// allows (EMFILE): the soft limit is raised by up to four, if the hard limit
/// leaves room (the file, and /proc files the report reads meanwhile), until the
/// file is closed. Returns whether it was, with the old limit in *saved.
static inline int swm_nofile_raise(unsigned long *saved) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY || r.rlim_cur >= r.rlim_max) return 0;
    *saved = (unsigned long)r.rlim_cur;
    r.rlim_cur = r.rlim_max - r.rlim_cur > 4 ? r.rlim_cur + 4 : r.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &r) == 0;
}
/// The soft limit on descriptors (RLIM_INFINITY or an unreadable one: ULONG_MAX).
static inline unsigned long swm_nofile_soft(void) {
    struct rlimit r;
    return getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY ? (unsigned long)r.rlim_cur : (unsigned long)-1;
}
/// Puts back the soft limit swm_nofile_raise raised.
static inline void swm_nofile_restore(unsigned long saved) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
    r.rlim_cur = (rlim_t)saved;
    (void)setrlimit(RLIMIT_NOFILE, &r);
}
/// SIGXFSZ held off while the calling thread writes a report: a write past the file
/// size limit (RLIMIT_FSIZE) then fails with EFBIG instead of ending the process.
/// Returns whether the signal was blocked already (for swm_xfsz_release).
static inline int swm_xfsz_hold(void) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGXFSZ);
    if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0) return 1;
    return sigismember(&old, SIGXFSZ) == 1;
}
/// Ends swm_xfsz_hold: a SIGXFSZ the writes raised meanwhile is taken off, unseen,
/// and the signal unblocked unless it was blocked before.
static inline void swm_xfsz_release(int was_blocked) {
    if (was_blocked) return;
    int saved = errno;
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGXFSZ);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ) == 1) {
        struct timespec now = {0, 0};
        (void)sigtimedwait(&set, NULL, &now);
    }
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    errno = saved;
}
/// Writes all of `buf`; 0, or -1 with write's errno when a write fails.
static inline int swm_write_fd(int fd, const void *buf, size_t len) {
    int cancel = swm_cancel_off();
    const char *b = (const char *)buf;
    int result = 0;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            result = -1;
            break;
        }
        b += n; len -= (size_t)n;
    }
    swm_cancel_restore(cancel);
    return result;
}
static inline int swm_open_write(const char *path) {
    int cancel = swm_cancel_off();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    swm_cancel_restore(cancel);
    return fd;
}
/// Creates `path` afresh: whatever is at that name is removed first (a crashed
/// writer's file, or a symbolic link someone who can write the directory put at a
/// predictable name), and O_EXCL makes the open fail rather than follow a link made
/// in between. errno is open's.
static inline int swm_open_new(const char *path) {
    int cancel = swm_cancel_off();
    (void)unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    swm_cancel_restore(cancel);
    return fd;
}
static inline int swm_close(int fd) {
    int cancel = swm_cancel_off();
    int r = close(fd);
    swm_cancel_restore(cancel);
    return r;
}
/// Whether a report may be written beside `path` and renamed over it: nothing is
/// there yet, or a regular file (not a device such as /dev/null, a pipe, or a
/// symbolic link, which must be written through, not replaced). errno is left as it was.
static inline int swm_path_replaceable(const char *path) {
    int saved = errno;
    struct stat st;
    int r = lstat(path, &st);
    int replaceable = r == 0 ? S_ISREG(st.st_mode) : errno == ENOENT;
    errno = saved;
    return replaceable;
}
/// A private duplicate of stderr (numbered from 100, close-on-exec) for the exit
/// reports, so a program that closes fd 2 before exiting still gets them; 2 if
/// duplication fails. The file it refers to is remembered (shims.c).
int swm_dup_stderr(void);
/// Whether `fd` (from swm_dup_stderr) still refers to the file stderr was when it
/// was duplicated: a program may have closed it (closefrom, close_range) and the
/// number may now be one of its own files, which an exit report must not write into.
int swm_report_fd_intact(int fd);
static inline uint64_t swm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
/// 64 bits from the kernel's per-process random bytes (AT_RANDOM); never allocates.
static inline uint64_t swm_random_seed(void) {
    const uint64_t *r = (const uint64_t *)getauxval(AT_RANDOM);
    uint64_t v = r ? (r[0] ^ (r[1] << 1)) : (uint64_t)(uintptr_t)&swm_heap;
    return v ^ (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
}
static inline int swm_getpid(void) { return (int)getpid(); }
static inline int swm_gettid(void) { return (int)syscall(SYS_gettid); }
static inline void swm_abort(void) __attribute__((noreturn));
static inline void swm_abort(void) { extern void abort(void) __attribute__((noreturn)); abort(); }
/// The value of an environment variable, or NULL; safe before libc's own constructors ran.
const char *swm_getenv(const char *name);
/// CPUs this process may run on (sched_getaffinity; 1 when unknown).
static inline int swm_cpu_count(void) {
    uint64_t mask[16] = {0};
    long n = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    int count = 0;
    for (long i = 0; i < n / 8; i++) count += __builtin_popcountll(mask[i]);
    return count > 0 ? count : 1;
}
/// Size of physical memory in bytes (0 if unknown).
static inline size_t swm_physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES);
    return pages > 0 ? (size_t)pages * 4096u : 0;
}

// ---- Threads ------------------------------------------------------------------
/// Creates the key whose destructor hands a thread's cache back at thread exit.
int swm_thread_key_create(void);
/// Associates `cache` with the calling thread so the key's destructor runs at its exit.
void swm_thread_key_set(void *cache);

/// Starts the background purge thread (detached, all signals blocked, named
/// "swiftmalloc"); returns 0 on success, 1 while the helpers are paused (try again
/// later), else an error. Call with no allocator lock held. (helper_threads.c)
int swm_start_purger(void);
/// Starts the interval reporter thread (IntervalReport.swift); as swm_start_purger.
int swm_start_reporter(void);
/// A helper thread's sleep between passes: returns after `nanoseconds`, or at once
/// when the helpers are paused; non-zero when they are (the helper must then leave
/// its main function).
int swm_helper_nap(uint64_t nanoseconds);
/// In a forked child: no helper exists and no pause is in progress.
void swm_helpers_fork_child(void);
/// The next definition of `name` after this library's (libc's, for the libc
/// functions the library wraps), looked up once and kept in `*slot`; NULL if none.
void *swm_next_definition(void **slot, const char *name) __attribute__((visibility("hidden")));
static inline int swm_rename(const char *from, const char *to) { return rename(from, to); }
static inline int swm_unlink(const char *path) { return unlink(path); }
/// Sleeps until *word != expected or `nanoseconds` pass (0: no time limit).
static inline void swm_futex_wait(int32_t *word, int32_t expected, uint64_t nanoseconds) {
    struct timespec ts = { (time_t)(nanoseconds / 1000000000u), (long)(nanoseconds % 1000000000u) };
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, nanoseconds ? &ts : NULL, NULL, 0);
}

/// Points the exported `malloc`, `calloc` and `realloc` at other entries (the
/// profilers' variants); no effect in the prefixed-only build.
void swm_select_entries(void *malloc_entry, void *calloc_entry, void *realloc_entry);
/// Selects the sampling profiler's malloc.
void swm_use_sampled_malloc(void);
/// Points the exported `free` (and `cfree`) at tracking mode's entry
/// (swm_free_tracked in API.swift); no effect in the prefixed-only build.
void swm_use_tracked_free(void);
/// Points the exported free at the variant that reads the flat page map.
void swm_use_flat_free(void);
/// Points it back at swiftmalloc_free if it was at the flat variant (the flat map
/// retires); leaves tracking mode's entry as it is.
void swm_use_general_free(void);

// ---- Stack capture for the profiler ---------------------------------------------------
/// Loads libunwind's unw_backtrace with dlopen (so the library needs no libunwind
/// unless profiling is on) and records this library's own text range. Returns 1 when
/// libunwind is available, 0 when captures fall back to a frame-pointer walk. Call
/// once, from the constructor.
int swm_unwinder_open(void);
/// An address in this library's code: the one frame of the profiler's own site.
void *swm_own_site_address(void);
/// Captures up to `max` return addresses of the calling thread, innermost first,
/// without this library's own frames. Returns the count.
int swm_backtrace(uintptr_t *frames, int max);
/// How the allocation entries capture their caller's stack: into the calling
/// thread's cache (at `frames_offset`, up to `depth` frames), walking as `mode`
/// says (SWIFTMALLOC_PROFILE_WALK): replaying frame rules learned from libunwind
/// (stackwalk.c) and walking with libunwind where they miss (the default),
/// libunwind every time, the rules checked against libunwind, or frame pointers
/// only, libunwind not loaded (unwind.c).
enum { SWM_WALK_LIBUNWIND = 0, SWM_WALK_CACHED = 1, SWM_WALK_CHECK = 2, SWM_WALK_FP = 3 };
void swm_set_capture(long frames_offset, int depth, int mode);
/// Full profiling: points `malloc`, `calloc` and `realloc` at entries that capture
/// the caller's stack (as swm_set_capture says) before entering the allocator.
void swm_use_profiled_malloc(void);
/// Sampling: where the thread cache keeps its byte countdown (ThreadCache's
/// sampleCountdown, a signed word), for swm_malloc_sampled_out in unwind.c: the
/// sampled malloc's way out of its fast path, which it jumps to (so the return
/// address there is the program's). When the allocation crossed the countdown (it
/// is below zero) and walks are cached, that function captures the caller's stack
/// into the cache and leaves it pending for Profiler.capture, as calloc's profiled
/// entry does; then swm_malloc_sampled_slow (API.swift). Swift declares it itself.
void swm_set_sample_countdown_offset(long offset);
/// With cached_walk 2 (SWIFTMALLOC_PROFILE_WALK=check): writes how many cached walks
/// were compared with libunwind and how many differed.
void swm_walk_check_report(int fd);
/// The cached stack walker (stackwalk.c): takes libunwind's cursor API from the
/// dlopen handle; walks from a caller's return address, stack and frame pointers
/// with learned frame rules (-1: a frame without a rule); walks with libunwind and
/// learns the rules of the stack (-1: no cursor API); resets its lock in a forked
/// child. `swm_is_self_frame`: whether an address lies in this library.
void swm_stackwalk_open(void *libunwind);
/// A thread's walk memo (see swm_walk_cached in stackwalk.h): SWM_WALK_MEMO_DEPTH
/// return addresses, which are also its frame scratch, then as many rules (0: not
/// known), then SWM_WALK_MEMO_DEPTH + 1 steps, then the rule generation the memo
/// was made in (a memo of an older one is forgotten whole before a walk). Whoever
/// writes frames there other than the cached walk calls `swm_walk_memo_forget` for them.
#define SWM_WALK_MEMO_DEPTH 64
#define SWM_WALK_MEMO_RULES SWM_WALK_MEMO_DEPTH
#define SWM_WALK_MEMO_STEPS (2 * SWM_WALK_MEMO_DEPTH)
#define SWM_WALK_MEMO_GENERATION (3 * SWM_WALK_MEMO_DEPTH + 1)
void swm_walk_memo_forget(uintptr_t *memo, int n);
/// dlclose through `next` (libc's); once profiling is on and it unloaded something,
/// notes the libraries it unloaded (swm_unloaded_records) and forgets what was
/// learned about their code: other code may be mapped at those addresses later.
int swm_dlclose(int (*next)(void *), void *handle);
/// Copies the `unloaded` report records of the libraries unloaded so far (text
/// lines) into `buffer`, at most `capacity` bytes; returns the bytes copied.
size_t swm_unloaded_records(char *buffer, size_t capacity);
int swm_walk_learn(uintptr_t *frames, int max);
void swm_stackwalk_fork_child(void);
int swm_is_self_frame(uintptr_t ip);
/// Around every call into libunwind: enter returns 0 when the caller must not go in
/// (a fork is waiting, or this child was forked while a thread was inside), and
/// then the caller must not call leave. The fork handlers call prepare (first,
/// before any lock), parent and child.
int swm_unwind_enter(void);
void swm_unwind_leave(void);
void swm_unwind_fork_prepare(void);
void swm_unwind_fork_parent(void);
void swm_unwind_fork_child(void);
/// The hash that keys a captured stack: one multiply per frame, innermost first, so
/// a walker can fold it in as it goes; `swm_hash_finish` mixes in the depth.
/// Never 0 (0 marks an empty memo entry).
static inline uint64_t swm_hash_step(uint64_t h, uintptr_t ip) { return (h ^ ip) * 0x9E3779B97F4A7C15ull; }
static inline uint64_t swm_hash_finish(uint64_t h, int n) {
    h ^= (uint64_t)n;
    h = (h ^ (h >> 32)) * 0xBF58476D1CE4E5B9ull;
    return (h ^ (h >> 29)) | 1;
}
enum { SWM_HASH_SEED = 0x2545F491 };
static inline uint64_t swm_hash_frames(const uintptr_t *frames, int n) {
    uint64_t h = SWM_HASH_SEED;
    for (int i = 0; i < n; i++) h = swm_hash_step(h, frames[i]);
    return swm_hash_finish(h, n);
}
/// Frames the profiled malloc entry captured for the allocation in progress (0: none),
/// and their swm_hash_frames.
extern __thread int swm_tls_pending_frames __attribute__((tls_model("initial-exec")));
extern __thread uint64_t swm_tls_pending_hash __attribute__((tls_model("initial-exec")));
static inline int swm_pending_frames_take(void) {
    int n = swm_tls_pending_frames;
    swm_tls_pending_frames = 0;
    return n;
}
static inline uint64_t swm_pending_hash_get(void) { return swm_tls_pending_hash; }
/// 1 while the calling thread is inside a capture (re-entry guard).
extern __thread int swm_tls_capturing __attribute__((tls_model("initial-exec")));
static inline int swm_capturing_get(void) { return swm_tls_capturing; }
static inline void swm_capturing_set(int v) { swm_tls_capturing = v; }
/// Reads a whole small file (e.g. /proc/self/maps) into buf; returns bytes read or -1.
long swm_read_file(const char *path, char *buf, long cap);
/// The number of lines of a file of any length (e.g. /proc/self/maps), or -1.
long swm_count_lines(const char *path);

/// Signed 64-bit leading-zero count helper for size-class computation.
static inline unsigned swm_log2(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x | 1); }

#endif
