//! What the store's memory costs.
//!
//! `usage().bytes` estimates the heap the store holds from the layouts of what it keeps
//! (sizes from `size_of`, so they follow the compiler) and three rules of the platform,
//! all checked against the process's resident memory by
//! `counted_bytes_follow_resident_memory` (many one-sample series, and one series of
//! many samples):
//! - glibc's malloc (x86-64, aarch64) serves a request of n bytes with a chunk of n plus
//!   its 8-byte header, rounded up to 16, at least 32 (`allocation`).
//! - A std B-tree node has room for 11 keys and values (an internal node also for 12
//!   edges) whatever its fill. Keys appended in order — time moving on, the usual case —
//!   leave each full leaf with 6 entries and one separator above it, so a map of n > 11
//!   entries has ~n/7 leaves and ~1/6 as many internal nodes (`btree_bytes`); random
//!   order fills nodes better, so this errs high.
//! - A std `HashMap` (hashbrown) has a power-of-two number of buckets, at most 7/8 of them
//!   used, and one control byte per bucket plus 16 in one allocation (`table_bytes`);
//!   while it grows, the old and the new tables are both held for a moment.
//!
//! A series with one sample costs its key (32), its share of the table (~75–150), a raw
//! leaf (464) with its chunk list (32) and chunk (32), a rollup leaf (288) and packed
//! rollup (48): ~1 KiB. A sample in a long series costs its encoded bytes (~2 with few decimals, ~9 without) and,
//! per minute, its share of the nodes (~70 + ~40) and the packed rollup.

use std::mem::size_of;

/// Bytes a malloc of `n` bytes takes (nothing for 0: Rust allocates no zero-sized block).
pub(super) const fn allocation(n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    let chunk = (n + 8).next_multiple_of(16);
    (if chunk < 32 { 32 } else { chunk }) as u64
}

/// Keys and values a B-tree node has room for (std's `CAPACITY`, `2 * B - 1`).
const BTREE_NODE_ENTRIES: usize = 11;

/// Bytes of a std B-tree leaf for `K`, `V`: parent pointer, parent index and length
/// (`u16` each), 11 keys and 11 values, padded to the pointer's alignment (the keys and
/// values here are at most 8-aligned).
pub(super) const fn btree_leaf<K, V>() -> usize {
    (size_of::<usize>()
        + 2 * size_of::<u16>()
        + BTREE_NODE_ENTRIES * (size_of::<K>() + size_of::<V>()))
    .next_multiple_of(size_of::<usize>())
}

/// Bytes of a std B-tree internal node: a leaf and 12 edges.
pub(super) const fn btree_internal<K, V>() -> usize {
    btree_leaf::<K, V>() + (BTREE_NODE_ENTRIES + 1) * size_of::<usize>()
}

/// The nodes of a `BTreeMap<K, V>` holding `len` entries (see above).
pub(super) fn btree_bytes<K, V>(len: usize) -> u64 {
    let leaves = match len {
        0 => 0,
        1..=BTREE_NODE_ENTRIES => 1,
        _ => len.div_ceil(7),
    };
    let internals = if leaves > 1 { leaves.div_ceil(6) } else { 0 };
    leaves as u64 * allocation(btree_leaf::<K, V>())
        + internals as u64 * allocation(btree_internal::<K, V>())
}

/// Buckets of a hashbrown table that reports `capacity` (7/8 of its buckets, or one
/// less than its buckets below 8). A table that lost entries may report less (the
/// slots of removed entries are not all reusable), and be counted at half its size.
pub(super) fn table_buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        1..=6 => (capacity + 1).next_power_of_two(),
        _ => (capacity / 7 * 8).next_power_of_two(),
    }
}

/// Buckets of a hashbrown table that grew to hold `items` (its `capacity_to_buckets`).
pub(super) fn buckets_for(items: usize) -> usize {
    match items {
        0 => 0,
        1..=3 => 4,
        4..=7 => 8,
        8..=14 => 16,
        _ => (items * 8 / 7).next_power_of_two(),
    }
}

/// Bytes of a hashbrown table of `T` with `buckets` buckets: the entries (padded to the
/// 16-byte group), one control byte each, and one more group.
pub(super) fn table_bytes<T>(buckets: usize) -> u64 {
    if buckets == 0 {
        return 0;
    }
    allocation((buckets * size_of::<T>()).next_multiple_of(16) + buckets + 16)
}

/// Bytes a table of `T` holding `len` of `capacity` grows by when `adding` more arrive.
pub(super) fn table_growth<T>(len: usize, capacity: usize, adding: usize) -> u64 {
    if len + adding <= capacity {
        return 0;
    }
    let grown = buckets_for((len + adding).max(capacity + 1));
    table_bytes::<T>(grown).saturating_sub(table_bytes::<T>(table_buckets(capacity)))
}
