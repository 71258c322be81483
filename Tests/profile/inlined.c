/* A leak made in a function the compiler inlined: the report must name it (and
 * its line), inside the function it was inlined into, as its own frame.
 *
 *     inlined        (built with -O2 -g)
 *
 * keep_block (always inlined) allocates 4,242 bytes for outer_function, which
 * keeps them to the end. */
#include <stdlib.h>

void *kept;
static volatile int calls;

static inline __attribute__((always_inline)) void keep_block(void) {
    kept = malloc(4242);
}

__attribute__((noinline)) static void outer_function(void) {
    keep_block();
    calls++;   /* keeps the call from becoming a jump: outer_function stays on the stack */
}

int main(void) {
    outer_function();
    return calls == 1 && kept != NULL ? 0 : 1;
}
