// Stack capture for the profiler. libunwind's unw_backtrace is loaded with dlopen at
// start-up when profiling is on, so libswiftmalloc.so depends on libc alone; without
// libunwind a frame-pointer walk is used. Frames inside this library are dropped, so
// a stack starts at the allocator's caller.
#define _GNU_SOURCE 1
#include "SwiftMallocShims.h"
#include "stackwalk.h"
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

__thread int swm_tls_capturing __attribute__((tls_model("initial-exec"))) = 0;
/// How captures walk: an SWM_WALK_ mode (swm_set_capture).
static int swm_profile_walk;
static void swm_code_rebuild(void);
static void swm_code_fork_child(void);
__thread int swm_tls_pending_frames __attribute__((tls_model("initial-exec"))) = 0;
__thread uint64_t swm_tls_pending_hash __attribute__((tls_model("initial-exec"))) = 0;

typedef int (*swm_unw_backtrace_fn)(void **, int);
static swm_unw_backtrace_fn swm_unw_backtrace;
/// libunwind's unw_flush_cache and its local address space (unw_local_addr_space).
typedef void (*swm_unw_flush_cache_fn)(void *, uintptr_t, uintptr_t);
static swm_unw_flush_cache_fn swm_unw_flush_cache;
static void **swm_unw_local_addr_space;
/// Set by the first dlclose once profiling is on (swm_code_unloaded).
static int swm_code_was_unloaded;
static int32_t swm_unloaded_lock;
static uintptr_t swm_self_start, swm_self_end;
/// Captures return nothing until swm_unwinder_open has run (allocations made while
/// it loads libunwind included).
static int swm_unwinder_ready;

static int swm_find_self(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    uintptr_t probe = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
        if (probe >= start && probe < end) {
            // The whole object: from its lowest to its highest loaded segment.
            uintptr_t lo = UINTPTR_MAX, hi = 0;
            for (int j = 0; j < info->dlpi_phnum; j++) {
                const ElfW(Phdr) *q = &info->dlpi_phdr[j];
                if (q->p_type != PT_LOAD) continue;
                uintptr_t s = info->dlpi_addr + q->p_vaddr;
                if (s < lo) lo = s;
                if (s + q->p_memsz > hi) hi = s + q->p_memsz;
            }
            swm_self_start = lo;
            swm_self_end = hi;
            return 1;
        }
    }
    return 0;
}

void *swm_own_site_address(void) { return (void *)(uintptr_t)&swm_unwinder_open; }

// libunwind's address checks. At its first walk libunwind opens a pipe (the two
// lowest free descriptors) and keeps the two numbers; to check an address it reads
// the pipe empty and writes one byte from the address into it, and when the read
// fails it closes both numbers and opens a new pipe. A program that has since
// closed those numbers and opened its own under them (dup2 onto 3 before exec, as
// Java's process launcher does; a daemon closing everything) would have its
// descriptors read, written or closed under it. So the first walk is made here and
// the pipe's numbers and inode noted; before every entry into libunwind they are
// checked: both still the pipe, libunwind may run; both closed, a new pipe is made
// under the same numbers; anything else (the program owns one of them), the walk
// does without libunwind (frame pointers) until that changes.
static int swm_check_pipe[2] = {-1, -1};
static dev_t swm_check_pipe_dev;
static ino_t swm_check_pipe_ino;
static int32_t swm_check_pipe_lock;

/// The two lowest free descriptor numbers (pipe2 takes those), from 0 up.
static void swm_lowest_free(int out[2]) {
    int found = 0;
    for (int fd = 0; fd < 4096 && found < 2; fd++)
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) out[found++] = fd;
    if (found < 2) out[0] = out[1] = -1;
}

/// Whether `fd` is an end of the noted pipe (1), closed (0), or something else (-1).
static int swm_pipe_end_state(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno == EBADF ? 0 : -1;
    return S_ISFIFO(st.st_mode) && st.st_dev == swm_check_pipe_dev && st.st_ino == swm_check_pipe_ino ? 1 : -1;
}

