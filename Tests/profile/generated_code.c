/*
 * generated_code — allocations from code generated at run time, as a JIT
 * compiler's, which no loaded object covers.
 *
 *     generated_code
 *
 * Copies a function that sets up a frame pointer, takes 16 bytes of stack and
 * calls malloc(48) into an executable anonymous mapping, and calls it 13 times
 * from call_generated (built with frame pointers, as main). The 13 blocks stay
 * live. In every walk mode the profile must put them at a stack whose first
 * frame is the generated code and whose second is call_generated: the
 * frame-pointer walk, which keeps only return addresses inside loaded code, once
 * dropped the whole stack. The cached walk must learn the frame: libunwind steps
 * over it by its frame pointer but gives its caller a stack pointer that is not
 * the frame's end, and the walk once refused to learn from that, sending every
 * stack through such code to libunwind. x86-64 only; elsewhere it prints
 * "skipped" and exits 0.
 *
 *   cc -O2 -g -fno-omit-frame-pointer generated_code.c -o generated_code
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef void *(*allocator_fn)(size_t);
static void *kept[13];

__attribute__((noinline)) static void *call_generated(allocator_fn f, size_t n)
{
    void *p = f(n);
    __asm__ volatile("" : : "r"(p) : "memory");   /* not a tail call */
    return p;
}

int main(void)
{
#if defined(__x86_64__)
    /* push %rbp; mov %rsp,%rbp; sub $16,%rsp; movabs $malloc,%rax; call *%rax; leave; ret */
    unsigned char code[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x10, 0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
                            0xff, 0xd0, 0xc9, 0xc3};
    uint64_t target = (uint64_t)(uintptr_t)&malloc;
    memcpy(code + 10, &target, sizeof target);
    unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return 1;
    memcpy(page, code, sizeof code);
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) return 1;
    for (int i = 0; i < 13; i++) kept[i] = call_generated((allocator_fn)(void *)page, 48);
    puts("done");
#else
    puts("skipped");
#endif
    return 0;
}
