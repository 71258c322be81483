/* loop: the fast path alone, for callgrind.
 *
 *     loop N     runs N malloc(32)+free pairs.
 *
 * Built with gcc -O2. The runner counts instructions (Ir) at two values of N
 * and divides the difference by the difference in N, so start-up cancels and
 * what is left is the cost of one pair (about 9 of which are the loop and the
 * two PLT jumps).
 */
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    for (long i = 0; i < n; i++) {
        void *p = malloc(32);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    return 0;
}