/// Notes `fds` as libunwind's pipe when they are the two ends of one.
static int swm_note_pipe(const int fds[2]) {
    struct stat a, b;
    if (fds[0] < 0 || fstat(fds[0], &a) != 0 || fstat(fds[1], &b) != 0 || !S_ISFIFO(a.st_mode) ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return 0;
    swm_check_pipe_dev = a.st_dev;
    swm_check_pipe_ino = a.st_ino;
    return 1;
}

/// Whether libunwind may run now (see above). errno is left as it was.
static int swm_unwinder_pipe_ok(void) {
    if (swm_check_pipe[0] < 0) return 1;   // no pipe of libunwind's known: nothing to guard
    int saved = errno;
    swm_lock(&swm_check_pipe_lock);
    int r = swm_pipe_end_state(swm_check_pipe[0]), w = swm_pipe_end_state(swm_check_pipe[1]);
    int ok = r == 1 && w == 1;
    if (r == 0 && w == 0) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
            if (fds[0] == swm_check_pipe[0] && fds[1] == swm_check_pipe[1] && swm_note_pipe(fds)) {
                ok = 1;
            } else {
                close(fds[0]);
                close(fds[1]);
            }
        }
    }
    swm_unlock(&swm_check_pipe_lock);
    errno = saved;
    return ok;
}

/// The first walk, with the closed ones among descriptors 0-2 held by /dev/null
/// meanwhile (a program started with stdin closed would otherwise find the pipe
/// there), and the pipe it opens noted.
static void swm_unwinder_first_walk(void) {
    int saved = errno;
    int held[3] = {0, 0, 0};
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        int got = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (got == fd) {
            held[fd] = 1;
        } else {
            if (got >= 0) close(got);
            break;
        }
    }
    int fds[2];
    swm_lowest_free(fds);
    void *frames[4];
    swm_unw_backtrace(frames, 4);
    if (swm_note_pipe(fds)) {
        swm_check_pipe[0] = fds[0];
        swm_check_pipe[1] = fds[1];
    }
    for (int fd = 0; fd < 3; fd++)
        if (held[fd]) close(fd);
    errno = saved;
}

int swm_unwinder_open(void) {
    dl_iterate_phdr(swm_find_self, (void *)(uintptr_t)&swm_unwinder_open);
    // What the loader and libunwind allocate from here on is the profiler's own
    // (Profiler.ownSite), as during a walk.
    swm_tls_capturing = 1;
    void *h = NULL;
    if (swm_profile_walk != SWM_WALK_FP) {
        h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) h = dlopen("libunwind.so", RTLD_NOW | RTLD_LOCAL);
    }
    if (h != NULL) {
        swm_unw_backtrace = (swm_unw_backtrace_fn)dlsym(h, "unw_backtrace");
        swm_unw_flush_cache = (swm_unw_flush_cache_fn)dlsym(h, "_Ux86_64_flush_cache");
        swm_unw_local_addr_space = (void **)dlsym(h, "_ULx86_64_local_addr_space");
    }
    swm_stackwalk_open(h);
    if (swm_unw_backtrace != NULL) swm_unwinder_first_walk();
    if (swm_unw_backtrace == NULL) swm_code_rebuild();   // frame-pointer walks from now on
    swm_tls_capturing = 0;
    __atomic_store_n(&swm_unwinder_ready, 1, __ATOMIC_RELEASE);
    return swm_unw_backtrace != NULL;
}

// Libraries unloaded while profiling: the executable mappings they had, kept as
// the report's `unloaded` records (docs/PROFILE-FORMAT.md) so that frames in them
// can still be named. Appended under swm_unloaded_lock, never freed; when the log
// is full later unloads are not recorded.
enum { SWM_UNLOADED_LOG_BYTES = 256 << 10 };
static char *swm_unloaded_log;
static size_t swm_unloaded_length;

/// The loaded libraries as dl_iterate_phdr lists them: address, name (copied) and
/// executable segments, page-rounded as /proc/self/maps shows them.
enum { SWM_SNAPSHOT_MODULES = 1024, SWM_SNAPSHOT_NAMES = 128 << 10, SWM_MODULE_SEGMENTS = 4 };
typedef struct {
    uintptr_t address;
    uint32_t name_at, name_length;
    int segments, present;
    uintptr_t start[SWM_MODULE_SEGMENTS], end[SWM_MODULE_SEGMENTS], offset[SWM_MODULE_SEGMENTS];
} swm_module_entry;
typedef struct {
    unsigned long long unloads;   // dlpi_subs: libraries unloaded since start
    int count, names_used, marking;
    swm_module_entry modules[SWM_SNAPSHOT_MODULES];
    char names[SWM_SNAPSHOT_NAMES];
} swm_module_snapshot;

