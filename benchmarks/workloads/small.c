/* small: the small-block fast path.
 *
 * Sizes uniform in 8..512 bytes. Each round does, with K = 1000 blocks:
 *   LIFO   allocate K blocks, free them newest first;
 *   FIFO   allocate K blocks, free them oldest first;
 *   window a sliding window of K live blocks: allocate one, free the oldest;
 *   pairs  malloc immediately followed by free.
 * Every block gets its first and last byte written.
 */
#include "common.h"

#define K 1000

static inline void *alloc_block(rng_t *r, size_t *szs, int i) {
    size_t n = rng_range(r, 8, 512);
    char *p = malloc(n);
    p[0] = (char)i;
    p[n - 1] = (char)n;
    szs[i] = n;
    req_add(n);
    return p;
}

int main(int argc, char **argv) {
    double scale = arg_scale(argc, argv);
    long rounds = scaled(scale, 3000, 2);
    rng_t r;
    rng_seed(&r, 1);
    static void *ptr[K];
    static size_t szs[K];
    uint64_t check = 0;

    for (long round = 0; round < rounds; round++) {
        /* LIFO */
        for (int i = 0; i < K; i++) ptr[i] = alloc_block(&r, szs, i);
        for (int i = K - 1; i >= 0; i--) {
            check += ((unsigned char *)ptr[i])[0];
            req_sub(szs[i]);
            free(ptr[i]);
        }
        /* FIFO */
        for (int i = 0; i < K; i++) ptr[i] = alloc_block(&r, szs, i);
        for (int i = 0; i < K; i++) {
            check += ((unsigned char *)ptr[i])[0];
            req_sub(szs[i]);
            free(ptr[i]);
        }
        /* sliding window: the ring holds K live blocks; replace the oldest */
        for (int i = 0; i < K; i++) ptr[i] = alloc_block(&r, szs, i);
        for (int j = 0; j < 2 * K; j++) {
            int i = j % K;
            req_sub(szs[i]);
            free(ptr[i]);
            ptr[i] = alloc_block(&r, szs, i);
        }
        for (int i = 0; i < K; i++) {
            req_sub(szs[i]);
            free(ptr[i]);
        }
        /* pairs */
        for (int i = 0; i < K; i++) {
            size_t n = rng_range(&r, 8, 512);
            char *p = malloc(n);
            p[0] = 1;
            escape(p);
            free(p);
        }
    }
    printf("ops=%ld\n", rounds * 6L * K);
    printf("checksum=%llu\n", (unsigned long long)check);
    printf("requested_bytes_peak=%lld\n", (long long)req_peak);
    return 0;
}
