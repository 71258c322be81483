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
 * caches flush blocks of both shards. Then twice more in hardened mode
 * (SWIFTMALLOC_CHECK=1), where threads have no caches: the second thread still
 * takes blocks from a row of its own when there are two (a thread without a
 * cache is dealt one), and from the same span when there is one.
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

/* Each worker replaces random slots' blocks with its own (testutil.h). */
static void *worker(void *arg)
{
    swap_tagged_blocks(slots, SLOTS, ROUNDS, (uint64_t)(uintptr_t)arg, 16, 600);
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
    free_tagged_slots(slots, SLOTS);
    printf("same-page=%d\n", same);
    return 0;
}

/* Runs this test as a child with SWIFTMALLOC_SHARDS=shards and, when `check`,
 * SWIFTMALLOC_CHECK=1; returns whether the two threads' first blocks shared a page. */
static int run(const char *shards, int check)
{
    char setting[64], buf[256];
    snprintf(setting, sizeof setting, "SWIFTMALLOC_SHARDS=%s", shards);
    char hardened[] = "SWIFTMALLOC_CHECK=1";
    char *env[] = {setting, check ? hardened : NULL, NULL};
    int status = run_self_child(env, 1, buf, sizeof buf);
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
    CHECK(run("1", 0) == 1, "with one shard, two threads' first 48-byte blocks are on different pages");
    CHECK(run("2", 0) == 0, "with two shards, two threads' first 48-byte blocks share a page");
    CHECK(run("1", 1) == 1, "hardened, with one shard, two threads' first 48-byte blocks are on different pages");
    CHECK(run("2", 1) == 0, "hardened, with two shards, two threads' first 48-byte blocks share a page");
    printf("%s: ok\n", TEST_NAME);
    return 0;
}