static int swm_snapshot_module(struct dl_phdr_info *info, size_t size, void *arg) {
    swm_module_snapshot *s = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) s->unloads = info->dlpi_subs;
    const char *name = info->dlpi_name;
    if (name == NULL || name[0] == 0) return 0;   // the executable and the vDSO stay
    size_t length = strlen(name);
    if (s->marking) {
        // After the unload: the entries still loaded are present.
        for (int i = 0; i < s->count; i++) {
            swm_module_entry *e = &s->modules[i];
            if (e->address == info->dlpi_addr && e->name_length == length &&
                memcmp(s->names + e->name_at, name, length) == 0)
                e->present = 1;
        }
        return 0;
    }
    if (s->count >= SWM_SNAPSHOT_MODULES || (size_t)s->names_used + length > SWM_SNAPSHOT_NAMES) return 0;
    swm_module_entry *e = &s->modules[s->count];
    e->address = info->dlpi_addr;
    e->name_at = (uint32_t)s->names_used;
    e->name_length = (uint32_t)length;
    e->segments = 0;
    e->present = 0;
    memcpy(s->names + s->names_used, name, length);
    s->names_used += (int)length;
    uintptr_t page = (uintptr_t)getpagesize();
    for (int i = 0; i < info->dlpi_phnum && e->segments < SWM_MODULE_SEGMENTS; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t low = info->dlpi_addr + ph->p_vaddr;
        e->start[e->segments] = low & ~(page - 1);
        e->end[e->segments] = (low + ph->p_memsz + page - 1) & ~(page - 1);
        e->offset[e->segments] = ph->p_offset & ~(page - 1);
        e->segments++;
    }
    s->count++;
    return 0;
}

/// Takes `line` (n bytes, ending in a newline) out of the log if it is there, so
/// that appending it again moves it to the end: the log stays in the order of
/// each record's last unload, which readers rely on.
static void swm_unloaded_drop(const char *line, size_t n) {
    size_t at = 0;
    while (at < swm_unloaded_length) {
        const char *eol = memchr(swm_unloaded_log + at, '\n', swm_unloaded_length - at);
        size_t length = eol != NULL ? (size_t)(eol - (swm_unloaded_log + at)) + 1 : swm_unloaded_length - at;
        if (length == n && memcmp(swm_unloaded_log + at, line, n) == 0) {
            memmove(swm_unloaded_log + at, swm_unloaded_log + at + n, swm_unloaded_length - at - n);
            swm_unloaded_length -= n;
            return;
        }
        at += length;
    }
}

/// Formats one `unloaded` record into `line`; its length, or 0 when it does not fit.
/// A newline in the path is written as /proc/self/maps writes it (\012), so that
/// no file name can end the record and begin another.
static int swm_unloaded_line(char *line, size_t capacity, uintptr_t start, uintptr_t end, uintptr_t offset,
                             const char *path) {
    int n = snprintf(line, capacity, "unloaded 0x%lx 0x%lx 0x%lx ", (unsigned long)start, (unsigned long)end,
                     (unsigned long)offset);
    if (n <= 0 || (size_t)n >= capacity) return 0;
    size_t at = (size_t)n;
    for (const char *c = path; *c != 0; c++) {
        size_t width = *c == '\n' ? 4 : 1;
        if (at + width + 1 >= capacity) return 0;
        if (width == 4) memcpy(line + at, "\\012", 4); else line[at] = *c;
        at += width;
    }
    line[at++] = '\n';
    return (int)at;
}

/// Appends the libraries of snapshot `s` that are no longer loaded to the log
/// (a library loaded and unloaded again at the same place once, where it was
/// unloaded last).
static void swm_log_unloaded(swm_module_snapshot *s) {
    for (int i = 0; i < s->count; i++) {
        swm_module_entry *e = &s->modules[i];
        if (e->present || e->segments == 0) continue;
        char name[PATH_MAX], resolved[PATH_MAX];
        size_t length = e->name_length < sizeof name - 1 ? e->name_length : sizeof name - 1;
        memcpy(name, s->names + e->name_at, length);
        name[length] = 0;
        // dlopen's own path may be relative; /proc/self/maps, and the report's
        // module records, hold absolute ones.
        const char *path = name[0] == '/' || realpath(name, resolved) == NULL ? name : resolved;
        swm_lock(&swm_unloaded_lock);
        if (swm_unloaded_log == NULL) {
            void *m = mmap(NULL, SWM_UNLOADED_LOG_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m != MAP_FAILED) swm_unloaded_log = m;
        }
        for (int k = 0; k < e->segments && swm_unloaded_log != NULL; k++) {
            char line[PATH_MAX + 80];
            int n = swm_unloaded_line(line, sizeof line, e->start[k], e->end[k], e->offset[k], path);
            if (n <= 0) break;
            swm_unloaded_drop(line, (size_t)n);
            if (swm_unloaded_length + (size_t)n > SWM_UNLOADED_LOG_BYTES) break;
            memcpy(swm_unloaded_log + swm_unloaded_length, line, (size_t)n);
            swm_unloaded_length += (size_t)n;
        }
        swm_unlock(&swm_unloaded_lock);
    }
}

