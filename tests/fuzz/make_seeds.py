#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py - write the seed corpus for fuzz_arena (tests/fuzz/corpus/).

Each seed is a short scenario in the harness's input encoding (see LLVMFuzzerTestOneInput and the
op_* functions in fuzz_arena.c): one byte of operation, one of arena slot, then the operation's
arguments. The seeds give libFuzzer a start in every corner worth reaching: redzones, nested and
stale marks, the rollback history limit, wipes followed by reuse, extreme sizes and alignments,
wrong pointers, three arenas with foreign marks, arenas past the first ASan poisoning step, and
arenas with NALLOC_FLAG_THREAD_CACHE (flags bit 7: 'cache_*').
Regenerate with `python3 tests/fuzz/make_seeds.py`; the output is deterministic.
"""
import os
import struct

CREATE, DESTROY, ALLOC, ALIGNED, ZEROED, MARK, ROLLBACK, RESET, WIPE, FREE, RESIZE, REALLOC, \
    REFUSED, CHECK = range(14)

# take_size selectors
def sz_zero(): return [0, 0]
def sz_one(): return [1, 0]
def sz_max(): return [2, 0]
def sz_pow2(k): return [3, k]
def sz_pow2_plus(k): return [4, k]
def sz_pow2_minus(k): return [5, k]
def sz_small(k): return [6, k]          # k + 2
def sz_u16(v): return [7, 0] + list(struct.pack('<H', v))
def sz_room(): return [8, 0]
def sz_room_plus(): return [9, 0]
def sz_room_minus(k): return [10, k]
def sz_u32(v): return [11, 0] + list(struct.pack('<I', v))

# take_align selectors
def al_zero(): return [0, 0]
def al_pow2(k): return [1, k]
def al_small(k): return [2, k]
def al_max(): return [3, 0]
def al_three(): return [4, 0]
def al_byte(v): return [5, v]
def al_pow2_plus(k): return [6, k]
def al_64(): return [7, 0]

CAP = {'u16': 0, '4k': 1, '4k+': 2, '64k': 3, '1m': 4, '4m+3': 5, 'pages': 6, '64m': 7}
RZ = {0: 0, 1: 3, 8: 4, 16: 5, 100: 6, 'huge': 7}


def create(slot, cap='1m', extra=None, kind=2, align_exp=6, threshold=3, large_exp=12, rz=0,
           guard=0, flags=0, u16=0):
    out = [CREATE, slot, kind, CAP[cap]]
    if cap == 'u16':
        out += list(struct.pack('<H', extra))
    elif cap in ('4k+', 'pages'):
        out += [extra]
    out += [align_exp] + list(struct.pack('<H', u16)) + [threshold, large_exp, RZ[rz], guard, flags]
    return out


def op(code, slot, *args):
    out = [code, slot]
    for a in args:
        out += a if isinstance(a, list) else [a]
    return out


def alloc(slot, size): return op(ALLOC, slot, size)
def aligned(slot, size, align): return op(ALIGNED, slot, size, align)
def zeroed(slot, count_small, size, align): return op(ZEROED, slot, size, 1, count_small, align)
def zeroed_big_count(slot, count, size, align): return op(ZEROED, slot, size, 0, count, align)
def mark(slot): return op(MARK, slot)
def rollback(slot, i): return op(ROLLBACK, slot, i)
def reset(slot): return op(RESET, slot)
def wipe(slot): return op(WIPE, slot)
def free_last(slot, variant): return op(FREE, slot, variant)
def resize(slot, variant, size): return op(RESIZE, slot, variant, size)
def realloc(slot, variant, size, align): return op(REALLOC, slot, variant, size, align)
def refused(sel, *extra): return op(REFUSED, 0, sel, *extra)
def destroy(slot): return op(DESTROY, slot)
def check(slot): return op(CHECK, slot)


SEEDS = {
    'basic': create(0) + alloc(0, sz_small(30)) + alloc(0, sz_u16(5000)) + mark(0)
    + alloc(0, sz_pow2(20)) + rollback(0, 0) + alloc(0, sz_one()) + reset(0) + alloc(0, sz_small(7))
    + wipe(0) + alloc(0, sz_small(7)) + check(0) + destroy(0),
    'redzone': create(0, rz=16) + aligned(0, sz_small(8), al_small(0)) + aligned(0, sz_small(8), al_small(0))
    + free_last(0, 0) + resize(0, 0, sz_u16(300)) + resize(0, 0, sz_small(3)) + realloc(0, 1, sz_u16(900), al_zero())
    + alloc(0, sz_one()) + realloc(0, 2, sz_u16(2000), al_64()) + mark(0) + free_last(0, 0) + rollback(0, 0),
    'redzone_odd': create(0, rz=100, align_exp=0) + aligned(0, sz_small(1), al_small(0)) + zeroed(0, 9, sz_small(5), al_zero())
    + resize(0, 1, sz_small(9)) + resize(0, 2, sz_small(9)) + free_last(0, 0) + free_last(0, 0) + reset(0),
    'redzone_huge': create(0, rz='huge') + alloc(0, sz_one()) + alloc(0, sz_max()) + resize(0, 7, sz_one()),
    'marks_nested': create(0) + mark(0) + alloc(0, sz_small(50)) + mark(0) + alloc(0, sz_small(50)) + mark(0)
    + alloc(0, sz_small(50)) + rollback(0, 2) + rollback(0, 1) + rollback(0, 2) + rollback(0, 0)
    + rollback(0, 1) + alloc(0, sz_small(1)) + mark(0) + reset(0) + rollback(0, 3),
    'marks_many_rollbacks': create(0) + sum((alloc(0, sz_small(i)) + mark(0) + alloc(0, sz_small(1)) + rollback(0, i % 8)
                                            for i in range(20)), []) + rollback(0, 0) + rollback(0, 7),
    'marks_foreign': create(0) + create(1, cap='64k') + create(2, cap='4k') + mark(0) + mark(1) + mark(2)
    + rollback(0, 9) + rollback(1, 8) + rollback(2, 9) + alloc(1, sz_room()) + alloc(2, sz_room_plus()),
    'sizes_extreme': create(0, cap='64k') + alloc(0, sz_zero()) + alloc(0, sz_max()) + alloc(0, sz_pow2(63))
    + alloc(0, sz_pow2_minus(63)) + alloc(0, sz_pow2_plus(16)) + alloc(0, sz_room_plus()) + alloc(0, sz_room())
    + alloc(0, sz_one()) + reset(0) + alloc(0, sz_room_minus(5)) + alloc(0, sz_u32(0xfffff)),
    'align_extreme': create(0, cap='64k') + aligned(0, sz_one(), al_pow2(63)) + aligned(0, sz_one(), al_max())
    + aligned(0, sz_one(), al_three()) + aligned(0, sz_one(), al_zero()) + aligned(0, sz_one(), al_pow2(16))
    + aligned(0, sz_one(), al_pow2(15)) + aligned(0, sz_small(3), al_small(0)) + aligned(0, sz_small(3), al_small(1))
    + aligned(0, sz_small(3), al_byte(48)) + aligned(0, sz_small(3), al_pow2_plus(0)) + aligned(0, sz_room(), al_small(12)),
    'zeroed_reuse': create(0) + alloc(0, sz_u16(8000)) + reset(0) + zeroed(0, 100, sz_small(60), al_zero())
    + zeroed_big_count(0, sz_max(), sz_small(0), al_zero()) + zeroed(0, 0, sz_small(1), al_zero())
    + zeroed(0, 3, sz_small(1), al_three()) + zeroed(0, 4, sz_small(2), al_pow2(12)),
    'wipe_then_reuse': create(0, flags=8) + alloc(0, sz_u16(3000)) + mark(0) + alloc(0, sz_u16(20000)) + rollback(0, 0)
    + wipe(0) + alloc(0, sz_u16(30000)) + alloc(0, sz_small(100)) + wipe(0) + wipe(0) + alloc(0, sz_u16(100)),
    'free_resize_wrong': create(0) + alloc(0, sz_small(40)) + alloc(0, sz_small(40)) + free_last(0, 1) + free_last(0, 2)
    + free_last(0, 3) + free_last(0, 4) + free_last(0, 5) + free_last(0, 6) + free_last(0, 7) + resize(0, 7, sz_small(10))
    + resize(0, 0, sz_zero()) + resize(0, 0, sz_max()) + resize(0, 0, sz_room_plus()) + resize(0, 0, sz_room())
    + mark(0) + free_last(0, 0) + resize(0, 0, sz_one()),
    'realloc_paths': create(0) + realloc(0, 0, sz_small(10), al_zero()) + realloc(0, 1, sz_small(100), al_zero())
    + realloc(0, 1, sz_small(5), al_pow2(12)) + alloc(0, sz_one()) + realloc(0, 2, sz_small(50), al_zero())
    + realloc(0, 1, sz_zero(), al_zero()) + realloc(0, 1, sz_small(3), al_three()) + realloc(0, 1, sz_room_plus(), al_zero()),
    'frontier_steps': create(0, cap='64m', flags=16) + alloc(0, sz_pow2(22)) + alloc(0, sz_small(10))
    + aligned(0, sz_pow2(23), al_small(12)) + alloc(0, sz_small(10)) + mark(0) + alloc(0, sz_pow2(24))
    + rollback(0, 0) + resize(0, 0, sz_pow2(22)) + wipe(0) + alloc(0, sz_pow2(25)),
    'small_caps': create(0, cap='u16', extra=1) + alloc(0, sz_one()) + alloc(0, sz_one())
    + create(1, cap='u16', extra=100, align_exp=12) + alloc(1, sz_one()) + create(2, cap='4k+', extra=7)
    + aligned(2, sz_room(), al_small(0)) + free_last(2, 0) + aligned(2, sz_room(), al_small(0)),
    'policy_large': create(0, cap='4m+3', threshold=5, u16=512, large_exp=15) + alloc(0, sz_u16(511)) + alloc(0, sz_u16(512))
    + alloc(0, sz_u16(4000)) + create(1, threshold=0, large_exp=0) + alloc(1, sz_small(1)) + alloc(1, sz_small(2)),
    'refused': refused(0) + refused(1) + refused(2, 5) + refused(3) + refused(4) + refused(5, 0) + refused(5, 1)
    + refused(6) + refused(7) + refused(8) + create(0) + refused(9),
    'guards_flags': create(0, cap='pages', extra=3, guard=2, flags=0x7f) + alloc(0, sz_room()) + wipe(0)
    + create(1, cap='4k', guard=1, flags=0x35) + alloc(1, sz_small(10)) + destroy(1) + destroy(0),
    'recreate': create(0) + alloc(0, sz_small(9)) + create(0, rz=8) + alloc(0, sz_small(9)) + create(0, rz=1)
    + alloc(0, sz_small(9)) + destroy(0) + create(0),
    'three_arenas_mixed': create(0, kind=0) + create(1, kind=1, rz=16) + create(2, kind=2, align_exp=0)
    + sum((alloc(s, sz_small(11 * s + 3)) + mark(s) + aligned(s, sz_small(5), al_small(s + 2)) for s in range(3)), [])
    + rollback(1, 0) + wipe(2) + reset(0) + sum((alloc(s, sz_small(1)) for s in range(3)), []),
    # NALLOC_FLAG_THREAD_CACHE (flags bit 7): one thread's layout is the same; the model follows the
    # chunk (growth in place, requests that bypass it, marks that take it back, trims).
    'cache_basic': create(0, flags=0x80) + alloc(0, sz_small(30)) + alloc(0, sz_u16(5000)) + mark(0)
    + alloc(0, sz_small(30)) + rollback(0, 0) + alloc(0, sz_one()) + reset(0) + alloc(0, sz_small(7))
    + wipe(0) + alloc(0, sz_small(7)) + check(0) + destroy(0),
    'cache_chunks_grow': create(0, cap='64m', flags=0x90)
    + sum((alloc(0, sz_u16(1000 + 997 * i)) for i in range(40)), []) + aligned(0, sz_u16(3000), al_small(12))
    + free_last(0, 0) + free_last(0, 0) + free_last(0, 1) + check(0),
    'cache_bypass': create(0, cap='64m', flags=0x90) + alloc(0, sz_small(40)) + alloc(0, sz_pow2_plus(18))
    + alloc(0, sz_small(40)) + free_last(0, 0) + free_last(0, 0) + alloc(0, sz_small(3))
    + alloc(0, sz_pow2(20)) + resize(0, 0, sz_small(1)) + alloc(0, sz_small(9)) + mark(0)
    + alloc(0, sz_pow2_plus(19)) + rollback(0, 0) + alloc(0, sz_small(9)),
    'cache_free_resize': create(0, cap='64m', flags=0x90) + alloc(0, sz_small(100)) + free_last(0, 0)
    + alloc(0, sz_u16(3000)) + resize(0, 0, sz_u16(9000)) + resize(0, 0, sz_pow2(21)) + resize(0, 0, sz_one())
    + realloc(0, 1, sz_u16(40000), al_zero()) + realloc(0, 2, sz_u16(500), al_zero()) + free_last(0, 1)
    + free_last(0, 2) + resize(0, 7, sz_small(10)) + resize(0, 1, sz_small(1)) + free_last(0, 7)
    + mark(0) + free_last(0, 0) + alloc(0, sz_small(2)) + free_last(0, 0) + free_last(0, 0),
    'cache_trim': create(0, cap='64m', rz=100, flags=0x90) + alloc(0, sz_u16(3000)) + resize(0, 0, sz_pow2(21))
    + resize(0, 0, sz_one()) + realloc(0, 1, sz_u16(40000), al_zero()) + free_last(0, 0) + alloc(0, sz_small(9))
    + resize(0, 0, sz_pow2(22)) + free_last(0, 0) + alloc(0, sz_small(9)) + check(0),
    'cache_exhaust': create(0, cap='64k', flags=0x80) + alloc(0, sz_u16(3000)) + alloc(0, sz_room_minus(9))
    + alloc(0, sz_room_plus()) + alloc(0, sz_room()) + free_last(0, 0) + aligned(0, sz_room(), al_small(6))
    + reset(0) + alloc(0, sz_room_plus()) + alloc(0, sz_room()) + alloc(0, sz_one())
    + create(1, cap='4k+', extra=200, flags=0x80) + alloc(1, sz_u16(4000)) + alloc(1, sz_room())
    + alloc(1, sz_room_plus()) + resize(1, 0, sz_room_plus()) + resize(1, 0, sz_room()),
    'cache_marks': create(0, flags=0x80) + mark(0) + alloc(0, sz_small(50)) + mark(0) + alloc(0, sz_u16(6000))
    + mark(0) + alloc(0, sz_small(50)) + rollback(0, 2) + alloc(0, sz_u16(9000)) + rollback(0, 1)
    + rollback(0, 2) + alloc(0, sz_small(3)) + free_last(0, 0) + rollback(0, 0) + rollback(0, 1)
    + alloc(0, sz_small(1)) + mark(0) + free_last(0, 0) + reset(0) + rollback(0, 3)
    + sum((alloc(0, sz_u16(700 * i + 1)) + mark(0) + alloc(0, sz_small(1)) + rollback(0, i % 8)
           for i in range(1, 12)), []),
    'cache_redzone': create(0, rz=16, flags=0x80) + aligned(0, sz_small(8), al_small(0))
    + aligned(0, sz_small(8), al_small(0)) + free_last(0, 0) + resize(0, 0, sz_u16(300))
    + resize(0, 0, sz_small(3)) + realloc(0, 1, sz_u16(900), al_zero()) + alloc(0, sz_u16(5000))
    + realloc(0, 2, sz_u16(2000), al_64()) + mark(0) + free_last(0, 0) + rollback(0, 0),
    'cache_wipe': create(0, flags=0x88) + alloc(0, sz_u16(3000)) + free_last(0, 0) + alloc(0, sz_u16(100))
    + wipe(0) + zeroed(0, 200, sz_small(10), al_zero()) + alloc(0, sz_u16(30000)) + wipe(0) + wipe(0)
    + alloc(0, sz_u16(100)) + zeroed(0, 10, sz_small(60), al_pow2(12)),
    'cache_three': create(0, flags=0x80) + create(1, rz=8, flags=0x80) + create(2, cap='64k')
    + sum((alloc(s, sz_small(11 * s + 3)) + mark(s) + aligned(s, sz_u16(3000), al_small(s + 4)) for s in range(3)), [])
    + rollback(0, 9) + rollback(1, 0) + wipe(2) + reset(0) + sum((alloc(s, sz_u16(5000)) for s in range(3)), [])
    + destroy(1) + create(1, flags=0x80) + alloc(1, sz_one()),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, 'seed-' + name), 'wb') as f:
            f.write(bytes(b & 0xff for b in data))
    print(f'{len(SEEDS)} seeds in {out}')


if __name__ == '__main__':
    main()
