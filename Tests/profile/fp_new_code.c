/* The frame-pointer walk through code loaded a moment ago: loads plugin A and,
 * keeping it, plugin B (Tests/profile/dlclose_plugin.c, built with frame
 * pointers in inner_alloc), and allocates 3 blocks through A and 5 through B
 * right after each load, keeping them. The walk keeps only return addresses
 * inside loaded code, from a table that looked for new objects at most every
 * 100 ms: such blocks had no stack at all. Now every dlopen call makes the next
 * miss look, and the 8 blocks must be at stacks through plugin_alloc.
 *
 *     fp_new_code PLUGIN_A PLUGIN_B */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

void *kept[8];   /* global: live at exit */

static int allocate_through(const char *path, int first, int count) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    void *(*alloc)(size_t) = h != NULL ? (void *(*)(size_t))dlsym(h, "plugin_alloc") : NULL;
    if (alloc == NULL) {
        fprintf(stderr, "fp_new_code: %s\n", dlerror());
        return 1;
    }
    for (int i = first; i < first + count; i++) kept[i] = alloc(64);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    if (allocate_through(argv[1], 0, 3) != 0 || allocate_through(argv[2], 3, 5) != 0) return 1;
    puts("done");
    return 0;
}