size_t swm_unloaded_records(char *buffer, size_t capacity) {
    swm_lock(&swm_unloaded_lock);
    size_t n = swm_unloaded_length < capacity ? swm_unloaded_length : capacity;
    if (n > 0) memcpy(buffer, swm_unloaded_log, n);
    swm_unlock(&swm_unloaded_lock);
    return n;
}

/// After an unload: the learned frame rules, every thread's walk memo and
/// libunwind's caches are forgotten.
static void swm_code_unloaded(void) {
    __atomic_store_n(&swm_code_was_unloaded, 1, __ATOMIC_RELAXED);
    swm_stackwalk_forget_code();
    // libunwind's own caches of unwind information by address (the cursor API's;
    // unw_backtrace's per-thread cache is bypassed from now on, swm_backtrace).
    if (swm_unw_flush_cache != NULL && swm_unw_local_addr_space != NULL)
        swm_unw_flush_cache(*swm_unw_local_addr_space, 0, 0);
}

int swm_dlclose(int (*next)(void *), void *handle) {
    if (!__atomic_load_n(&swm_unwinder_ready, __ATOMIC_ACQUIRE)) return next(handle);
    swm_module_snapshot *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) s = NULL;
    if (s != NULL) dl_iterate_phdr(swm_snapshot_module, s);
    unsigned long long before = s != NULL ? s->unloads : 0;
    int r = next(handle);
    if (r == 0) {
        if (s != NULL) {
            s->marking = 1;
            dl_iterate_phdr(swm_snapshot_module, s);
            // Only a dlclose that unloaded something (not one that dropped a
            // reference) makes the learned rules stale.
            if (s->unloads != before) {
                swm_log_unloaded(s);
                swm_code_unloaded();
            }
        } else {
            swm_code_unloaded();
        }
    }
    if (s != NULL) munmap(s, sizeof *s);
    return r;
}

int swm_is_self_frame(uintptr_t a) { return a >= swm_self_start && a < swm_self_end; }

// Forks and libunwind. While libunwind looks up a frame it holds its own cache lock
// and the loader's dl_iterate_phdr lock, and glibc resets neither in a forked child:
// a child forked while another thread was inside libunwind would hang at its first
// capture. So a fork waits for the threads inside libunwind to leave (captures that
// start meanwhile walk frame pointers instead), and a child forked while one was
// still inside after the wait never enters libunwind.
static int swm_unwinders_inside;    // threads inside libunwind now
static int swm_unwind_fork_pending; // a fork is waiting for them
static int swm_unwind_forbidden;    // this process was forked while one was inside

int swm_unwind_enter(void) {
    if (__atomic_load_n(&swm_unwind_forbidden, __ATOMIC_RELAXED)) return 0;
    // Sequentially consistent on both sides: either this thread sees the pending
    // fork, or the fork sees this thread inside.
    __atomic_fetch_add(&swm_unwinders_inside, 1, __ATOMIC_SEQ_CST);
    // The pipe's check takes a lock: only inside, so that a fork waits for it
    // rather than leave the child that lock held.
    if (__atomic_load_n(&swm_unwind_fork_pending, __ATOMIC_SEQ_CST) || !swm_unwinder_pipe_ok()) {
        __atomic_fetch_sub(&swm_unwinders_inside, 1, __ATOMIC_SEQ_CST);
        return 0;
    }
    return 1;
}

void swm_unwind_leave(void) { __atomic_fetch_sub(&swm_unwinders_inside, 1, __ATOMIC_SEQ_CST); }

