/* waiting: blocks held by a thread that is still waiting when the profile is
 * written, on request and at exit.
 *
 * A thread allocates 10 blocks of 1000 bytes in held_by_waiting_thread, then waits
 * for ever; main writes a profile with swiftmalloc_report_write (the path in
 * argv[1]) and exits while the thread still waits. Both profiles must count those
 * blocks exactly. main raises the heap's peak first (a 4 MiB block, freed, then
 * enough allocations that its own counts are merged), so the thread's blocks never
 * make a new peak: nothing but the report itself makes the thread's counts
 * visible to it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern int swiftmalloc_report_write(const char *path) __attribute__((weak));

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int ready;

__attribute__((noinline)) static void held_by_waiting_thread(void **out) {
    for (int i = 0; i < 10; i++) {
        out[i] = malloc(1000);
        if (out[i] == NULL) abort();
        memset(out[i], 1, 1000);
    }
}

static void *waiter(void *arg) {
    (void)arg;
    void *blocks[10];
    held_by_waiting_thread(blocks);
    pthread_mutex_lock(&lock);
    ready = 1;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
    for (;;) pause();
    return blocks[0];
}

int main(int argc, char **argv) {
    char *big = malloc(4 << 20);
    if (big == NULL) abort();
    memset(big, 2, 4 << 20);
    free(big);
    /* Enough events after the free that main's own counts are merged too. */
    for (int i = 0; i < 2000; i++) {
        void *p = malloc(16);
        if (p == NULL) abort();
        *(volatile char *)p = 0;
        free(p);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, waiter, NULL) != 0) abort();
    pthread_mutex_lock(&lock);
    while (!ready) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    if (argc > 1 && swiftmalloc_report_write != NULL && swiftmalloc_report_write(argv[1]) != 0) return 2;
    exit(0);
}
