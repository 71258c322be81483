/* Allocations made on a coroutine's stack (makecontext/swapcontext): the walk
 * ends at the stack's outermost frame, glibc's __start_context, which a report
 * must name as such (makecontext stores the address of its first instruction as
 * the coroutine function's return address, so looking up the byte before it, as
 * for a return address, names whatever function precedes it).
 *
 *     coroutine
 *
 * The coroutine runs in a stack of its own (a malloc'd 256 KiB); each time it
 * is resumed, keep_from_coroutine keeps one 777-byte block, ten times in all. */
#include <stdlib.h>
#include <ucontext.h>

void *kept[10];
static volatile int count;
static ucontext_t main_context, coroutine_context;

__attribute__((noinline)) static void keep_from_coroutine(void) { kept[count++] = malloc(777); }

__attribute__((noinline)) static void coroutine_body(void) {
    for (int i = 0; i < 10; i++) {
        keep_from_coroutine();
        swapcontext(&coroutine_context, &main_context);
    }
}

int main(void) {
    size_t stack_size = 256 * 1024;
    char *stack = malloc(stack_size);
    if (stack == NULL || getcontext(&coroutine_context) != 0) return 1;
    coroutine_context.uc_stack.ss_sp = stack;
    coroutine_context.uc_stack.ss_size = stack_size;
    coroutine_context.uc_link = &main_context;
    makecontext(&coroutine_context, coroutine_body, 0);
    for (int i = 0; i < 10; i++)
        if (swapcontext(&main_context, &coroutine_context) != 0) return 1;
    free(stack);
    return count == 10 ? 0 : 1;
}
