// The library's helper threads (the background purger, Purger.swift, and the
// interval reporter, IntervalReport.swift), and the calls they must stay out of.
//
// The kernel lets only a single-threaded process enter a user namespace (unshare
// or setns with CLONE_NEWUSER, and unshare with CLONE_THREAD, CLONE_SIGHAND or
// CLONE_VM), and only a process that shares its filesystem attributes with no
// other thread join a mount namespace. A program that is single-threaded by its
// own count would fail those calls with EINVAL because of a helper, so the
// library exports `unshare` and `setns`: around such a call it pauses its helpers
// and waits for them to be gone, then lets them start again.
//
// Protocol: `swm_helpers_paused` counts the callers inside a pause (a futex word:
// a helper naps on it, so a pause wakes it at once); `swm_helpers_live` counts the
// helper threads from before their creation to the end of their main function. A
// starter increments live, then reads paused; a pause increments paused, then reads
// live (both sequentially consistent), so either the starter backs out or the pause
// sees the thread and waits for it. A helper that finds paused non-zero after a nap
// leaves its loop (and marks itself wanted, so the next allocation slow path starts
// it again). The kernel removes an exiting thread a moment after it decrements
// live, so a call that fails with EINVAL after a pause that waited for a helper is
// retried until the kernel's thread count has fallen by the helpers waited for.
#define _GNU_SOURCE
#include "SwiftMallocShims.h"
#include <sched.h>
#include <signal.h>
#include <limits.h>
#include <sys/stat.h>

static int32_t swm_helpers_paused;
static int32_t swm_helpers_live;

extern void swm_purger_main(void);
extern void swm_reporter_main(void);

