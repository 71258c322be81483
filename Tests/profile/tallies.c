/* tallies: full profiling's per-thread counts under cross-thread frees.
 *
 * Four threads allocate blocks in churn_block; a quarter of them go through a
 * shared mailbox and are freed by whichever thread drains it next, so a block's
 * allocation and its free are counted in different threads' tallies. Each thread
 * also keeps 25 blocks of 200 bytes from leak_from_worker. At the end the
 * mailbox is empty and every churned block freed; two threads are joined and two
 * are still waiting when the process exits. The profile at exit must show
 * leak_from_worker with exactly 20,000 bytes in 100 blocks and churn_block with
 * nothing live (a count merged twice, or never, shows there).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define STEPS 50000
#define MAILBOX 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static void *mailbox[MAILBOX];
static int mail_count;
static int finished;

__attribute__((noinline)) static void *churn_block(size_t n) {
    void *p = malloc(n);
    if (p == NULL) abort();
    memset(p, 3, n < 64 ? n : 64);
    return p;
}

__attribute__((noinline)) static void leak_from_worker(void **keep) {
    for (int i = 0; i < 25; i++) {
        keep[i] = malloc(200);
        if (keep[i] == NULL) abort();
        memset(keep[i], 4, 200);
    }
}

static void drain(void) {
    void *take[64];
    int n = 0;
    pthread_mutex_lock(&lock);
    while (mail_count > 0 && n < 64) take[n++] = mailbox[--mail_count];
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++) free(take[i]);
}

static void *worker(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    uint64_t x = 0x9E3779B97F4A7C15ull * (id + 1);
    void *mine = NULL;
    void *keep[25];
    leak_from_worker(keep);
    for (int s = 0; s < STEPS; s++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        void *p = churn_block(16 + (size_t)(x % 2000));
        if ((x >> 20) % 4 == 0) {
            pthread_mutex_lock(&lock);
            if (mail_count < MAILBOX) { mailbox[mail_count++] = p; p = NULL; }
            pthread_mutex_unlock(&lock);
        }
        if (p != NULL) { free(mine); mine = p; }
        if (s % 16 == 0) drain();
    }
    free(mine);
    pthread_mutex_lock(&lock);
    finished++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    if (id >= 2) for (;;) pause();   /* still waiting at exit, its counts unmerged */
    return keep[0];
}

int main(void) {
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) abort();
    pthread_mutex_lock(&lock);
    while (finished < THREADS) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    for (;;) {
        pthread_mutex_lock(&lock);
        int left = mail_count;
        pthread_mutex_unlock(&lock);
        if (left == 0) break;
        drain();
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    exit(0);
}
