/*
 * namespaces — a program that is single-threaded by its own count can enter a
 * user namespace (unshare, setns) while the library's background purger runs.
 *
 * The kernel refuses unshare(CLONE_NEWUSER) and setns into a user or mount
 * namespace to a process with another thread. The test makes the purger start
 * (frees leave dirty pages, then a large allocation takes the slow path), checks
 * that the process has two threads, then:
 *   1. setns into its own mount namespace (root only: CAP_SYS_ADMIN);
 *   2. unshare(CLONE_NEWUSER | CLONE_NEWNS), which must succeed;
 *   3. makes the purger wanted again and checks that it comes back (two threads);
 *   4. checks that errors still pass through: unshare with an unknown flag fails
 *      with EINVAL, and unshare(CLONE_NEWUSER) from a process with a thread of
 *      its own fails with EINVAL as it does under any allocator.
 * NAMESPACES_HELPERS=N says how many helper threads the library runs in this
 * mode (1, the purger; 2 with interval reports, which add the reporter).
 * Each step first runs in a forked child (single-threaded: helpers are not
 * copied), which tells whether this machine allows it at all; a step the
 * machine does not allow is skipped with a message.
 */
#define _GNU_SOURCE
#define TEST_NAME "namespaces"
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>

static int threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL, "cannot open /proc/self/status");
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

/* Leaves dirty pages behind, then takes an allocation slow path: the purger is
 * wanted and starts. Waits up to 2 s for the process to show `want` threads. */
static int start_purger(int want)
{
    enum { N = 2000 };
    static void *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = malloc(16384);
        CHECK(v[i] != NULL, "malloc(16384) failed");
        memset(v[i], i, 16384);
    }
    for (int i = 0; i < N; i++) free(v[i]);
    for (int tries = 0; tries < 200; tries++) {
        void *big = opaque_ptr(malloc(3u << 20));
        CHECK(big != NULL, "malloc(3 MiB) failed");
        free(big);
        if (threads_now() == want) return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Runs `step` in a forked child and returns its exit status (0: allowed). */
static int allowed_in_child(int (*step)(void))
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) _exit(step() == 0 ? 0 : 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int setns_own_mount(void)
{
    int fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = setns(fd, CLONE_NEWNS);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int unshare_user(void) { return unshare(CLONE_NEWUSER | CLONE_NEWNS); }

static void *parked(void *arg)
{
    int *go = arg;
    while (!__atomic_load_n(go, __ATOMIC_ACQUIRE)) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(void)
{
    const char *h = getenv("NAMESPACES_HELPERS");
    int with_helpers = 1 + (h != NULL ? atoi(h) : 1);
    if (!malloc_is_swiftmalloc()) {
        printf("%s: skipped (malloc is not SwiftMalloc's)\n", TEST_NAME);
        return 0;
    }
    const char *bg = getenv("SWIFTMALLOC_BACKGROUND");
    if (bg != NULL && strcmp(bg, "0") == 0) {
        printf("%s: skipped (SWIFTMALLOC_BACKGROUND=0: no purger)\n", TEST_NAME);
        return 0;
    }
    CHECK(threads_now() <= with_helpers, "the test starts with %d threads, expected at most %d", threads_now(), with_helpers);

    /* Errors pass through unchanged. */
    errno = 0;
    CHECK(unshare(CLONE_NEWUSER | 0x1 /* a CSIGNAL bit: no such flag */) == -1 && errno == EINVAL,
          "unshare with an unknown flag: expected EINVAL, got errno %d", errno);

    int user_ok = allowed_in_child(unshare_user);
    int mount_ok = allowed_in_child(setns_own_mount);
    if (!user_ok && !mount_ok) {
        printf("%s: skipped (this machine allows neither unshare(CLONE_NEWUSER) nor setns)\n", TEST_NAME);
        return 0;
    }

    CHECK(start_purger(with_helpers), "the purger did not start: %d threads", threads_now());
    if (mount_ok) {
        CHECK(setns_own_mount() == 0, "setns(mount) with the purger running failed: %s", strerror(errno));
        printf("%s: setns into a mount namespace with the purger running: ok\n", TEST_NAME);
        CHECK(start_purger(with_helpers), "the purger did not start again after setns: %d threads", threads_now());
    } else {
        printf("%s: setns skipped (not allowed here)\n", TEST_NAME);
    }
    if (user_ok) {
        CHECK(threads_now() == with_helpers, "the helpers are not running before unshare");
        CHECK(unshare_user() == 0, "unshare(CLONE_NEWUSER) with the purger running failed: %s", strerror(errno));
        printf("%s: unshare(CLONE_NEWUSER) with the purger running: ok\n", TEST_NAME);
        CHECK(start_purger(with_helpers), "the purger did not start again after unshare: %d threads", threads_now());

        /* With a thread of the program's own, the kernel's answer stands. */
        int go = 0;
        pthread_t t;
        CHECK(pthread_create(&t, NULL, parked, &go) == 0, "pthread_create failed");
        errno = 0;
        CHECK(unshare(CLONE_NEWUSER) == -1 && errno == EINVAL,
              "unshare(CLONE_NEWUSER) with a second program thread: expected EINVAL, got errno %d", errno);
        __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
        pthread_join(t, NULL);
    } else {
        printf("%s: unshare skipped (not allowed here)\n", TEST_NAME);
    }

    /* The heap still works after the pauses. */
    for (int i = 0; i < 1000; i++) {
        char *p = malloc((size_t)(i * 37 % 5000) + 1);
        CHECK(p != NULL, "malloc failed after the pauses");
        p[0] = (char)i;
        free(p);
    }
    printf("%s: passed\n", TEST_NAME);
    return 0;
}
