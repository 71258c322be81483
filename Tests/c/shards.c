/*
 * shards.c — threads refill from their own row of central lists, and blocks freed
 * by another thread go back to the row that owns their span.
 *
 * The test runs itself twice: with SWIFTMALLOC_SHARDS=1 the main thread's first
 * 48-byte block and a second thread's come from the one partial span of their
 * class (same page); with SWIFTMALLOC_SHARDS=2 the second thread refills from the
 * other shard, whose first span is another page. In both runs four threads then
 * swap blocks through shared slots for a while — every block freed by a thread
 * other than the one that allocated it, every byte checked — and exit, so their
 * caches flush blocks of both shards.
 *
 * Skipped when malloc is not SwiftMalloc's.
 */
#define _GNU_SOURCE
#define TEST_NAME "shards"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define SLOTS 4096
#define ROUNDS 200000
#define WORKERS 4

static void *first_block;

static void *second_thread(void *arg)
{
    (void)arg;
    return malloc(48);
}

static _Atomic(uintptr_t) slots[SLOTS];

/* Each worker replaces random slots' blocks with its own; a block records its
 * size and seed in a header word and is pattern-filled after it. */
static void *worker(void *arg)
{
    rng_t r;
    rng_seed(&r, (uint64_t)(uintptr_t)arg);
    for (long i = 0; i < ROUNDS; i++) {
        size_t n = rng_range(&r, 16, 600);
        uint64_t seed = rng_next(&r) & 0xffffffffffffull; /* 48 bits: it shares the header word */
        uint64_t *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu) returned NULL", n);
        p[0] = (uint64_t)n | (seed << 16);
        pattern_fill(p + 1, n - 8, seed);
        uintptr_t old = atomic_exchange(&slots[rng_next(&r) % SLOTS], (uintptr_t)p);
        if (old != 0) {
            uint64_t *q = (uint64_t *)old;
            size_t m = (size_t)(q[0] & 0xffff);
            size_t bad = pattern_check(q + 1, m - 8, q[0] >> 16);
            CHECK(bad == (size_t)-1, "block %p of %zu bytes corrupted at byte %zu", (void *)q, m, bad);
            free(q);
        }
    }
    return NULL;
}

static int child(void)
{
    first_block = malloc(48);
    pthread_t t;
    void *second = NULL;
    CHECK(pthread_create(&t, NULL, second_thread, NULL) == 0, "pthread_create failed");
    pthread_join(t, &second);
    CHECK(first_block != NULL && second != NULL, "malloc(48) returned NULL");
    int same = ((uintptr_t)first_block >> 12) == ((uintptr_t)second >> 12);
    free(second); /* freed by the thread that did not allocate it */
    free(first_block);

    pthread_t w[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&w[i], NULL, worker, (void *)(i + 1)) == 0, "pthread_create failed");
    for (int i = 0; i < WORKERS; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < SLOTS; i++) {
        uint64_t *q = (uint64_t *)slots[i];
        if (q == NULL) continue;
        size_t m = (size_t)(q[0] & 0xffff);
        CHECK(pattern_check(q + 1, m - 8, q[0] >> 16) == (size_t)-1, "block %p corrupted", (void *)q);
        free(q);
    }
    printf("same-page=%d\n", same);
    return 0;
}

/* Runs this test as a child with SWIFTMALLOC_SHARDS=shards; returns whether the
 * two threads' first blocks shared a page (or -1 when the child failed). */
static int run(const char *self, const char *shards)
{
    int fd[2];
    CHECK(pipe(fd) == 0, "pipe failed");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        setenv("SWIFTMALLOC_SHARDS", shards, 1);
        execl(self, self, "child", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char buf[256] = {0};
    ssize_t got = 0, k;
    while ((k = read(fd[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += k;
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child with %s shards failed (status %d): %s", shards,
          status, buf);
    const char *s = strstr(buf, "same-page=");
    CHECK(s != NULL, "child with %s shards printed no result: %s", shards, buf);
    return s[10] == '1';
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child();
    if (!malloc_is_swiftmalloc()) {
        printf("%s: skipped (malloc is not SwiftMalloc's)\n", TEST_NAME);
        return 0;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0, "readlink /proc/self/exe failed");
    self[n] = 0;
    CHECK(run(self, "1") == 1, "with one shard, two threads' first 48-byte blocks are on different pages");
    CHECK(run(self, "2") == 0, "with two shards, two threads' first 48-byte blocks share a page");
    printf("%s: ok\n", TEST_NAME);
    return 0;
}