void swm_unwind_fork_prepare(void) {
    __atomic_store_n(&swm_unwind_fork_pending, 1, __ATOMIC_SEQ_CST);
    // At most about two seconds: a thread may be stuck inside for reasons of its own.
    int cancel = swm_cancel_off();
    for (int i = 0; i < 2000 && __atomic_load_n(&swm_unwinders_inside, __ATOMIC_SEQ_CST) != 0; i++) {
        struct timespec t = {0, 1000 * 1000};
        nanosleep(&t, NULL);
    }
    swm_cancel_restore(cancel);
}

void swm_unwind_fork_parent(void) { __atomic_store_n(&swm_unwind_fork_pending, 0, __ATOMIC_SEQ_CST); }

void swm_unwind_fork_child(void) {
    swm_lock_reset(&swm_unloaded_lock);
    swm_code_fork_child();
    if (__atomic_load_n(&swm_unwinders_inside, __ATOMIC_RELAXED) != 0) swm_unwind_forbidden = 1;
    swm_unwinders_inside = 0;
    swm_unwind_fork_pending = 0;
}

// The frame-pointer walk's code ranges: the executable segments of the loaded
// objects, sorted by address. A function built without frame pointers may keep
// anything in rbp, so the chain above it need not be frames: the walk stops at the
// first "return address" outside code instead of recording it, which would give
// every thread of such a program stacks of its own, ending in values from its
// stack. Two tables: a rebuild fills the one not in use and then publishes it. A
// lookup that misses rebuilds when the loader has added objects since
// (dlpi_adds), checked at the first miss after a dlopen call of the program's
// and otherwise at most every 100 ms, so code loaded later is found within that
// time (the loader's own loads, libc's NSS modules for one, pass no dlopen of ours).
enum { SWM_CODE_RANGES = 512 };
typedef struct { uintptr_t start, end; } swm_code_range;
static swm_code_range swm_code[2][SWM_CODE_RANGES];
static int swm_code_count[2];
static int swm_code_current;           // the table lookups read (0 or 1)
static unsigned long long swm_code_adds;
static uint64_t swm_code_checked_at;   // swm_now_ns of the last check for new objects
static unsigned long swm_code_dlopens_seen;   // swm_dlopen_calls at the last check
extern unsigned long swm_dlopen_calls;
static int32_t swm_code_lock;
/// Set in a forked child: another thread of the parent may have held the loader's
/// lock that dl_iterate_phdr takes, so the child keeps the table it inherited.
static int swm_code_frozen;

typedef struct { swm_code_range *table; int count; unsigned long long adds; } swm_code_build;

/// The loader's count of objects added so far, or `fallback` where glibc's
/// dl_phdr_info is too old to have it.
static unsigned long long swm_adds_of(const struct dl_phdr_info *info, size_t size, unsigned long long fallback) {
    return size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof info->dlpi_adds ? info->dlpi_adds : fallback;
}

static int swm_collect_code(struct dl_phdr_info *info, size_t size, void *arg) {
    swm_code_build *b = arg;
    b->adds = swm_adds_of(info, size, b->adds);
    for (int i = 0; i < info->dlpi_phnum && b->count < SWM_CODE_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        // Insertion keeps the table sorted (a few hundred segments at most).
        int j = b->count++;
        while (j > 0 && b->table[j - 1].start > start) { b->table[j] = b->table[j - 1]; j--; }
        b->table[j] = (swm_code_range){start, start + ph->p_memsz};
    }
    return 0;
}

static int swm_read_adds(struct dl_phdr_info *info, size_t size, void *arg) {
    unsigned long long *adds = arg;
    *adds = swm_adds_of(info, size, *adds);
    return 1;   // the first object has the counts
}

/// Rebuilds the code table unless another thread is doing it.
static void swm_code_rebuild(void) {
    if (!swm_trylock(&swm_code_lock)) return;
    int next = 1 - __atomic_load_n(&swm_code_current, __ATOMIC_RELAXED);
    swm_code_build b = {swm_code[next], 0, 0};
    dl_iterate_phdr(swm_collect_code, &b);
    swm_code_count[next] = b.count;
    swm_code_adds = b.adds;
    __atomic_store_n(&swm_code_current, next, __ATOMIC_RELEASE);
    swm_unlock(&swm_code_lock);
}

static void swm_code_fork_child(void) {
    swm_lock_reset(&swm_code_lock);
    swm_code_frozen = 1;
}

static int swm_code_find(uintptr_t a) {
    int t = __atomic_load_n(&swm_code_current, __ATOMIC_ACQUIRE);
    const swm_code_range *r = swm_code[t];
    int lo = 0, hi = swm_code_count[t];
    if (hi > SWM_CODE_RANGES) hi = SWM_CODE_RANGES;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (a < r[mid].start) hi = mid;
        else if (a >= r[mid].end) lo = mid + 1;
        else return 1;
    }
    return 0;
}

