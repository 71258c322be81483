/* prodcons: one thread allocates, another frees.
 *
 * Each producer allocates blocks of 16..512 B, writes them, and pushes them
 * into a single-producer/single-consumer ring of 65536 entries; its consumer
 * reads each block and frees it. Every block is freed by a thread other than
 * the one that allocated it, and the ring keeps up to 65536 blocks in flight.
 * THREADS (default 2) gives THREADS/2 producer/consumer pairs.
 */
#include "common.h"
#include <sched.h>

#define CAP (1u << 16)
#define PUBLISH 32 /* indices are published every PUBLISH items */

/* Accounting: the producer counts the bytes it produced, the consumer
 * publishes the bytes it freed; the producer samples produced − freed. The
 * consumer's count can only be stale, so a sample may exceed the true figure
 * by the few blocks freed in that instant, never fall below it. */
typedef struct {
    _Atomic uint64_t tail; /* written by the producer */
    char pad1[56];
    _Atomic uint64_t head; /* written by the consumer */
    _Atomic int64_t freed; /* bytes freed by the consumer */
    char pad2[48];
    void **ring;
    long items;
    int id;
} queue_t;

static void *producer(void *vp) {
    queue_t *q = vp;
    rng_t r;
    rng_seed(&r, 100 + (uint64_t)q->id);
    uint64_t tail = 0, head_seen = 0;
    int64_t produced = 0;
    for (long i = 0; i < q->items; i++) {
        while (tail - head_seen >= CAP) {
            atomic_store_explicit(&q->tail, tail, memory_order_release);
            head_seen = atomic_load_explicit(&q->head, memory_order_acquire);
            if (tail - head_seen >= CAP) sched_yield();
        }
        size_t n = rng_range(&r, 16, 512);
        uint64_t *p = malloc(n);
        p[0] = n;
        p[1] = (uint64_t)i;
        ((char *)p)[n - 1] = 1;
        produced += (int64_t)n;
        q->ring[tail % CAP] = p;
        tail++;
        if ((tail % PUBLISH) == 0) atomic_store_explicit(&q->tail, tail, memory_order_release);
        if ((i % REQ_SAMPLE) == 0) {
            atomic_store_explicit(&req_slots[q->id].cur,
                                  produced - atomic_load_explicit(&q->freed, memory_order_relaxed),
                                  memory_order_relaxed);
            req_mt_sample();
        }
    }
    atomic_store_explicit(&q->tail, tail, memory_order_release);
    return NULL;
}

static void *consumer(void *vp) {
    queue_t *q = vp;
    uint64_t head = 0, tail_seen = 0, check = 0;
    int64_t freed = 0;
    while (head < (uint64_t)q->items) {
        if (head == tail_seen) {
            atomic_store_explicit(&q->head, head, memory_order_release);
            tail_seen = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (head == tail_seen) {
                sched_yield();
                continue;
            }
        }
        uint64_t *p = q->ring[head % CAP];
        check += p[1];
        freed += (int64_t)p[0];
        atomic_store_explicit(&q->freed, freed, memory_order_relaxed);
        free(p);
        head++;
        if ((head % PUBLISH) == 0) atomic_store_explicit(&q->head, head, memory_order_release);
    }
    atomic_store_explicit(&q->head, head, memory_order_release);
    return (void *)(uintptr_t)check;
}

int main(int argc, char **argv) {
    double scale = arg_scale(argc, argv);
    int threads = arg_threads(argc, argv, 2);
    int pairs = threads / 2 < 1 ? 1 : threads / 2;
    long total = scaled(scale, 5000000, 10000);
    req_mt_init(pairs);

    queue_t *qs = xmalloc(sizeof(queue_t) * pairs);
    pthread_t *th = xmalloc(sizeof(pthread_t) * 2 * pairs);
    for (int i = 0; i < pairs; i++) {
        atomic_init(&qs[i].tail, 0);
        atomic_init(&qs[i].head, 0);
        atomic_init(&qs[i].freed, 0);
        qs[i].ring = xmalloc(sizeof(void *) * CAP);
        qs[i].items = total / pairs;
        qs[i].id = i;
    }
    for (int i = 0; i < pairs; i++) {
        pthread_create(&th[2 * i], NULL, producer, &qs[i]);
        pthread_create(&th[2 * i + 1], NULL, consumer, &qs[i]);
    }
    uint64_t check = 0;
    for (int i = 0; i < 2 * pairs; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        check += (uint64_t)(uintptr_t)ret;
    }
    printf("threads=%d\n", 2 * pairs);
    printf("ops=%ld\n", (total / pairs) * pairs);
    printf("checksum=%llu\n", (unsigned long long)check);
    printf("requested_bytes_peak=%lld\n", (long long)atomic_load(&req_mt_peak));
    printf("rss_end_kib=%ld\n", proc_status_kib("VmRSS"));
    for (int i = 0; i < pairs; i++) free(qs[i].ring);
    free(qs);
    free(th);
    return 0;
}
