/* frag: fragmentation.
 *
 *   1. fill ~200 MiB with blocks of 16..512 B (every byte written);
 *   2. free a random 90% of them (an exact 90%, chosen by a seeded shuffle);
 *   3. refill ~100 MiB with blocks of 600..2000 B, which cannot reuse the holes
 *      left by small blocks unless the allocator gives their pages back or
 *      reuses them for another size.
 * Reports VmHWM (peak RSS) and VmRSS after the refill, with the bytes live at
 * that moment, then frees everything and reports VmRSS again.
 * The pointer arrays are allocated with malloc and counted as requested bytes.
 */
#include "common.h"

int main(int argc, char **argv) {
    double scale = arg_scale(argc, argv);
    size_t fill = (size_t)(200.0 * scale * 1048576.0);
    size_t refill = (size_t)(100.0 * scale * 1048576.0);
    rng_t r;
    rng_seed(&r, 5);

    size_t nsmall = fill / 264 + 16; /* mean of 16..512 is 264 */
    void **sp = xmalloc(nsmall * sizeof(void *));
    uint32_t *ssz = xmalloc(nsmall * sizeof(uint32_t));
    req_add(nsmall * (sizeof(void *) + sizeof(uint32_t)));

    size_t n = 0, bytes = 0;
    while (bytes < fill && n < nsmall) {
        size_t s = rng_range(&r, 16, 512);
        sp[n] = malloc(s);
        memset(sp[n], (int)n, s);
        ssz[n] = (uint32_t)s;
        req_add(s);
        bytes += s;
        n++;
    }

    /* free an exact 90%: shuffle the indices, free the first 90% of them */
    uint32_t *order = xmalloc(n * sizeof(uint32_t));
    req_add(n * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng_next(&r) % (i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    size_t nfree = n / 10 * 9;
    for (size_t k = 0; k < nfree; k++) {
        uint32_t i = order[k];
        free(sp[i]);
        req_sub(ssz[i]);
        sp[i] = NULL;
    }
    free(order);
    req_sub(n * sizeof(uint32_t));

    size_t nbig = refill / 1300 + 16; /* mean of 600..2000 is 1300 */
    void **bp = xmalloc(nbig * sizeof(void *));
    uint32_t *bsz = xmalloc(nbig * sizeof(uint32_t));
    req_add(nbig * (sizeof(void *) + sizeof(uint32_t)));
    size_t m = 0;
    bytes = 0;
    while (bytes < refill && m < nbig) {
        size_t s = rng_range(&r, 600, 2000);
        bp[m] = malloc(s);
        memset(bp[m], (int)m, s);
        bsz[m] = (uint32_t)s;
        req_add(s);
        bytes += s;
        m++;
    }

    long hwm = proc_status_kib("VmHWM");
    long rss_after = proc_status_kib("VmRSS");
    long long live = (long long)req_cur;

    for (size_t i = 0; i < n; i++) free(sp[i]);
    for (size_t i = 0; i < m; i++) free(bp[i]);
    free(sp);
    free(ssz);
    free(bp);
    free(bsz);

    printf("small_blocks=%zu\n", n);
    printf("large_blocks=%zu\n", m);
    printf("requested_bytes_peak=%lld\n", (long long)req_peak);
    printf("hwm_kib=%ld\n", hwm);
    printf("rss_after_kib=%ld\n", rss_after);
    printf("live_after_bytes=%lld\n", live);
    printf("rss_end_kib=%ld\n", proc_status_kib("VmRSS"));
    return 0;
}
