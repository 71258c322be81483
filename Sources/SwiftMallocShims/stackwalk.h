// The cached stack walker's rules and its walk (see stackwalk.c), inlined into the
// profiled allocation entries (unwind.c). Private to SwiftMallocShims.
#ifndef SWIFTMALLOC_STACKWALK_H
#define SWIFTMALLOC_STACKWALK_H
#include "SwiftMallocShims.h"

/// Rules: K | RULE_SP (K < 2^32), with RULE_CLOBBERS when the frame does not leave
/// rbp as its caller had it, and then, when known, where it saved the caller's: W
/// words below its CFA, W in bits RULE_SAVE_SHIFT.. (0: not known); RULE_FP;
/// RULE_LAST. 0 is no rule.
#define RULE_CLOBBERS ((uintptr_t)1 << 62)
#define RULE_SAVE_SHIFT 32
#define RULE_SAVE_MASK ((uintptr_t)0xfffff)
enum { RULE_SP = 1, RULE_FP = 2, RULE_LAST = 4 };
/// The memo's step of a frame that is not an SP frame (see swm_step_of).
#define SWM_STEP_NONE ((uintptr_t)1 << 62)
enum { RULE_BITS = 14, RULE_SLOTS = 1 << RULE_BITS, RULE_MAX_USED = RULE_SLOTS / 4 * 3 };

typedef struct { uintptr_t ip, rule; } swm_frame_rule;

/// The rule table (mapped on first use; NULL until then).
extern swm_frame_rule *swm_rules __attribute__((visibility("hidden")));
/// Bumped each time the table is emptied because code was unloaded
/// (swm_stackwalk_forget_code); a walk memo of an older generation is forgotten.
extern uintptr_t swm_rules_generation __attribute__((visibility("hidden")));
void swm_stackwalk_forget_code(void) __attribute__((visibility("hidden")));
/// Highest stack address this thread's walks may read below: the stack pointer of
/// the outermost frame libunwind reached on this thread (0: not learned yet).
extern __thread uintptr_t swm_tls_stack_top __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline unsigned swm_rule_slot(uintptr_t ip) {
    return (unsigned)((ip * 0x9E3779B97F4A7C15ull) >> (64 - RULE_BITS));
}

/// The rule for `ip`, or 0. Entries are published with a non-zero rule.
static inline uintptr_t swm_rule_find(const swm_frame_rule *t, uintptr_t ip) {
    unsigned slot = swm_rule_slot(ip);
    for (;;) {
        const swm_frame_rule *e = &t[slot];
        uintptr_t key = __atomic_load_n(&e->ip, __ATOMIC_ACQUIRE);
        if (__builtin_expect(key == ip, 1)) return e->rule;
        if (key == 0) return 0;
        slot = (slot + 1) & (RULE_SLOTS - 1);
    }
}

/// The memo's step for rule `r`: the frame size K of an SP rule (the CFA is the
/// stack pointer plus K), SWM_STEP_NONE for any other rule. SWM_STEP_NONE added to a
/// stack pointer (< 2^47) exceeds every stack top, so the walk's one bounds test also
/// sends every frame that is not an SP frame to its general step.
static inline uintptr_t swm_step_of(uintptr_t r) {
    return (r & RULE_SP) ? (uint32_t)r - RULE_SP : SWM_STEP_NONE;
}

