/* A plugin for Tests/profile/dlclose.c, built twice: with FRAME=8 and FRAME=88.
 * plugin_alloc is the same bytes in both but for its frame size, so the return
 * address into it from inner_alloc lies at the same offset in both builds while
 * the frame above it differs: a profiler that remembers how to step over that
 * address from the first plugin walks the second one's stacks wrongly when the
 * second is loaded where the first was. x86-64 only. */
#include <stdlib.h>

#define STR2(x) #x
#define STR(x) STR2(x)

__asm__(".text\n"
        ".globl plugin_alloc\n"
        ".type plugin_alloc,@function\n"
        ".p2align 4\n"
        "plugin_alloc:\n"
        ".cfi_startproc\n"
        "sub $" STR(FRAME) ",%rsp\n"
        ".cfi_adjust_cfa_offset " STR(FRAME) "\n"
        "call inner_alloc\n"
        "add $" STR(FRAME) ",%rsp\n"
        ".cfi_adjust_cfa_offset -" STR(FRAME) "\n"
        "ret\n"
        ".cfi_endproc\n"
        ".size plugin_alloc,.-plugin_alloc\n");

__attribute__((noinline, used)) void *inner_alloc(size_t n) {
    void *p = malloc(n);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}
