// A cached stack walker for full profiling. libunwind finds each caller by looking
// up the DWARF call-frame information of every return address, every time: about
// 80 instructions per frame. But at a given return address the caller's frame has
// one shape, so its rule can be learned once — from libunwind itself, never from a
// parser of ours — and replayed with two loads per frame:
//
//   SP rule:  CFA = sp + K (K constant at that return address), next ip = *(CFA - 8)
//   FP rule:  CFA = rbp + 16, next ip = *(rbp + 8), caller's rbp = *rbp
//             (a frame-pointer frame; right even when it uses alloca)
//   last:     the outermost frame (libunwind's walk ended there)
//
// A rule is one word: K (a positive multiple of 8) plus its kind in the low bits,
// so an SP rule yields the CFA with one add, and one test tells it from the others:
// sp + rule - 1 is 8-byte aligned exactly for an SP rule. A frame that does not
// leave rbp as its caller had it (rbp is then no frame pointer for an FP rule
// further out) carries a flag in the rule's upper half, which only an FP frame
// looks for.
//
// A walk that meets a return address with no rule, or whose next frame would lie
// outside the part of this thread's stack that libunwind has walked, gives up; the
// caller then walks with libunwind and learns the rules of that stack. Every read
// is bounded by [sp, top of the walked stack], so a wrong rule (code unloaded and
// replaced at the same address) can give a wrong stack but never a fault.
//
// Rules live in a fixed open-addressing table mapped on first use (256 KiB),
// written under a lock, read without one: an entry's rule is stored before its
// return address is published (release), and a reader loads the address first
// (acquire). Nothing here allocates.
#define _GNU_SOURCE 1
#include "SwiftMallocShims.h"
#include <dlfcn.h>

/// Rules: K | RULE_SP (K < 2^32), with RULE_CLOBBERS when the frame does not leave
/// rbp as its caller had it; RULE_FP; RULE_LAST. 0 is no rule.
#define RULE_CLOBBERS ((uintptr_t)1 << 62)
enum { RULE_SP = 1, RULE_FP = 2, RULE_LAST = 4 };
enum { RULE_BITS = 14, RULE_SLOTS = 1 << RULE_BITS, RULE_MAX_USED = RULE_SLOTS / 4 * 3 };

typedef struct { uintptr_t ip, rule; } swm_frame_rule;

static swm_frame_rule *swm_rules;
static int32_t swm_rules_lock;
static unsigned swm_rules_used;
/// Highest stack address this thread's walks may read below: the stack pointer of
/// the outermost frame libunwind reached on this thread (0: not learned yet).
static __thread uintptr_t swm_tls_stack_top __attribute__((tls_model("initial-exec")));

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

/// In a forked child: another thread may have held the rule lock at fork(). Rules
/// are published whole (address last), so the table itself is consistent.
void swm_stackwalk_fork_child(void) { swm_lock_reset(&swm_rules_lock); }

