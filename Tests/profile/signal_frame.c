/* Allocations made by a signal handler: their stacks pass through the kernel's
 * signal return trampoline, which a report must name as such (the handler
 * "returns" to the trampoline's first instruction, so looking up the byte before
 * it, as for a return address, names whatever function precedes it).
 *
 *     signal_frame
 *
 * raise_signals sends itself SIGUSR1 ten times; the handler's allocate_in_handler
 * keeps one 555-byte block each time. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *kept[10];
static volatile int count, handled;

__attribute__((noinline)) static void allocate_in_handler(void) { kept[count++] = malloc(555); }

static void on_signal(int sig) {
    (void)sig;
    allocate_in_handler();
    handled++;   /* keeps the call from becoming a jump: on_signal stays on the stack */
}

__attribute__((noinline)) static void raise_signals(void) {
    for (int i = 0; i < 10; i++) kill(getpid(), SIGUSR1);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    raise_signals();
    return count == 10 && handled == 10 ? 0 : 1;
}
