/*
 * deepbind.c — a plugin opened with RTLD_DEEPBIND (as PHP opens its extensions)
 * allocates and frees blocks the program frees and allocates.
 *
 * Deep binding makes the plugin resolve malloc and free in its own dependencies
 * first, libc among them; the library takes the flag off in its dlopen, so the
 * plugin's blocks are the library's too and blocks may cross. The plugin
 * (Tests/c/plugins/deepbind_plugin.c) is built by the test runner beside this
 * test's binary and opened as $ORIGIN/libdeepbind_plugin.so: $ORIGIN is the
 * directory of the object that calls dlopen, so this also checks that the
 * library's dlopen leaves the caller as it was.
 */
#define _GNU_SOURCE
#define TEST_NAME "deepbind"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

int main(void)
{
    void *h = dlopen("$ORIGIN/libdeepbind_plugin.so", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    CHECK(h != NULL, "dlopen($ORIGIN/libdeepbind_plugin.so, RTLD_DEEPBIND): %s", dlerror());
    char *(*copy)(const char *) = (char *(*)(const char *))dlsym(h, "plugin_copy");
    void (*release)(void *) = (void (*)(void *))dlsym(h, "plugin_release");
    CHECK(copy != NULL && release != NULL, "the plugin's functions are missing");
    for (int i = 0; i < 1000; i++) {
        /* The plugin's block, freed here; this program's block, freed there. */
        char *a = copy("a block the plugin allocated");
        CHECK(a != NULL && strcmp(a, "a block the plugin allocated") == 0, "plugin_copy failed");
        free(a);
        char *b = malloc(64 + (size_t)i);
        CHECK(b != NULL, "malloc failed");
        memset(b, 'x', 64 + (size_t)i);
        release(b);
    }
    CHECK(dlclose(h) == 0, "dlclose: %s", dlerror());
    printf("deepbind: 1000 blocks each way between the program and a plugin opened with RTLD_DEEPBIND\n");
    return 0;
}
