/*
 * zero_return — allocations from code without unwind tables whose rbp holds data.
 *
 *     zero_return
 *
 * alloc_without_cfi is written in assembly with no call-frame information, as
 * code built with -fno-asynchronous-unwind-tables is, and uses rbp as a data
 * pointer (to zeros on its stack), as code built without frame pointers may. libunwind, finding
 * no unwind table there, guesses the next frame from rbp and reads a return
 * address of 0, where its backtrace ends. main calls it 30 times, then a thread
 * does 10 more. Every allocation must have the same one-frame stack, in every
 * walk mode: the cached walk once learned a frame "0x0" after it and split the
 * site in two.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

void *alloc_without_cfi(size_t n);
__asm__(".text\n"
        ".globl alloc_without_cfi\n"
        ".type alloc_without_cfi,@function\n"
        "alloc_without_cfi:\n"
        "\tpushq %rbp\n"
        "\tsubq $32, %rsp\n"
        "\tmovq $0, (%rsp)\n"
        "\tmovq $0, 8(%rsp)\n"
        "\tmovq %rsp, %rbp\n"
        "\tcall malloc@PLT\n"
        "\taddq $32, %rsp\n"
        "\tpopq %rbp\n"
        "\tret\n"
        ".size alloc_without_cfi, .-alloc_without_cfi\n");

static void *blocks[40];

static void *more(void *arg)
{
    (void)arg;
    for (int i = 30; i < 40; i++) blocks[i] = alloc_without_cfi(48);
    return NULL;
}

int main(void)
{
    for (int i = 0; i < 30; i++) blocks[i] = alloc_without_cfi(48);
    pthread_t t;
    if (pthread_create(&t, NULL, more, NULL) != 0 || pthread_join(t, NULL) != 0) return 1;
    puts("done");
    return 0;
}
