// Process-level glue the Swift core cannot express: the thread-local variables,
// the global root pointer, the thread-exit key, the load/exit hooks and fork handlers.
#include "SwiftMallocShims.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/auxv.h>

char swm_empty_cache[SWM_EMPTY_CACHE_BYTES] __attribute__((aligned(64), visibility("hidden")));
void *swm_page_root[SWM_PAGE_ROOT_ENTRIES] __attribute__((aligned(4096), visibility("hidden")));
void *swm_page_flat __attribute__((visibility("hidden"))) = NULL;
uintptr_t swm_page_window __attribute__((visibility("hidden"))) = 0;
static const char swm_page_zero_span[256] __attribute__((aligned(64)));
uintptr_t swm_page_entry_base __attribute__((visibility("hidden"))) = (uintptr_t)swm_page_zero_span;
__thread void *swm_tls_cache __attribute__((tls_model("initial-exec"))) = swm_empty_cache;
__thread int swm_tls_state __attribute__((tls_model("initial-exec"))) = 0;
__thread uint32_t swm_tls_shard __attribute__((tls_model("initial-exec"))) = 0;
void *swm_heap = NULL;

// Entry points implemented in Swift (hidden: see hide.c).
extern void swm_thread_exit(void *cache);
extern void swm_on_load(void);
extern void swm_on_exit(void);
extern void swm_fork_prepare(void);
extern void swm_fork_parent(void);
extern void swm_fork_child(void);

// ---- Environment before libc is initialised ----------------------------------
// The dynamic loader may call malloc before libc's constructor has set `environ`;
// then the variables are read once from /proc/self/environ into static storage.
// A program in secure-execution mode (set-user-ID or set-group-ID, or given
// capabilities by its file: AT_SECURE) reads none of them. Its environment comes
// from the user who started it, who could otherwise make it write a report or
// statistics, with its privileges, to any path (glibc ignores its own MALLOC_
// variables there for the same reason). Such a program runs with the defaults.
extern char **environ;
static char swm_env_buf[32768];
static size_t swm_env_len;
static int swm_env_loaded;

const char *swm_getenv(const char *name) {
    if (getauxval(AT_SECURE) != 0) return NULL;
    size_t n = strlen(name);
    if (environ != NULL) {
        for (char **e = environ; *e != NULL; e++)
            if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
        return NULL;
    }
    if (!swm_env_loaded) {
        swm_env_loaded = 1;
        long r = swm_read_file("/proc/self/environ", swm_env_buf, (long)sizeof swm_env_buf - 1);
        swm_env_len = r > 0 ? (size_t)r : 0;
    }
    for (size_t i = 0; i < swm_env_len; i += strlen(swm_env_buf + i) + 1)
        if (strncmp(swm_env_buf + i, name, n) == 0 && swm_env_buf[i + n] == '=') return swm_env_buf + i + n + 1;
    return NULL;
}

// ---- Thread exit ---------------------------------------------------------------
// Keys below PTHREAD_KEYS_MAX/32 live in glibc's static array, so creating the key
// early (from the first allocation) never allocates.
static pthread_key_t swm_key;
static void swm_key_destructor(void *cache) { swm_thread_exit(cache); }
int swm_thread_key_create(void) { return pthread_key_create(&swm_key, swm_key_destructor); }
void swm_thread_key_set(void *cache) { pthread_setspecific(swm_key, cache); }

// ---- Reports when the process ends with _exit --------------------------------------
// _exit runs no exit handlers, and programs end with it on purpose: dash (Debian's
// /bin/sh) always, Python's multiprocessing workers (os._exit), forked children
// that must not flush their parent's stdio. The library exports _exit and _Exit and
// writes the exit reports first. Not in a child that shares the parent's memory
// (vfork, posix_spawn: the child of a failed exec ends with _exit), which would
// write into the parent's heap: such a child has a pid of its own without having
// passed through fork's handlers, so only the process whose pid was taken at load
// or in fork's child handler writes. Not from a thread that holds an allocator lock
// (_exit called from a signal handler that interrupted the allocator).
static pid_t swm_report_pid;
static pid_t swm_exit_owner;
static void swm_note_report_pid(void) {
    swm_report_pid = getpid();
    swm_exit_owner = 0;  // in a child: its only thread is not exiting
}
typedef void (*swm_exit_fn)(int);
// Looked up in the constructor: a vfork child must not enter the loader.
static swm_exit_fn swm_next_exit;

void *swm_next_definition(void **slot, const char *name) {
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = dlsym(RTLD_NEXT, name);
        if (f != NULL) __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    }
    return f;
}