/// Whether `a` lies in the code of a loaded object.
static int swm_is_code(uintptr_t a) {
    if (swm_code_find(a)) return 1;
    if (swm_code_frozen) return 0;
    uint64_t now = swm_now_ns();
    unsigned long dlopens = __atomic_load_n(&swm_dlopen_calls, __ATOMIC_RELAXED);
    if (dlopens == __atomic_load_n(&swm_code_dlopens_seen, __ATOMIC_RELAXED) &&
        now - __atomic_load_n(&swm_code_checked_at, __ATOMIC_RELAXED) < 100000000ull)
        return 0;
    __atomic_store_n(&swm_code_dlopens_seen, dlopens, __ATOMIC_RELAXED);
    __atomic_store_n(&swm_code_checked_at, now, __ATOMIC_RELAXED);
    unsigned long long adds = swm_code_adds;
    dl_iterate_phdr(swm_read_adds, &adds);
    if (adds == swm_code_adds) return 0;
    swm_code_rebuild();
    return swm_code_find(a);
}

/// Frame-pointer walk, for when libunwind is missing or SWIFTMALLOC_PROFILE_WALK=fp
/// asks for it. Reads only inside the calling thread's stack: below its thread
/// pointer, which glibc places above a thread's stack, or for the main thread
/// (whose thread pointer lies below its stack) below its environment array
/// (swm_main_stack_top; without it, as far as the chain goes up in steps under
/// 1 MiB). Stops at a return address outside code, or when the chain does not go
/// up the stack; except the first one above the library's frames, read from a
/// frame of the library's own, which is the program's call into it and is kept
/// wherever it lies (code generated at run time, or a library loaded since the
/// code table was last rebuilt).
static int swm_fp_walk(uintptr_t *frames, int max) {
    uintptr_t *fp = (uintptr_t *)__builtin_frame_address(0);
    uintptr_t top = swm_stack_top_for((uintptr_t)fp);
    if (top == 0) top = UINTPTR_MAX;
    int n = 0;
    while (fp != NULL && n < max && (uintptr_t)(fp + 2) <= top) {
        uintptr_t *next = (uintptr_t *)fp[0];
        uintptr_t ret = fp[1];
        if (ret == 0) break;
        int called_us = n == 0 || swm_is_self_frame(frames[n - 1]);
        if (!swm_is_code(ret) && !called_us) break;
        frames[n++] = ret;
        if (next <= fp || (uintptr_t)next - (uintptr_t)fp > (1u << 20) || ((uintptr_t)next & 7)) break;
        fp = next;
    }
    return n;
}

static int swm_backtrace_walk(uintptr_t *frames, int max);

/// The calling thread's stack (see swm_backtrace_walk). errno is left as it was:
/// libunwind's checks of the addresses it reads (a write to a pipe, a system
/// call) can fail and set it, inside an allocation that succeeds; and no
/// cancellation acts inside them (see swm_cancel_off).
int swm_backtrace(uintptr_t *frames, int max) {
    int saved = errno;
    int cancel = swm_cancel_off();   // libunwind's address checks use a pipe
    int n = swm_backtrace_walk(frames, max);
    swm_cancel_restore(cancel);
    errno = saved;
    return n;
}

static int swm_backtrace_walk(uintptr_t *frames, int max) {
    if (!__atomic_load_n(&swm_unwinder_ready, __ATOMIC_ACQUIRE)) return 0;
    // unw_backtrace keeps a per-thread cache of frame shapes by address that no
    // flush reaches: once code was unloaded, walk with the cursor API instead.
    if (__atomic_load_n(&swm_code_was_unloaded, __ATOMIC_RELAXED)) {
        int k = swm_walk_learn(frames, max);
        if (k >= 0) return k;
    }
    enum { scratch_max = 160 };
    uintptr_t scratch[scratch_max];
    // Room for this library's own frames (about six) above the caller's.
    int want = max + 8 < scratch_max ? max + 8 : scratch_max;
    int n;
    if (swm_unw_backtrace != NULL && swm_unwind_enter()) {
        n = swm_unw_backtrace((void **)scratch, want);
        swm_unwind_leave();
    } else {
        n = swm_fp_walk(scratch, want);
    }
    int i = 0, out = 0;
    while (i < n && swm_is_self_frame(scratch[i])) i++;
    while (i < n && out < max) frames[out++] = scratch[i++];
    return out;
}