/// Walks the stack from a caller's return address `ip`, stack pointer `sp` and frame
/// pointer `rbp` with the learned rules. `memo` is the thread's walk memo
/// (SwiftMallocShims.h): the return address, rule and step of each depth of its
/// previous walk; `max` is at most SWM_WALK_MEMO_DEPTH. The walk leaves its own
/// frames in the memo's addresses and returns their count, with their
/// swm_hash_frames in *hash, or -1 (a frame without a rule, or nothing learned yet).
static inline __attribute__((always_inline))
int swm_walk_cached(uintptr_t *memo, int max, uintptr_t ip, uintptr_t sp, uintptr_t rbp, uint64_t *hash) {
    const swm_frame_rule *t = __atomic_load_n(&swm_rules, __ATOMIC_ACQUIRE);
    uintptr_t top = swm_tls_stack_top;
    if (t == NULL || top == 0) return -1;
    uintptr_t generation = __atomic_load_n(&swm_rules_generation, __ATOMIC_ACQUIRE);
    if (__builtin_expect(memo[SWM_WALK_MEMO_GENERATION] != generation, 0)) {
        swm_walk_memo_forget(memo, SWM_WALK_MEMO_DEPTH);
        memo[SWM_WALK_MEMO_GENERATION] = generation;
    }
    // The memo is the thread's previous stack, depth by depth: its return addresses
    // (which this walk overwrites with its own: they are its result), each one's
    // rule (0: not known) and step. Where the address is the same, its step was
    // loaded before the address was, so the walk's only chain of dependent loads is
    // the stack itself. m walks the addresses; m[SWM_WALK_MEMO_RULES] is the rule of
    // *m and m[SWM_WALK_MEMO_STEPS] its step. Invariant: a step is SWM_STEP_NONE or
    // the K of its rule whenever its address is one a walk wrote; a fresh memo is all
    // zero, and 0 is no return address.
    uintptr_t *m = memo, *end = memo + max;
    // The step past the last depth ends the common loop below at `end`.
    end[SWM_WALK_MEMO_STEPS] = SWM_STEP_NONE;
    // rbp is the register as the frame at `seen_to` (stack pointer `seen_sp`) had
    // it: the first frame's, or the caller's of the last FP frame. Only an FP frame
    // needs it for its own frame, and brings it up to date by replaying the SP
    // frames since (a frame that changed rbp saved its caller's where its rule says).
    uintptr_t *seen_to = memo, seen_sp = sp;
    uint64_t h = SWM_HASH_SEED;
    for (;;) {
        // The common frame: an SP rule (K >= 8 and a multiple of 8, so the read lies
        // in [sp, top) and stays 8-byte aligned), from the memo when the address is
        // the one seen last time at this depth. Leaves at `end`, at any other rule,
        // and at a frame the memo and the table's first probe do not know.
        for (;;) {
            if (__builtin_expect(*m != ip, 0)) {
                if (m >= end) break;
                const swm_frame_rule *e = &t[swm_rule_slot(ip)];
                if (__atomic_load_n(&e->ip, __ATOMIC_ACQUIRE) != ip) break;
                uintptr_t r = e->rule;
                m[0] = ip;
                m[SWM_WALK_MEMO_RULES] = r;
                m[SWM_WALK_MEMO_STEPS] = swm_step_of(r);
            }
            uintptr_t cfa = sp + m[SWM_WALK_MEMO_STEPS];
            if (__builtin_expect(cfa > top, 0)) break;
            h = swm_hash_step(h, ip);
            m++;
            sp = cfa;
            ip = ((const uintptr_t *)sp)[-1];
        }
        if (m >= end) break;
        // Any other frame: a new address, a forgotten rule, an FP or the last frame,
        // or an SP frame whose CFA lies above the stack top.
        uintptr_t r;
        if (*m != ip || (r = m[SWM_WALK_MEMO_RULES]) == 0) {
            r = swm_rule_find(t, ip);
            if (__builtin_expect(r == 0, 0)) return -1;
            m[0] = ip;
            m[SWM_WALK_MEMO_RULES] = r;
            m[SWM_WALK_MEMO_STEPS] = swm_step_of(r);
        }
        h = swm_hash_step(h, ip);
        m++;
        uintptr_t cfa;
        if (r & RULE_SP) {
            cfa = sp + (uint32_t)r - RULE_SP;
        } else if (r == RULE_FP) {
            // The frames from seen_to to this one (m - 1) are SP frames, each read
            // already (its CFA at most sp), so every load here lies in [seen_sp, sp].
            uintptr_t s = seen_sp;
            for (uintptr_t *f = seen_to; f < m - 1; f++) {
                uintptr_t fr = f[SWM_WALK_MEMO_RULES];
                uintptr_t c = s + (uint32_t)fr - RULE_SP;
                if (fr & RULE_CLOBBERS) {
                    uintptr_t w = (fr >> RULE_SAVE_SHIFT) & RULE_SAVE_MASK;
                    if (w == 0) return -1;
                    rbp = ((const uintptr_t *)c)[-(intptr_t)w];
                }
                s = c;
            }
            if (s != sp || rbp < sp || rbp > top - 16 || (rbp & 7)) return -1;
            cfa = rbp + 16;
            rbp = ((const uintptr_t *)rbp)[0];
            seen_to = m;
            seen_sp = cfa;
        } else if (r == RULE_LAST) {
            break;
        } else {
            return -1;
        }
        if (cfa > top) return -1;
        sp = cfa;
        ip = ((const uintptr_t *)sp)[-1];
    }
    int n = (int)(m - memo);
    *hash = swm_hash_finish(h, n);
    return n;
}

#endif