static int swm_final_reports_claim(void);
static void swm_exit_reports(void) {
    if (getpid() == swm_report_pid && swm_tls_locks == 0 && swm_final_reports_claim()) swm_on_exit();
}

__attribute__((noreturn)) static void swm_exit_now(int status) {
    swm_exit_fn next = swm_next_exit;
    if (next != NULL) next(status);
    for (;;) syscall(SYS_exit_group, status);
}

void _exit(int status) {
    swm_exit_reports();
    swm_exit_now(status);
}
void _Exit(int status) __attribute__((alias("_exit")));

// ---- exit() from several threads at once --------------------------------------
// glibc 2.36 lets a thread that calls exit() while another runs the exit
// handlers find none left and end the process at once, cutting off the reports the
// first thread is writing in the library's destructor. When the library has exit
// reports to write, a second thread's exit() waits (for the first to end the
// process), as later glibc releases do themselves. Not in a child that shares its
// parent's memory (vfork: its pid is not the report pid), nor from a thread inside
// the allocator (exit() from a signal handler that interrupted it: the first
// thread's reports may need the lock it holds), nor a second call from the thread
// already exiting (exit() from an exit handler, which glibc continues).
static int swm_exit_reports_wanted;
typedef void (*swm_exit_full_fn)(int);
static swm_exit_full_fn swm_next_exit_full;

void swm_exit_reports_want(void) { swm_exit_reports_wanted = 1; }

void exit(int status) {
    if (swm_exit_reports_wanted && swm_tls_locks == 0 && getpid() == swm_report_pid) {
        pid_t me = (pid_t)syscall(SYS_gettid), owner = 0;
        if (!__atomic_compare_exchange_n(&swm_exit_owner, &owner, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
            owner != me) {
            pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
            for (;;) pause();
        }
    }
    swm_exit_full_fn next = (swm_exit_full_fn)swm_next_definition((void **)&swm_next_exit_full, "exit");
    if (next != NULL) next(status);
    swm_exit_now(status);
}

// ---- Load, exit, fork ------------------------------------------------------------
static void swm_fork_child_done(void);
uintptr_t swm_main_stack_top __attribute__((visibility("hidden")));

// glibc passes constructors the program's arguments and environment; `envp` is
// the array the kernel put at the top of the main thread's stack (unless the
// library is loaded later, after the program replaced its environment).
__attribute__((constructor)) static void swm_constructor(int argc, char **argv, char **envp) {
    (void)argc, (void)argv;
    if ((uintptr_t)envp > (uintptr_t)__builtin_frame_address(0)) swm_main_stack_top = (uintptr_t)envp;
    swm_on_load();
    pthread_atfork(swm_fork_prepare, swm_fork_parent, swm_fork_child);
    swm_next_definition((void **)&swm_next_exit, "_exit");
    swm_next_definition((void **)&swm_next_exit_full, "exit");
    swm_note_report_pid();
    pthread_atfork(NULL, NULL, swm_fork_child_done);
}
/// At exit, unless a signal handler is writing the reports (and ending the process).
__attribute__((destructor)) static void swm_destructor(void) {
    if (swm_final_reports_claim()) swm_on_exit();
}

const char *swm_errno_name(int e) { return e != 0 ? strerrorname_np(e) : NULL; }

int swm_stream_write(void *stream, const void *buf, size_t len) {
    return fwrite(buf, 1, len, (FILE *)stream) == len ? 0 : -1;
}

// The exit reports' file: stderr's device and inode when it was duplicated.
static dev_t swm_report_dev;
static ino_t swm_report_ino;
static int swm_report_known;

int swm_dup_stderr(void) {
    int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
    if (fd < 0) fd = 2;
    struct stat st;
    swm_report_known = fstat(fd, &st) == 0;
    if (swm_report_known) {
        swm_report_dev = st.st_dev;
        swm_report_ino = st.st_ino;
    }
    return fd;
}

int swm_report_fd_intact(int fd) {
    struct stat st;
    return swm_report_known && fstat(fd, &st) == 0 && st.st_dev == swm_report_dev && st.st_ino == swm_report_ino;
}

// ---- Reports when a signal ends the process ---------------------------------------
// A program killed by a signal whose action is the default (Ctrl-C, kill, a closed
// pipe) never runs its exit handlers, so its profile and statistics would be lost.
// For those signals the library installs a handler at start-up (a program that
// installs its own replaces it) that writes the exit reports, with the profile's
// reason "signal", then restores the default action and raises the signal again,
// so the process ends as it would have. The reports take the allocator's locks: in
// a thread that holds one of them (swm_tls_locks) the handler only notes the
// signal (swm_tls_deferred_signal) and returns, and the thread writes the reports
// and raises the signal again as it releases its last lock (swm_locks_leave), a
// few instructions later.
__thread int swm_tls_locks __attribute__((tls_model("initial-exec")));
__thread volatile int swm_tls_deferred_signal __attribute__((tls_model("initial-exec")));
__thread volatile pid_t swm_tls_deferred_pid __attribute__((tls_model("initial-exec")));
extern void swm_on_signal(int sig);
static const int swm_ending_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
enum { SWM_ENDING_SIGNALS = sizeof swm_ending_signals / sizeof swm_ending_signals[0] };
static int swm_final_reports_claimed;

/// The final reports are written once: at exit or by the first ending signal,
/// whichever claims them first.
static int swm_final_reports_claim(void) {
    return __atomic_exchange_n(&swm_final_reports_claimed, 1, __ATOMIC_SEQ_CST) == 0;
}

// The report handler stays invisible to the program: `sigaction` and `signal` are
// interposed (exports.map) and, for a signal whose action is still the report
// handler, say the action is the default, which is what the program would have
// found without the library; any action the program sets replaces the handler.
// CPython, for one, installs its SIGINT handler (which raises KeyboardInterrupt)
// only where it finds the default action: with the report handler visible, a
// profiled Python program that got Ctrl-C ended without running its own cleanup.
// The calls go to glibc's __sigaction and bsd_signal (the functions behind
// sigaction and signal), so nothing is looked up with dlsym.
static volatile sig_atomic_t swm_signal_ours[NSIG];
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
extern sighandler_t bsd_signal(int, sighandler_t);

static int swm_signal_is_ours(int sig) { return sig > 0 && sig < NSIG && swm_signal_ours[sig]; }

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    int ours = swm_signal_is_ours(sig);
    int rc = __sigaction(sig, act, old);
    if (rc == 0 && ours) {
        if (old != NULL) {
            memset(old, 0, sizeof *old);
            old->sa_handler = SIG_DFL;
        }
        if (act != NULL) swm_signal_ours[sig] = 0;
    }
    return rc;
}