int swm_walk_cached(uintptr_t *memo, int max, uintptr_t ip, uintptr_t sp, uintptr_t rbp, uint64_t *hash) {
    const swm_frame_rule *t = __atomic_load_n(&swm_rules, __ATOMIC_ACQUIRE);
    uintptr_t top = swm_tls_stack_top;
    if (t == NULL || top == 0) return -1;
    // The memo is the thread's previous stack, depth by depth: its return addresses
    // (which this walk overwrites with its own: they are its result) and each one's
    // rule, or 0. Where the address is the same, its rule was loaded before the
    // address was, so the walk's only chain of dependent loads is the stack itself.
    // m walks the addresses; m[SWM_WALK_MEMO_DEPTH] is the rule of *m.
    uintptr_t *m = memo, *end = memo + max;
    // rbp is trusted only while every frame walked since the first kept it: no
    // RULE_CLOBBERS in the OR of their rules, `seen`, kept up to `seen_to` (the
    // frames before it), which only an FP frame needs.
    uintptr_t seen = 0, *seen_to = memo;
    uint64_t h = SWM_HASH_SEED;
    for (;;) {
        // The common frame: the address the memo has, with an SP rule (8-byte
        // aligned after the add; K >= 8, so the read lies in [sp, top)).
        while (m < end && *m == ip) {
            uintptr_t cfa = sp + (uint32_t)m[SWM_WALK_MEMO_DEPTH] - RULE_SP;
            if (__builtin_expect(cfa & 7, 0)) break;
            if (__builtin_expect(cfa > top, 0)) return -1;
            h = swm_hash_step(h, ip);
            m++;
            sp = cfa;
            ip = ((const uintptr_t *)sp)[-1];
        }
        if (m >= end) break;
        // Any other frame: a new address, a forgotten rule, an FP or the last frame.
        uintptr_t r;
        if (*m != ip || (r = m[SWM_WALK_MEMO_DEPTH]) == 0) {
            r = swm_rule_find(t, ip);
            if (__builtin_expect(r == 0, 0)) return -1;
            m[0] = ip;
            m[SWM_WALK_MEMO_DEPTH] = r;
        }
        h = swm_hash_step(h, ip);
        m++;
        uintptr_t cfa;
        if (__builtin_expect(r & RULE_SP, 1)) {
            cfa = sp + (uint32_t)r - RULE_SP;
        } else if (r == RULE_FP) {
            while (seen_to < m) seen |= seen_to[SWM_WALK_MEMO_DEPTH], seen_to++;
            if ((seen & RULE_CLOBBERS) || rbp < sp || rbp > top - 16 || (rbp & 7)) return -1;
            cfa = rbp + 16;
            rbp = ((const uintptr_t *)rbp)[0];
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

void swm_walk_memo_forget(uintptr_t *memo, int n) {
    uintptr_t *rules = memo + SWM_WALK_MEMO_DEPTH;
    for (int i = 0; i < n && i < SWM_WALK_MEMO_DEPTH; i++) rules[i] = 0;
}

#if defined(__x86_64__) && __has_include(<libunwind.h>)
#define UNW_LOCAL_ONLY
#include <libunwind.h>

typedef int (*swm_getcontext_fn)(unw_context_t *);
typedef int (*swm_init_local_fn)(unw_cursor_t *, unw_context_t *);
typedef int (*swm_step_fn)(unw_cursor_t *);
typedef int (*swm_get_reg_fn)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
static swm_getcontext_fn swm_unw_getcontext;
static swm_init_local_fn swm_unw_init_local;
static swm_step_fn swm_unw_step;
static swm_get_reg_fn swm_unw_get_reg;

void swm_stackwalk_open(void *libunwind) {
    if (libunwind == NULL) return;
    swm_unw_getcontext = (swm_getcontext_fn)dlsym(libunwind, "_Ux86_64_getcontext");
    swm_unw_init_local = (swm_init_local_fn)dlsym(libunwind, "_ULx86_64_init_local");
    swm_unw_step = (swm_step_fn)dlsym(libunwind, "_ULx86_64_step");
    swm_unw_get_reg = (swm_get_reg_fn)dlsym(libunwind, "_ULx86_64_get_reg");
}

/// The rule of frame a, from a and its caller b as libunwind unwound them; 0 when
/// the frame does not fit either rule (signal frames, odd code).
static uintptr_t swm_rule_of(uintptr_t sp_a, uintptr_t bp_a, uintptr_t ip_b, uintptr_t sp_b, uintptr_t bp_b) {
    uintptr_t k = sp_b - sp_a;
    if (sp_b <= sp_a || k > (1u << 20) || (k & 7)) return 0;
    if (((const uintptr_t *)sp_b)[-1] != ip_b) return 0;
    if (bp_a == sp_b - 16 && ((const uintptr_t *)bp_a)[0] == bp_b) return RULE_FP;
    return k | RULE_SP | (bp_a == bp_b ? 0 : RULE_CLOBBERS);
}

static void swm_rule_add(uintptr_t ip, uintptr_t rule) {
    if (rule == 0 || ip == 0) return;
    swm_frame_rule *t = swm_rules;
    unsigned i = swm_rule_slot(ip);
    while (t[i].ip != 0) {
        if (t[i].ip == ip) return;
        i = (i + 1) & (RULE_SLOTS - 1);
    }
    if (swm_rules_used >= RULE_MAX_USED) return;
    t[i].rule = rule;
    __atomic_store_n(&t[i].ip, ip, __ATOMIC_RELEASE);
    swm_rules_used++;
}

static int swm_map_rules(void) {
    if (__atomic_load_n(&swm_rules, __ATOMIC_ACQUIRE) != NULL) return 1;
    swm_lock(&swm_rules_lock);
    if (swm_rules == NULL) {
        void *m = mmap(NULL, sizeof(swm_frame_rule) * RULE_SLOTS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) __atomic_store_n(&swm_rules, (swm_frame_rule *)m, __ATOMIC_RELEASE);
    }
    swm_unlock(&swm_rules_lock);
    return swm_rules != NULL;
}

/// Walks the calling thread's stack with libunwind's cursor API, returns up to
/// `max` return addresses from the first frame outside this library, and learns the
/// rules of the frames walked (at most 128). -1 when the cursor API is missing.
/// The rules are added after the walk: libunwind may take the loader's lock, which
/// a thread allocating inside dlopen holds, so no lock of ours is held during it.
int swm_walk_learn(uintptr_t *frames, int max) {
    if (swm_unw_step == NULL || swm_unw_getcontext == NULL || swm_unw_init_local == NULL || swm_unw_get_reg == NULL)
        return -1;
    if (!swm_map_rules()) return -1;
    if (!swm_unwind_enter()) return -1;
    unw_context_t context;
    unw_cursor_t cursor;
    if (swm_unw_getcontext(&context) != 0 || swm_unw_init_local(&cursor, &context) != 0) {
        swm_unwind_leave();
        return -1;
    }
    enum { walk_limit = 128 };
    swm_frame_rule learned[walk_limit];
    int n = 0, count = 0, ended = 0, walked = 0, have_prev = 0;
    uintptr_t prev_ip = 0, prev_sp = 0, prev_bp = 0;
    while (walked < walk_limit + 8) {
        unw_word_t ip = 0, sp = 0, bp = 0;
        swm_unw_get_reg(&cursor, UNW_REG_IP, &ip);
        swm_unw_get_reg(&cursor, UNW_REG_SP, &sp);
        swm_unw_get_reg(&cursor, UNW_X86_64_RBP, &bp);
        walked++;
        if (have_prev || !swm_is_self_frame(ip)) {
            if (have_prev) {
                learned[count].ip = prev_ip;
                learned[count].rule = swm_rule_of(prev_sp, prev_bp, ip, sp, bp);
                count++;
            }
            if (n < max) frames[n++] = ip;
            have_prev = 1;
            prev_ip = ip, prev_sp = sp, prev_bp = bp;
            if (count == walk_limit - 1) break;
        }
        int s = swm_unw_step(&cursor);
        if (s <= 0) { ended = s == 0; break; }
    }
    swm_unwind_leave();
    if (ended && have_prev) {
        learned[count].ip = prev_ip;
        learned[count].rule = RULE_LAST;
        count++;
        if (prev_sp > swm_tls_stack_top) swm_tls_stack_top = prev_sp;
    }
    swm_lock(&swm_rules_lock);
    for (int i = 0; i < count; i++) swm_rule_add(learned[i].ip, learned[i].rule);
    swm_unlock(&swm_rules_lock);
    return n;
}
#else
void swm_stackwalk_open(void *libunwind) { (void)libunwind; }
int swm_walk_learn(uintptr_t *frames, int max) { (void)frames; (void)max; return -1; }
#endif
