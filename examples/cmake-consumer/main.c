/*
 * main.c — built three ways by CMakeLists.txt. It checks that malloc comes from
 * the library named by EXPECT_MALLOC and, with USE_PREFIXED_API, also uses the
 * swiftmalloc_ functions next to malloc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef USE_PREFIXED_API
#include <swiftmalloc.h>
#endif

int main(void)
{
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, "malloc");
    if (f == NULL || dladdr(f, &info) == 0 || info.dli_fname == NULL) {
        fprintf(stderr, "cannot locate malloc\n");
        return 1;
    }
    const char *base = strrchr(info.dli_fname, '/');
    base = base != NULL ? base + 1 : info.dli_fname;
    printf("malloc comes from %s\n", base);

    char *text = strdup("hello from the consumer project");
    if (text == NULL)
        return 1;
    printf("%s\n", text);
    free(text);

#ifdef USE_PREFIXED_API
    printf("SwiftMalloc %s beside the system allocator\n", SWIFTMALLOC_VERSION_STRING);
    char *mine = swiftmalloc_malloc(100);
    if (mine == NULL)
        return 1;
    snprintf(mine, 100, "%zu usable bytes in a SwiftMalloc block", swiftmalloc_usable_size(mine));
    printf("%s\n", mine);
    swiftmalloc_free(mine);
#endif

    if (strncmp(base, EXPECT_MALLOC, strlen(EXPECT_MALLOC)) != 0) {
        printf("expected malloc from %s\n", EXPECT_MALLOC);
        return 1;
    }
    return 0;
}
