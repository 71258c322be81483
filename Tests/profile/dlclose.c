/* Loads plugin A, allocates through it, unloads it; then plugin B, which the
 * loader usually maps where A was; three rounds. The two plugins have the same
 * return address with frames of different sizes (dlclose_plugin.c), so every
 * stack through B is walked wrongly by a profiler that still applies what it
 * learned about A. Each load also leaks one 64-byte block allocated through the
 * plugin, which the leak report must name although the plugin is gone by then.
 * Prints whether B took A's addresses. With a third plugin, loads it once more
 * after the rounds (the same as A: a library unloaded again, whose `unloaded`
 * record must then come last).
 *
 *     dlclose PLUGIN_A PLUGIN_B [PLUGIN_AGAIN] */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

void *leaked[8];   /* global: reachable at exit, and the compiler keeps the calls */
static int leaks;

__attribute__((noinline)) static void *call_plugin(const char *path, int count) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        exit(1);
    }
    void *(*alloc)(size_t) = (void *(*)(size_t))dlsym(h, "plugin_alloc");
    Dl_info info;
    if (alloc == NULL || dladdr((void *)alloc, &info) == 0) {
        fprintf(stderr, "dlclose: no plugin_alloc in %s\n", path);
        exit(1);
    }
    for (int i = 0; i < count; i++) free(alloc(64));
    leaked[leaks++] = alloc(64);
    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        exit(1);
    }
    return info.dli_fbase;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: dlclose PLUGIN_A PLUGIN_B [PLUGIN_AGAIN]\n");
        return 2;
    }
    int same = 1;
    for (int round = 0; round < 3; round++) {
        void *a = call_plugin(argv[1], 1000);
        void *b = call_plugin(argv[2], 1000);
        if (a != b) same = 0;
    }
    if (argc == 4) call_plugin(argv[3], 1);
    printf("B loaded where A was: %s\n", same ? "yes" : "no");
    return 0;
}