static void *swm_purger_start(void *arg) {
    (void)arg;
    swm_purger_main();
    __atomic_sub_fetch(&swm_helpers_live, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *swm_reporter_start(void *arg) {
    (void)arg;
    swm_reporter_main();
    __atomic_sub_fetch(&swm_helpers_live, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/// A detached thread of the library's own, with every signal blocked: 0 when
/// started, 1 when a pause is in progress (try again later), else an error.
static int swm_start_helper(void *(*start)(void *), const char *name) {
    __atomic_add_fetch(&swm_helpers_live, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&swm_helpers_paused, __ATOMIC_SEQ_CST) != 0) {
        __atomic_sub_fetch(&swm_helpers_live, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    // What glibc allocates for the thread (its TLS, the attribute's signal mask) is
    // the library's own: the profiler counts it at its own site, never at the
    // program's call that happened to start the thread, and never samples it.
    int capturing = swm_capturing_get();
    swm_capturing_set(1);
    pthread_attr_t attr;
    sigset_t all;
    pthread_t thread;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        sigfillset(&all);
        pthread_attr_setsigmask_np(&attr, &all);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        // A small stack: the threads' frames are small, and a default 8 MiB stack is
        // placed by the kernel right below the lowest mapping, usually the page heap,
        // where it would stop the heap from growing downwards (PageHeap.growDownwards).
        // glibc puts the program's static TLS on the stack too, so a program with a
        // large one gets the default size instead.
        pthread_attr_setstacksize(&attr, 256 << 10);
        rc = pthread_create(&thread, &attr, start, NULL);
        if (rc == EINVAL) {
            pthread_attr_setstacksize(&attr, 8 << 20);
            rc = pthread_create(&thread, &attr, start, NULL);
        }
        pthread_attr_destroy(&attr);
        if (rc == 0) pthread_setname_np(thread, name);
    }
    swm_capturing_set(capturing);
    if (rc != 0) {
        __atomic_sub_fetch(&swm_helpers_live, 1, __ATOMIC_SEQ_CST);
        if (rc == 1) rc = EAGAIN;
    }
    return rc;
}

int swm_start_purger(void) { return swm_start_helper(swm_purger_start, "swiftmalloc"); }
int swm_start_reporter(void) { return swm_start_helper(swm_reporter_start, "swiftmalloc-rep"); }

int swm_helper_nap(uint64_t nanoseconds) {
    swm_futex_wait(&swm_helpers_paused, 0, nanoseconds);
    return __atomic_load_n(&swm_helpers_paused, __ATOMIC_SEQ_CST) != 0;
}

static void swm_pause_sleep(void) {
    int cancel = swm_cancel_off();
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
    swm_cancel_restore(cancel);
}

/// The process's threads as the kernel counts them (a /proc/PID/task directory
/// has a link for each), or -1.
static int swm_thread_count(void) {
    struct stat st;
    return stat("/proc/self/task", &st) == 0 ? (int)st.st_nlink - 2 : -1;
}

/// Stops the helpers and waits (at most about 5 s) until none is left in its main
/// function; returns how many threads the process will have once they are gone
/// (0 when no helper had to be waited for, -1 when that cannot be counted).
static int swm_helpers_pause(void) {
    __atomic_add_fetch(&swm_helpers_paused, 1, __ATOMIC_SEQ_CST);
    int helpers = __atomic_load_n(&swm_helpers_live, __ATOMIC_SEQ_CST);
    int threads = helpers != 0 ? swm_thread_count() : 0;
    syscall(SYS_futex, &swm_helpers_paused, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    for (int i = 0; i < 50000 && __atomic_load_n(&swm_helpers_live, __ATOMIC_SEQ_CST) != 0; i++) swm_pause_sleep();
    if (helpers == 0) return 0;
    return threads > helpers ? threads - helpers : -1;
}

static void swm_helpers_resume(void) {
    __atomic_sub_fetch(&swm_helpers_paused, 1, __ATOMIC_SEQ_CST);
}

void swm_helpers_fork_child(void) {
    // Only the forking thread exists in the child, and it is not inside a pause.
    swm_helpers_paused = 0;
    swm_helpers_live = 0;
}

/// Calls `call(a, b)` with the helpers paused. A call that fails with EINVAL
/// after a pause that waited for a helper is retried (for at most about 2 s) while
/// the process has more threads than it will have once the helper is gone, and
/// once more when it has no more: the helper may have gone between the call and
/// the count.
static int swm_call_paused(int (*call)(int, int), int a, int b) {
    int expected = swm_helpers_pause();
    int rc = call(a, b);
    for (int i = 0; rc != 0 && errno == EINVAL && expected != 0 && i < 20000; i++) {
        int threads = swm_thread_count();
        int gone = threads >= 0 && expected > 0 && threads <= expected;
        if (threads < 0 && i >= 2000) break;
        if (!gone) swm_pause_sleep();
        rc = call(a, b);
        if (gone) break;
    }
    int saved = errno;
    swm_helpers_resume();
    errno = saved;
    return rc;
}

typedef int (*swm_unshare_fn)(int);
typedef int (*swm_setns_fn)(int, int);
static swm_unshare_fn swm_next_unshare;
static swm_setns_fn swm_next_setns;

static int swm_unshare_call(int flags, int unused) {
    (void)unused;
    return swm_next_unshare(flags);
}

static int swm_setns_call(int fd, int nstype) { return swm_next_setns(fd, nstype); }

int unshare(int flags) {
    if (swm_next_definition((void **)&swm_next_unshare, "unshare") == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!(flags & (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM))) return swm_next_unshare(flags);
    return swm_call_paused(swm_unshare_call, flags, 0);
}

int setns(int fd, int nstype) {
    if (swm_next_definition((void **)&swm_next_setns, "setns") == NULL) {
        errno = ENOSYS;
        return -1;
    }
    // nstype 0 admits any kind of namespace (and a pidfd carries its own flags).
    if (nstype != 0 && !(nstype & (CLONE_NEWUSER | CLONE_NEWNS))) return swm_next_setns(fd, nstype);
    return swm_call_paused(swm_setns_call, fd, nstype);
}
