/* realloc: growing buffers.
 *
 * doubling    8 buffers, interleaved, each grows from 16..64 B by doubling up
 *             to a random limit of 4 KiB..2 MiB, filling the new half after
 *             every realloc (a growing vector); then it is freed and starts over.
 * increments  32 buffers, interleaved, each grows by 1..64 B at a time up to a
 *             random limit of 256 B..64 KiB, writing the appended bytes (a
 *             string builder); then it is freed and starts over.
 * Interleaving keeps neighbours alive, so growing in place is not free.
 */
#include "common.h"

#define NDBL 8
#define NINC 32

int main(int argc, char **argv) {
    double scale = arg_scale(argc, argv);
    rng_t r;
    rng_seed(&r, 3);
    uint64_t check = 0;

    /* doubling */
    long dbl_steps = scaled(scale, 400000, 200);
    char *dbuf[NDBL] = {0};
    size_t dsz[NDBL] = {0}, dlimit[NDBL] = {0};
    for (long s = 0; s < dbl_steps; s++) {
        int b = (int)(s % NDBL);
        if (dbuf[b] == NULL) {
            dsz[b] = rng_range(&r, 16, 64);
            dlimit[b] = (size_t)4096 << rng_range(&r, 0, 9);
            dbuf[b] = malloc(dsz[b]);
            memset(dbuf[b], (int)b, dsz[b]);
            req_add(dsz[b]);
            continue;
        }
        if (dsz[b] * 2 > dlimit[b]) {
            check += (unsigned char)dbuf[b][dsz[b] - 1];
            free(dbuf[b]);
            req_sub(dsz[b]);
            dbuf[b] = NULL;
            continue;
        }
        size_t old = dsz[b];
        dbuf[b] = realloc(dbuf[b], old * 2);
        memset(dbuf[b] + old, (int)s, old);
        dsz[b] = old * 2;
        req_add(old);
    }
    for (int b = 0; b < NDBL; b++)
        if (dbuf[b]) {
            free(dbuf[b]);
            req_sub(dsz[b]);
        }

    /* small increments */
    long inc_steps = scaled(scale, 6000000, 2000);
    char *ibuf[NINC] = {0};
    size_t isz[NINC] = {0}, ilimit[NINC] = {0};
    for (long s = 0; s < inc_steps; s++) {
        int b = (int)(rng_next(&r) % NINC);
        if (ibuf[b] == NULL) {
            ilimit[b] = rng_range(&r, 256, 65536);
            isz[b] = 0;
        }
        if (isz[b] >= ilimit[b]) {
            check += (unsigned char)ibuf[b][isz[b] - 1];
            free(ibuf[b]);
            req_sub(isz[b]);
            ibuf[b] = NULL;
            continue;
        }
        size_t add = rng_range(&r, 1, 64);
        ibuf[b] = realloc(ibuf[b], isz[b] + add);
        memset(ibuf[b] + isz[b], (int)s, add);
        isz[b] += add;
        req_add(add);
    }
    for (int b = 0; b < NINC; b++)
        if (ibuf[b]) {
            free(ibuf[b]);
            req_sub(isz[b]);
        }

    printf("checksum=%llu\n", (unsigned long long)check);
    printf("requested_bytes_peak=%lld\n", (long long)req_peak);
    printf("rss_end_kib=%ld\n", proc_status_kib("VmRSS"));
    return 0;
}
