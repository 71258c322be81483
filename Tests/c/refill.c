/*
 * refill.c — pages freed by a program that only frees are there for its next
 * allocations.
 *
 * The program fills 48 MiB with 256-byte blocks (every byte written), frees the
 * older two thirds of them without allocating anything in between, then
 * allocates and writes 32 MiB of 256-byte blocks again. The freed spans went back
 * to the page heap, still resident; the refill should reuse them and take few
 * page faults. Frees cannot start the background purger, and without it the page
 * heap keeps only a small reserve of freed pages, so a library that started the
 * purger only once pages were freed gave most of them back during the frees and
 * faulted them in again for the refill (about 8,000 faults here). Checked with
 * getrusage's minor fault count; every block still live is checked byte by byte.
 *
 * Skipped when malloc is not SwiftMalloc's, and when SWIFTMALLOC_BACKGROUND=0
 * turns the purger off.
 */
#define _GNU_SOURCE
#define TEST_NAME "refill"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "testutil.h"

#define BLOCK 256
#define FILL_BLOCKS ((size_t)48 << 20) / BLOCK
#define FREED_BLOCKS (FILL_BLOCKS / 3 * 2)
#define REFILL_BLOCKS ((size_t)32 << 20) / BLOCK

int main(void)
{
    if (!purger_testable()) return 0;
    /* The block table is mapped, so it is not part of the heap under test. */
    size_t slots = FILL_BLOCKS > REFILL_BLOCKS ? FILL_BLOCKS : REFILL_BLOCKS;
    unsigned char **blocks = mmap(NULL, slots * sizeof *blocks, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(blocks != MAP_FAILED, "mmap of the block table failed");
    memset(blocks, 0, slots * sizeof *blocks);

    for (size_t i = 0; i < FILL_BLOCKS; i++) {
        blocks[i] = malloc(BLOCK);
        CHECK(blocks[i] != NULL, "malloc(%d) returned NULL after %zu blocks", BLOCK, i);
        memset(blocks[i], (int)(i & 0xff), BLOCK);
    }
    for (size_t i = 0; i < FREED_BLOCKS; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }

    long before = minor_faults();
    for (size_t i = 0; i < REFILL_BLOCKS; i++) {
        blocks[i] = malloc(BLOCK);
        CHECK(blocks[i] != NULL, "refill: malloc(%d) returned NULL after %zu blocks", BLOCK, i);
        memset(blocks[i], (int)((i * 7) & 0xff), BLOCK);
    }
    long faults = minor_faults() - before;
    long pages = (long)(((size_t)32 << 20) / 4096);
    printf("%s: refilling %ld pages' worth of blocks took %ld minor faults\n", TEST_NAME, pages, faults);
    CHECK(faults < pages / 4, "the refill took %ld faults for %ld pages: the freed pages were given back "
          "during the frees and faulted in again", faults, pages);

    for (size_t i = 0; i < slots; i++) {
        if (blocks[i] == NULL) continue;
        unsigned char tag = i < REFILL_BLOCKS ? (unsigned char)((i * 7) & 0xff) : (unsigned char)(i & 0xff);
        for (size_t k = 0; k < BLOCK; k++)
            CHECK(blocks[i][k] == tag, "block %zu byte %zu is %u, not %u", i, k, blocks[i][k], tag);
        free(blocks[i]);
    }
    printf("%s: ok\n", TEST_NAME);
    return 0;
}
