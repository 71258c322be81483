/*
 * fork.c — fork() while other threads are allocating and freeing.
 *
 * Worker threads churn through malloc/realloc/free without pause while the main
 * thread forks 50 times. Each child allocates, verifies and frees memory of all
 * size ranges (including from a new thread, and freeing blocks the parent
 * allocated before the fork), then leaves with _exit(0); one child leaves with
 * exit(0) so that atexit handlers and stdio flushing run too. A lock left held
 * across fork() shows up as a child that never finishes: an alarm turns any hang
 * into a failure.
 */
#define _GNU_SOURCE
#define TEST_NAME "fork"
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define NWORKERS 4
#define NFORKS 50
#define NKEEP 64

static atomic_int stop;
static atomic_long worker_rounds;

/* Blocks the parent keeps live across each fork; children check and free them. */
static unsigned char *kept[NKEEP];
static size_t kept_size[NKEEP];

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "fork: FAILED: timed out (a process is stuck, likely a lock held across fork)\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(3);
}

static size_t size_for(rng_t *r)
{
    uint64_t k = rng_next(r) % 100;
    if (k < 80)
        return rng_range(r, 1, 1024);
    if (k < 97)
        return rng_range(r, 1025, 65536);
    return rng_range(r, 65537, 1 << 20);
}

static void *worker(void *vp)
{
    int id = (int)(intptr_t)vp;
    rng_t r;
    rng_seed(&r, 50 + (uint64_t)id);
    enum { N = 256 };
    unsigned char *b[N] = { 0 };
    size_t sz[N] = { 0 };
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < 64; k++) {
            int i = (int)(rng_next(&r) % N);
            if (b[i]) {
                size_t bad = pattern_check(b[i], sz[i], (uint64_t)id << 32 | (uint64_t)i);
                CHECK(bad == (size_t)-1, "worker %d: block %d (%zu bytes) corrupted at %zu", id, i, sz[i], bad);
                if (rng_next(&r) & 1) {
                    free(b[i]);
                    b[i] = NULL;
                    continue;
                }
                size_t n = size_for(&r);
                unsigned char *q = realloc(b[i], n);
                CHECK(q != NULL, "worker %d: realloc(%zu) returned NULL", id, n);
                size_t keep = sz[i] < n ? sz[i] : n;
                CHECK(pattern_check(q, keep, (uint64_t)id << 32 | (uint64_t)i) == (size_t)-1,
                      "worker %d: realloc(%zu -> %zu) lost contents", id, sz[i], n);
                pattern_fill(q, n, (uint64_t)id << 32 | (uint64_t)i);
                b[i] = q;
                sz[i] = n;
            } else {
                sz[i] = size_for(&r);
                b[i] = malloc(sz[i]);
                CHECK(b[i] != NULL, "worker %d: malloc(%zu) returned NULL", id, sz[i]);
                pattern_fill(b[i], sz[i], (uint64_t)id << 32 | (uint64_t)i);
            }
        }
        atomic_fetch_add_explicit(&worker_rounds, 1, memory_order_relaxed);
    }
    for (int i = 0; i < N; i++)
        free(b[i]);
    return NULL;
}

/* Allocation work done inside a child; any mismatch fails the child. */
static void child_churn(uint64_t seed)
{
    rng_t r;
    rng_seed(&r, seed);
    enum { N = 200 };
    unsigned char *b[N];
    size_t sz[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            sz[i] = size_for(&r);
            b[i] = (i % 5 == 0) ? calloc(1, sz[i]) : malloc(sz[i]);
            CHECK(b[i] != NULL, "child: allocation of %zu bytes returned NULL", sz[i]);
            if (i % 5 == 0)
                for (size_t j = 0; j < sz[i]; j += 97)
                    CHECK(b[i][j] == 0, "child: calloc(1, %zu) byte %zu not zero", sz[i], j);
            pattern_fill(b[i], sz[i], seed + (uint64_t)i);
        }
        for (int i = 0; i < N; i++) {
            size_t bad = pattern_check(b[i], sz[i], seed + (uint64_t)i);
            CHECK(bad == (size_t)-1, "child: block %d (%zu bytes) corrupted at %zu", i, sz[i], bad);
            free(b[i]);
        }
    }
    void *big = malloc(8 << 20);
    CHECK(big != NULL, "child: malloc(8 MiB) returned NULL");
    memset(big, 0x5C, 8 << 20);
    free(big);
}

