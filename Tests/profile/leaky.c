/* A program with known leaks at known functions, for the profiler tests
 * (Tests/run-profiler-tests.sh). Build it the way the tests do:
 *
 *   cc -O1 -g -fno-omit-frame-pointer -fno-inline -pthread leaky.c -o leaky
 *
 * Blocks still live at exit, per function, with LEAKY_SCALE=1:
 *
 *   leak_small       10 x 48 B        =     480 B
 *   leak_medium       3 x 5000 B      =  15,000 B
 *   leak_large        1 x 300000 B    = 300,000 B
 *   leak_in_thread    7 x 100 B       =     700 B   (from a second thread)
 *   leak_calloc       5 x (4 x 25 B)  =     500 B   (calloc)
 *   leak_realloc      1 x 4096 B      =   4,096 B   (realloc'ed 16 -> 32 -> ... -> 4096 B,
 *                                                    still referenced from a global)
 *
 * plus churn(): tens of thousands of malloc/free pairs of mixed sizes, none live
 * at exit. Environment:
 *
 *   LEAKY_SCALE=k   multiply every count above by k (default 1)
 *   LEAKY_MANY=n    also leak n blocks of 1000 B from leak_many (default 0)
 *
 * It prints nothing and exits 0.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Every allocation is stored here, so that the compiler cannot drop an
 * allocation whose result looks unused. */
void *volatile sink;
/* The realloc'ed blocks stay referenced from here until exit. */
void *grown[64];

static long scale = 1;

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

void leak_small(long n) {
    for (long i = 0; i < n; i++) {
        char *p = malloc(48);
        memset(p, 1, 48);
        sink = p;
    }
}

void leak_medium(long n) {
    for (long i = 0; i < n; i++) {
        char *p = malloc(5000);
        memset(p, 2, 5000);
        sink = p;
    }
}

void leak_large(long n) {
    for (long i = 0; i < n; i++) {
        char *p = malloc(300000);
        memset(p, 3, 300000);
        sink = p;
    }
}

void leak_in_thread(long n) {
    for (long i = 0; i < n; i++) {
        char *p = malloc(100);
        memset(p, 4, 100);
        sink = p;
    }
}

void leak_calloc(long n) {
    for (long i = 0; i < n; i++) {
        sink = calloc(4, 25);
    }
}

void leak_realloc(long n) {
    for (long i = 0; i < n && i < 64; i++) {
        size_t size = 16;
        char *p = malloc(size);
        memset(p, 5, size);
        while (size < 4096) {
            size *= 2;
            p = realloc(p, size);
            p[size - 1] = 6;
        }
        grown[i] = p;
    }
}

void leak_many(long n) {
    for (long i = 0; i < n; i++) {
        char *p = malloc(1000);
        p[0] = 7;
        sink = p;
    }
}

/* Allocations that are all freed again: single pairs and batches, 16 B to 20 KiB. */
void churn(void) {
    void *batch[256];
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 256; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t size = 16 + (seed >> 8) % (round % 4 == 3 ? 20000 : 1000);
            batch[i] = malloc(size);
            memset(batch[i], i, size < 64 ? size : 64);
        }
        for (int i = 0; i < 256; i++) {
            char *p = malloc(64);
            sink = p;
            free(p);
            free(batch[255 - i]);
        }
    }
}

static void *thread_main(void *arg) {
    leak_in_thread(*(long *)arg);
    return NULL;
}

int main(void) {
    scale = env_long("LEAKY_SCALE", 1);
    long many = env_long("LEAKY_MANY", 0);

    churn();
    leak_small(10 * scale);
    leak_medium(3 * scale);
    leak_large(1 * scale);
    long in_thread = 7 * scale;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, &in_thread) != 0) return 1;
    pthread_join(t, NULL);
    leak_calloc(5 * scale);
    leak_realloc(1 * scale);
    if (many > 0) leak_many(many);
    churn();
    return 0;
}
