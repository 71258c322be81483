/* larson: a server simulation after Larson & Krishnan's benchmark.
 *
 * THREADS threads (default 4) each own an array of SLOTS blocks (16..1024 B).
 * A thread repeatedly picks a random slot and replaces its block with a new
 * one of random size. One old block in 16 is not freed by its owner but
 * passed to the next thread (batched through a locked mailbox), which frees
 * it: cross-thread frees. The work runs in ROUNDS; at the end of each round
 * every thread exits and a fresh set of threads takes over the arrays, shifted
 * by one, so blocks allocated by dead threads are freed by new ones (as when a
 * server's connection threads come and go).
 */
#include "common.h"

#define SLOTS 8000
#define MINSZ 16
#define MAXSZ 1024
#define BATCH 32
#define ROUNDS 5

typedef struct {
    void *ptr[SLOTS];
    uint32_t sz[SLOTS];
} arr_t;

/* A passed block carries its link in word 0 and its size in word 1. */
typedef struct mail {
    struct mail *next;
    size_t size;
} mail_t;

typedef struct {
    pthread_mutex_t lock;
    mail_t *head;
    char pad[64];
} mailbox_t;

static int nthreads;
static long ops_per_thread_round;
static arr_t *arrays;
static mailbox_t *boxes;

typedef struct {
    int id;     /* thread index within the round: its mailbox */
    int array;  /* the array it works on, and its accounting slot */
    uint64_t seed;
} targ_t;

/* Accounting: a passed block leaves its sender's count when it is posted, so
 * the few blocks sitting in mailboxes are not counted (every slot stays near
 * its array's size, which keeps the sampled sum honest). */
static long drain(int id) {
    pthread_mutex_lock(&boxes[id].lock);
    mail_t *m = boxes[id].head;
    boxes[id].head = NULL;
    pthread_mutex_unlock(&boxes[id].lock);
    long n = 0;
    while (m) {
        mail_t *next = m->next;
        free(m);
        m = next;
        n++;
    }
    return n;
}

static void post(int to, mail_t *head, mail_t *tail) {
    pthread_mutex_lock(&boxes[to].lock);
    tail->next = boxes[to].head;
    boxes[to].head = head;
    pthread_mutex_unlock(&boxes[to].lock);
}

static void *worker(void *vp) {
    targ_t *a = vp;
    arr_t *arr = &arrays[a->array];
    rng_t r;
    rng_seed(&r, a->seed);
    int to = (a->id + 1) % nthreads;
    mail_t *bhead = NULL, *btail = NULL;
    int bcount = 0;
    int64_t bbytes = 0;
    for (long op = 0; op < ops_per_thread_round; op++) {
        int i = (int)(rng_next(&r) % SLOTS);
        void *old = arr->ptr[i];
        size_t oldsz = arr->sz[i];
        if (nthreads > 1 && (rng_next(&r) & 15) == 0) {
            mail_t *m = old;
            m->size = oldsz;
            m->next = bhead;
            bhead = m;
            if (!btail) btail = m;
            bbytes += (int64_t)oldsz;
            if (++bcount == BATCH) {
                post(to, bhead, btail);
                req_mt_add(a->array, -bbytes);
                bhead = btail = NULL;
                bcount = 0;
                bbytes = 0;
            }
        } else {
            free(old);
            req_mt_add(a->array, -(int64_t)oldsz);
        }
        size_t n = rng_range(&r, MINSZ, MAXSZ);
        char *p = malloc(n);
        p[0] = (char)op;
        p[n - 1] = (char)n;
        arr->ptr[i] = p;
        arr->sz[i] = (uint32_t)n;
        req_mt_add(a->array, (int64_t)n);
        if ((op & 63) == 0) drain(a->id);
        if ((op % REQ_SAMPLE) == 0) req_mt_sample();
    }
    if (bhead) {
        post(to, bhead, btail);
        req_mt_add(a->array, -bbytes);
    }
    return NULL;
}

int main(int argc, char **argv) {
    double scale = arg_scale(argc, argv);
    nthreads = arg_threads(argc, argv, 4);
    /* the total work is fixed; it is divided among the threads */
    long total = scaled(scale, 16000000, 20000);
    ops_per_thread_round = total / ROUNDS / nthreads;
    if (ops_per_thread_round < 1) ops_per_thread_round = 1;
    req_mt_init(nthreads);

    arrays = xmalloc(sizeof(arr_t) * nthreads);
    boxes = xmalloc(sizeof(mailbox_t) * nthreads);
    rng_t r;
    rng_seed(&r, 7);
    for (int t = 0; t < nthreads; t++) {
        pthread_mutex_init(&boxes[t].lock, NULL);
        boxes[t].head = NULL;
        for (int i = 0; i < SLOTS; i++) {
            size_t n = rng_range(&r, MINSZ, MAXSZ);
            arrays[t].ptr[i] = xmalloc(n);
            memset(arrays[t].ptr[i], 0, 16);
            arrays[t].sz[i] = (uint32_t)n;
            req_mt_add(t, (int64_t)n);
        }
    }
    req_mt_sample();

    pthread_t *th = xmalloc(sizeof(pthread_t) * nthreads);
    targ_t *args = xmalloc(sizeof(targ_t) * nthreads);
    for (int round = 0; round < ROUNDS; round++) {
        for (int t = 0; t < nthreads; t++) {
            args[t].id = t;
            args[t].array = (t + round) % nthreads;
            args[t].seed = 1000u * (uint64_t)round + (uint64_t)t + 1;
            pthread_create(&th[t], NULL, worker, &args[t]);
        }
        for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
    }
    req_mt_sample();
    for (int t = 0; t < nthreads; t++) drain(t);
    for (int t = 0; t < nthreads; t++)
        for (int i = 0; i < SLOTS; i++) free(arrays[t].ptr[i]);

    printf("threads=%d\n", nthreads);
    printf("ops=%ld\n", ops_per_thread_round * ROUNDS * nthreads);
    printf("requested_bytes_peak=%lld\n", (long long)atomic_load(&req_mt_peak));
    printf("rss_end_kib=%ld\n", proc_status_kib("VmRSS"));
    free(th);
    free(args);
    free(arrays);
    free(boxes);
    return 0;
}