static void *child_thread(void *vp)
{
    child_churn((uint64_t)(uintptr_t)vp);
    return NULL;
}

static void run_child(int n)
{
    alarm(30);
    /* Blocks inherited from the parent are intact and can be freed here. */
    for (int i = 0; i < NKEEP; i++) {
        size_t bad = pattern_check(kept[i], kept_size[i], 9000 + (uint64_t)i);
        CHECK(bad == (size_t)-1, "child %d: inherited block %d (%zu bytes) corrupted at %zu", n, i, kept_size[i], bad);
        if (i & 1) {
            free(kept[i]);
            kept[i] = NULL;
        } else {
            unsigned char *q = realloc(kept[i], kept_size[i] * 2 + 1);
            CHECK(q != NULL, "child %d: realloc of an inherited block returned NULL", n);
            CHECK(pattern_check(q, kept_size[i], 9000 + (uint64_t)i) == (size_t)-1,
                  "child %d: realloc of an inherited block lost its contents", n);
            free(q);
        }
    }
    child_churn(100000 + (uint64_t)n * 1000);
    if (n % 5 == 0) {
        /* A thread in the child: the allocator's per-thread state must work
         * for threads created after fork() too. */
        pthread_t t;
        int rc = pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)(777 + n));
        CHECK(rc == 0, "child %d: pthread_create failed: %d", n, rc);
        child_churn(555 + (uint64_t)n);
        pthread_join(t, NULL);
    }
    if (n == NFORKS / 2) {
        /* This child ends with exit(): atexit handlers, stdio flushing and any
         * allocator teardown run. Leave an unflushed line in stdout. */
        char *s = malloc(64);
        CHECK(s != NULL, "child %d: malloc(64) returned NULL", n);
        snprintf(s, 64, "fork: child %d leaves with exit(0)\n", n);
        fputs(s, stdout);
        free(s);
        exit(0);
    }
    _exit(0);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(60);
    setvbuf(stdout, NULL, _IOFBF, 4096);

    rng_t r;
    rng_seed(&r, 31337);
    for (int i = 0; i < NKEEP; i++) {
        kept_size[i] = size_for(&r);
        kept[i] = malloc(kept_size[i]);
        CHECK(kept[i] != NULL, "malloc(%zu) returned NULL", kept_size[i]);
        pattern_fill(kept[i], kept_size[i], 9000 + (uint64_t)i);
    }

    pthread_t workers[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) {
        int rc = pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i);
        CHECK(rc == 0, "pthread_create failed: %d", rc);
    }

    int failures = 0;
    for (int n = 0; n < NFORKS; n++) {
        /* Let the workers run a little between forks so forks land at random
         * points inside malloc/free. */
        long start = atomic_load(&worker_rounds);
        for (int spin = 0; spin < 2000 && atomic_load(&worker_rounds) < start + 2; spin++)
            usleep(100);
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork #%d failed: %s", n, strerror(errno));
        if (pid == 0)
            run_child(n);
        int status = 0;
        pid_t w;
        do
            w = waitpid(pid, &status, 0);
        while (w < 0 && errno == EINTR);
        CHECK(w == pid, "waitpid failed: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failures++;
            if (WIFSIGNALED(status))
                fprintf(stderr, "fork: FAILED: child %d died of signal %d\n", n, WTERMSIG(status));
            else
                fprintf(stderr, "fork: FAILED: child %d exited with status %d\n", n, WEXITSTATUS(status));
        }
        /* The parent's kept blocks are untouched by what the child did. */
        for (int i = 0; i < NKEEP; i++) {
            size_t bad = pattern_check(kept[i], kept_size[i], 9000 + (uint64_t)i);
            CHECK(bad == (size_t)-1, "parent: kept block %d corrupted at %zu after child %d", i, bad, n);
        }
    }

    atomic_store(&stop, 1);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(workers[i], NULL);
    for (int i = 0; i < NKEEP; i++)
        free(kept[i]);
    alarm(0);
    CHECK(failures == 0, "%d of %d children failed", failures, NFORKS);
    printf("fork: %d forks while %d threads allocated (%ld worker rounds): all checks passed\n", NFORKS,
           NWORKERS, atomic_load(&worker_rounds));
    return 0;
}