sighandler_t signal(int sig, sighandler_t handler) {
    int ours = swm_signal_is_ours(sig);
    sighandler_t previous = bsd_signal(sig, handler);
    if (previous != SIG_ERR && ours) {
        swm_signal_ours[sig] = 0;
        previous = SIG_DFL;
    }
    return previous;
}

static void swm_signal_report(int sig) {
    int saved = errno;
    if (swm_tls_locks != 0) {
        // Inside the allocator: later, as the thread leaves it.
        if (swm_tls_deferred_signal == 0) {
            swm_tls_deferred_pid = getpid();
            swm_tls_deferred_signal = sig;
        }
        errno = saved;
        return;
    }
    // Another thread is writing them: at exit (the process ends when it returns)
    // or for a signal (it ends the process when it is done).
    if (!swm_final_reports_claim()) {
        errno = saved;
        return;
    }
    swm_on_signal(sig);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    swm_signal_ours[sig] = 0;
    __sigaction(sig, &action, NULL);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, sig);
    pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
    raise(sig);
    errno = saved;
}

/// The signal the thread noted while it held a lock, now that it holds none: the
/// reports, then the signal again (which ends the process).
void swm_deferred_signal_deliver(void) {
    int sig = swm_tls_deferred_signal;
    swm_tls_deferred_signal = 0;
    if (sig != 0) swm_signal_report(sig);
}

/// The child's last fork handler: its pid for the reports, then a signal that
/// came while its first handler held the locks inherited from the fork (a parent
/// that kills a child it just forked, as multiprocessing's Pool.terminate does).
static void swm_fork_child_done(void) {
    swm_note_report_pid();
    if (swm_tls_locks == 0 && swm_tls_deferred_signal != 0) swm_deferred_signal_deliver();
}

void swm_install_signal_reports(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = swm_signal_report;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < SWM_ENDING_SIGNALS; i++) sigaddset(&action.sa_mask, swm_ending_signals[i]);
    for (int i = 0; i < SWM_ENDING_SIGNALS; i++) {
        struct sigaction old;
        int sig = swm_ending_signals[i];
        if (__sigaction(sig, NULL, &old) != 0) continue;
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
        swm_signal_ours[sig] = 1;
        if (__sigaction(sig, &action, NULL) != 0) swm_signal_ours[sig] = 0;
    }
}