// Full profiling: `malloc`, `calloc` and `realloc` enter here (swm_select_entries)
// and capture the caller's stack into the thread cache's frame scratch before the
// allocator's own frames are on the stack. malloc hands the frames to
// swm_malloc_captured; calloc and realloc leave their count in
// swm_tls_pending_frames for Profiler.capture to take, and clear it on the way
// out, so frames never outlive the call that captured them. The capture replays the frame rules learned
// from libunwind (stackwalk.c) and walks with libunwind itself when a rule is
// missing; SWIFTMALLOC_PROFILE_WALK=libunwind makes every capture a libunwind walk,
// =check compares every cached walk with libunwind's, and =fp walks frame pointers
// without loading libunwind (as when it is missing).
static long swm_profile_frames_offset;
static int swm_profile_depth;
extern void *swiftmalloc_malloc(size_t);
extern void *swm_malloc_captured(size_t, void *, int, uint64_t);
extern void *swiftmalloc_calloc(size_t, size_t);
extern void *swiftmalloc_realloc(void *, size_t);

// SWIFTMALLOC_PROFILE_WALK=check: every stack the cached walker returns is walked
// again with libunwind and compared; the counts are printed at exit.
static unsigned long swm_walk_checked, swm_walk_differed;

static void swm_walk_check(const uintptr_t *frames, int k) {
    uintptr_t reference[64];
    int r = swm_backtrace(reference, swm_profile_depth < 64 ? swm_profile_depth : 64);
    int same = r == k;
    for (int i = 0; same && i < k; i++) same = reference[i] == frames[i];
    __atomic_fetch_add(&swm_walk_checked, 1, __ATOMIC_RELAXED);
    if (!same) __atomic_fetch_add(&swm_walk_differed, 1, __ATOMIC_RELAXED);
}

void swm_walk_check_report(int fd) {
    if (swm_profile_walk != SWM_WALK_CHECK || fd < 0) return;
    char line[160];
    int len = snprintf(line, sizeof line, "swiftmalloc: stack walk check: %lu cached walks compared with libunwind, %lu differed\n",
                       __atomic_load_n(&swm_walk_checked, __ATOMIC_RELAXED), __atomic_load_n(&swm_walk_differed, __ATOMIC_RELAXED));
    if (len > 0) (void)swm_write_fd(fd, line, (size_t)len);
}

/// The captures that are not a plain cached walk: checked walks, walks with
/// libunwind, and the cached walk's misses (libunwind then learns the stack's
/// rules). Frames go to `frames`; returns their count and hash.
static __attribute__((noinline)) int swm_capture_other(uintptr_t *frames, uintptr_t *fp, uintptr_t ret, uint64_t *hash) {
    int k = -1;
    if (swm_profile_walk == SWM_WALK_CHECK) {
        k = swm_walk_cached(frames, swm_profile_depth, ret, (uintptr_t)(fp + 2), fp[0], hash);
        if (k >= 0) {
            swm_walk_check(frames, k);
            return k;
        }
    }
    if (swm_profile_walk == SWM_WALK_CACHED || swm_profile_walk == SWM_WALK_CHECK)
        k = swm_walk_learn(frames, swm_profile_depth);
    if (k < 0) k = swm_backtrace(frames, swm_profile_depth);
    swm_walk_memo_forget(frames, k);
    *hash = swm_hash_frames(frames, k);
    return k;
}

/// Whether the calling thread can capture now: it has a cache (whose frame scratch
/// takes the frames), it is not inside a capture already, and the unwinder is set up.
static __attribute__((always_inline)) inline int swm_can_capture(const char *tc) {
    return tc != swm_empty_cache && !swm_tls_capturing && __atomic_load_n(&swm_unwinder_ready, __ATOMIC_ACQUIRE);
}

/// Captures the stack of the caller of the allocation entry whose frame is `fp`
/// and whose return address is `ret` into cache `tc`'s frame scratch (its walk
/// memo's address array); returns the frame count and their hash in *hash.
static __attribute__((always_inline)) inline int swm_capture_into(char *tc, uintptr_t *fp, uintptr_t ret, uint64_t *hash) {
    swm_tls_capturing = 1;
    uintptr_t *frames = (uintptr_t *)(tc + swm_profile_frames_offset);
    // The caller's state: its return address, its stack pointer after the call
    // returns (our CFA), and its frame pointer register (saved by our prologue).
    int k = swm_profile_walk == SWM_WALK_CACHED
        ? swm_walk_cached(frames, swm_profile_depth, ret, (uintptr_t)(fp + 2), fp[0], hash) : -1;
    if (__builtin_expect(k < 0, 0)) k = swm_capture_other(frames, fp, ret, hash);
    swm_tls_capturing = 0;
    return k;
}

