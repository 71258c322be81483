/* large: churn of large blocks, 64 KiB .. 64 MiB.
 *
 * 8 slots; each step replaces the block in a random slot with a new one whose
 * size is log-uniform between 64 KiB and 64 MiB, and writes one byte in every
 * 4 KiB page of it (a program that fills its buffers). The cost is dominated
 * by how often the allocator hands back fresh pages from the system (page
 * faults) versus reusing pages it kept, which is also what RSS reflects.
 * After freeing everything it reports VmRSS (what was kept).
 */
#include "common.h"
#include <math.h>

#define NSLOT 8

int main(int argc, char **argv) {
    double scale = arg_scale(argc, argv);
    long steps = scaled(scale, 600, 8);
    rng_t r;
    rng_seed(&r, 11);
    char *p[NSLOT] = {0};
    size_t sz[NSLOT] = {0};
    uint64_t check = 0;
    const double lo = log(65536.0), hi = log(64.0 * 1048576.0);
    for (long s = 0; s < steps; s++) {
        int i = (int)(rng_next(&r) % NSLOT);
        if (p[i]) {
            check += (unsigned char)p[i][sz[i] - 1];
            free(p[i]);
            req_sub(sz[i]);
        }
        double u = (double)(rng_next(&r) >> 11) / 9007199254740992.0;
        size_t n = (size_t)exp(lo + u * (hi - lo));
        p[i] = malloc(n);
        if (!p[i]) {
            fprintf(stderr, "malloc(%zu) failed\n", n);
            return 2;
        }
        for (size_t off = 0; off < n; off += 4096) p[i][off] = (char)s;
        p[i][n - 1] = (char)s;
        sz[i] = n;
        req_add(n);
    }
    for (int i = 0; i < NSLOT; i++)
        if (p[i]) free(p[i]);
    printf("steps=%ld\n", steps);
    printf("checksum=%llu\n", (unsigned long long)check);
    printf("requested_bytes_peak=%lld\n", (long long)req_peak);
    printf("rss_end_kib=%ld\n", proc_status_kib("VmRSS"));
    return 0;
}
