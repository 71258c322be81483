/*
 * unload — a program that opens the library with dlopen (to call the
 * swiftmalloc_ functions, as a plugin or Python's ctypes would) and closes it
 * while a thread that used it still runs.
 *
 *     SWIFTMALLOC_TEST_LIBRARY=path/libswiftmalloc.so unload
 *
 * A thread allocates through the library and waits; main allocates 8 MiB (which
 * starts the background purger), calls dlclose, lets the thread exit (its
 * thread-exit destructor is the library's) and sleeps while the purger would
 * wake. The library is never unmapped (-z nodelete): before, the process died of
 * SIGSEGV in the purger or in the destructor, in unmapped code. Without the
 * variable (preloaded or linked runs) it prints "skipped" and exits 0.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *(*lib_malloc)(size_t);
static void (*lib_free)(void *);
static volatile int may_exit;

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void *user(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) lib_free(lib_malloc((size_t)i * 100));
    while (!may_exit) nap(1);
    return NULL;
}

int main(void)
{
    const char *path = getenv("SWIFTMALLOC_TEST_LIBRARY");
    if (path == NULL || path[0] == 0) {
        puts("skipped");
        return 0;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        printf("dlopen: %s\n", dlerror());
        return 1;
    }
    lib_malloc = (void *(*)(size_t))dlsym(h, "swiftmalloc_malloc");
    lib_free = (void (*)(void *))dlsym(h, "swiftmalloc_free");
    if (lib_malloc == NULL || lib_free == NULL) return 1;
    pthread_t t;
    if (pthread_create(&t, NULL, user, NULL) != 0) return 1;
    nap(50);
    char *big = lib_malloc(8 << 20);
    if (big == NULL) return 1;
    memset(big, 1, 8 << 20);
    lib_free(big);
    if (dlclose(h) != 0) return 1;
    may_exit = 1;
    pthread_join(t, NULL);
    nap(1500);
    puts("survived");
    return 0;
}