/// calloc and realloc: the captured frames are left pending for Profiler.capture.
static __attribute__((always_inline)) inline void swm_capture_entry(uintptr_t *fp, uintptr_t ret) {
    char *tc = (char *)swm_tls_cache;
    if (!swm_can_capture(tc)) return;
    uint64_t hash;
    int k = swm_capture_into(tc, fp, ret, &hash);
    swm_tls_pending_hash = hash;
    swm_tls_pending_frames = k;
}

static void *swm_malloc_profiled(size_t n) {
    char *tc = (char *)swm_tls_cache;
    if (!swm_can_capture(tc)) return swiftmalloc_malloc(n);
    uint64_t hash;
    int k = swm_capture_into(tc, (uintptr_t *)__builtin_frame_address(0), (uintptr_t)__builtin_return_address(0), &hash);
    return swm_malloc_captured(n, tc, k, hash);
}

static void *swm_calloc_profiled(size_t count, size_t size) {
    swm_capture_entry((uintptr_t *)__builtin_frame_address(0), (uintptr_t)__builtin_return_address(0));
    void *p = swiftmalloc_calloc(count, size);
    swm_tls_pending_frames = 0;
    return p;
}

static void *swm_realloc_profiled(void *old, size_t n) {
    swm_capture_entry((uintptr_t *)__builtin_frame_address(0), (uintptr_t)__builtin_return_address(0));
    void *p = swiftmalloc_realloc(old, n);
    swm_tls_pending_frames = 0;
    return p;
}

void swm_set_capture(long frames_offset, int depth, int mode) {
    swm_profile_frames_offset = frames_offset;
    swm_profile_depth = depth;
    swm_profile_walk = mode;
}

void swm_use_profiled_malloc(void) {
    swm_select_entries((void *)swm_malloc_profiled, (void *)swm_calloc_profiled, (void *)swm_realloc_profiled);
}

extern void *swm_malloc_sampled_slow(size_t, void *);
static long swm_sample_countdown_offset = -1;

void swm_set_sample_countdown_offset(long offset) { swm_sample_countdown_offset = offset; }

void *swm_malloc_sampled_out(size_t n, void *tc);
__attribute__((noinline)) void *swm_malloc_sampled_out(size_t n, void *tc) {
    uintptr_t ret = (uintptr_t)__builtin_return_address(0);
    // Reached by a call rather than the fast path's jump, the return address is
    // the fast path's own; Profiler.capture then walks with libunwind.
    if (swm_profile_walk == SWM_WALK_LIBUNWIND || swm_sample_countdown_offset < 0 || !swm_can_capture((char *)tc) ||
        *(const intptr_t *)((const char *)tc + swm_sample_countdown_offset) >= 0 || swm_is_self_frame(ret))
        return swm_malloc_sampled_slow(n, tc);
    swm_capture_entry((uintptr_t *)__builtin_frame_address(0), ret);
    void *p = swm_malloc_sampled_slow(n, tc);
    swm_tls_pending_frames = 0;
    return p;
}

long swm_read_file(const char *path, char *buf, long cap) {
    int cancel = swm_cancel_off();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    long total = fd < 0 ? -1 : 0;
    while (fd >= 0 && total < cap) {
        ssize_t r = read(fd, buf + total, (size_t)(cap - total));
        if (r < 0) { if (errno == EINTR) continue; break; }
        if (r == 0) break;
        total += r;
    }
    if (fd >= 0) close(fd);
    swm_cancel_restore(cancel);
    return total;
}

long swm_count_lines(const char *path) {
    int cancel = swm_cancel_off();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char buf[4096];
    long lines = fd < 0 ? -1 : 0;
    while (fd >= 0) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0) { if (errno == EINTR) continue; lines = -1; break; }
        if (r == 0) break;
        for (ssize_t i = 0; i < r; i++) lines += buf[i] == '\n';
    }
    if (fd >= 0) close(fd);
    swm_cancel_restore(cancel);
    return lines;
}
