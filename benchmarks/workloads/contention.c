/* contention: many threads doing small malloc/free at once.
 *
 * THREADS threads (default 16) start together. Each keeps a window of 32 live
 * blocks of 8..256 B: it frees a random one and allocates a replacement, and
 * after every 8 replacements does one immediate malloc/free pair. The work
 * per thread is fixed (weak scaling): with more cores than threads the run
 * time should stay flat as the thread count grows; on 2 cores 16 threads
 * time-share, which stresses whatever the allocator shares between threads.
 */
#include "common.h"

#define WINDOW 32

static long ops_per_thread;
static pthread_barrier_t start;

static void *worker(void *vp) {
    int id = (int)(intptr_t)vp;
    rng_t r;
    rng_seed(&r, 500 + (uint64_t)id);
    void *w[WINDOW];
    size_t wsz[WINDOW];
    pthread_barrier_wait(&start);
    for (int i = 0; i < WINDOW; i++) {
        wsz[i] = rng_range(&r, 8, 256);
        w[i] = malloc(wsz[i]);
        memset(w[i], 0, 8);
        req_mt_add(id, (int64_t)wsz[i]);
    }
    for (long op = 0; op < ops_per_thread; op++) {
        int i = (int)(rng_next(&r) % WINDOW);
        free(w[i]);
        req_mt_add(id, -(int64_t)wsz[i]);
        wsz[i] = rng_range(&r, 8, 256);
        char *p = malloc(wsz[i]);
        p[0] = (char)op;
        p[wsz[i] - 1] = 1;
        w[i] = p;
        req_mt_add(id, (int64_t)wsz[i]);
        if ((op & 7) == 0) {
            char *q = malloc(wsz[i]);
            q[0] = 1;
            escape(q);
            free(q);
        }
        if ((op % (REQ_SAMPLE * 16)) == 0) req_mt_sample();
    }
    for (int i = 0; i < WINDOW; i++) {
        free(w[i]);
        req_mt_add(id, -(int64_t)wsz[i]);
    }
    return NULL;
}

int main(int argc, char **argv) {
    double scale = arg_scale(argc, argv);
    int threads = arg_threads(argc, argv, 16);
    ops_per_thread = scaled(scale, 4000000, 1000);
    req_mt_init(threads);
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    pthread_t *th = xmalloc(sizeof(pthread_t) * threads);
    for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    printf("threads=%d\n", threads);
    printf("ops=%ld\n", ops_per_thread * threads);
    printf("requested_bytes_peak=%lld\n", (long long)atomic_load(&req_mt_peak));
    printf("rss_end_kib=%ld\n", proc_status_kib("VmRSS"));
    free(th);
    return 0;
}
