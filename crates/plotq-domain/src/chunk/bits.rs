//! The bit stream of version-2 chunks: a writer and a bounds-checked reader of
//! most-significant-bit-first fields, Exp-Golomb codes of order `k` and the choice of
//! `k` that makes a list of numbers shortest. The reader never reads past its input and
//! never panics: every read answers `None` when the stream is too short or a code is
//! longer than any the writer makes.

/// Largest Exp-Golomb order written or accepted.
pub(super) const MAX_ORDER: u32 = 55;
/// Every coded number is below this (so a code's value part fits 57 bits).
pub(super) const CODE_LIMIT: u64 = 1 << 56;

/// Appends bit fields, most significant bit first.
#[derive(Default)]
pub(super) struct BitWriter {
    out: Vec<u8>,
    /// The pending bits, in the low `pending` bits (fewer than 64 between calls).
    acc: u64,
    pending: u32,
}

impl BitWriter {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        Self {
            out: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Writes the low `bits` (≤ 64) bits of `value` (its other bits zero).
    #[inline(always)]
    pub(super) fn put(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 64 && (bits == 64 || value >> bits == 0));
        if bits == 0 {
            return;
        }
        let room = 64 - self.pending;
        if bits < room {
            self.acc = (self.acc << bits) | value;
            self.pending += bits;
        } else {
            // Fill the accumulator, spill its 64 bits, keep the rest of `value`.
            let rest = bits - room;
            let head = if room == 64 { 0 } else { self.acc << room };
            self.out
                .extend_from_slice(&(head | (value >> rest)).to_be_bytes());
            self.acc = if rest == 0 {
                0
            } else {
                value & (u64::MAX >> (64 - rest))
            };
            self.pending = rest;
        }
    }

    /// Writes `u` (< [`CODE_LIMIT`]) as an Exp-Golomb code of order `k` (≤ [`MAX_ORDER`]):
    /// `x = u + 2^k` in binary, after as many zeros as `x` has bits past `k + 1`.
    #[inline(always)]
    pub(super) fn put_code(&mut self, u: u64, k: u32) {
        debug_assert!(u < CODE_LIMIT && k <= MAX_ORDER);
        let x = u + (1 << k);
        let width = 64 - x.leading_zeros();
        let zeros = width - k - 1;
        if zeros + width <= 64 {
            // The zeros are `x`'s own leading zeros in a field of `zeros + width` bits.
            self.put(x, zeros + width);
        } else {
            self.put(0, zeros);
            self.put(x, width);
        }
    }

    /// The bytes, the last one padded with zero bits.
    pub(super) fn finish(mut self) -> Vec<u8> {
        let bytes = self.pending.div_ceil(8);
        if bytes > 0 {
            let aligned = self.acc << (64 - self.pending);
            self.out
                .extend_from_slice(&aligned.to_be_bytes()[..bytes as usize]);
        }
        self.out
    }
}

/// Reads bit fields written by [`BitWriter`].
pub(super) struct BitReader<'a> {
    bytes: &'a [u8],
    /// The next byte to load into `buf`.
    next: usize,
    /// The next bits, most significant first: `avail` of them loaded; the bits after
    /// them are the stream's following bits or zeros.
    buf: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            next: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Loads whole bytes until at least 56 bits are available or the input ends.
    #[inline(always)]
    fn refill(&mut self) {
        if self.avail >= 56 {
            return;
        }
        if let Some(eight) = self.bytes.get(self.next..self.next + 8) {
            let word = u64::from_be_bytes(eight.try_into().expect("8 bytes"));
            self.buf |= word >> self.avail;
            let taken = (63 - self.avail) / 8;
            self.next += taken as usize;
            self.avail += taken * 8;
        } else {
            while self.avail <= 56 && self.next < self.bytes.len() {
                self.buf |= u64::from(self.bytes[self.next]) << (56 - self.avail);
                self.avail += 8;
                self.next += 1;
            }
        }
    }

    /// Drops `bits` (≤ `avail`, < 64) read bits.
    #[inline(always)]
    fn consume(&mut self, bits: u32) {
        self.buf <<= bits;
        self.avail -= bits;
    }

    /// Reads `bits` (≤ 56) bits.
    #[inline(always)]
    pub(super) fn take(&mut self, bits: u32) -> Option<u64> {
        debug_assert!(bits <= 56);
        if bits == 0 {
            return Some(0);
        }
        self.refill();
        if bits > self.avail {
            return None;
        }
        let value = self.buf >> (64 - bits);
        self.consume(bits);
        Some(value)
    }

    /// Reads up to 64 bits.
    pub(super) fn take_long(&mut self, bits: u32) -> Option<u64> {
        if bits > 32 {
            let high = self.take(bits - 32)?;
            Some(high << 32 | self.take(32)?)
        } else {
            self.take(bits)
        }
    }

    /// Reads an Exp-Golomb code of order `k` (≤ [`MAX_ORDER`]); `None` for a code longer
    /// than [`BitWriter::put_code`] writes or past the end.
    #[inline(always)]
    pub(super) fn take_code(&mut self, k: u32) -> Option<u64> {
        self.refill();
        let zeros = self.buf.leading_zeros();
        if zeros > MAX_ORDER + 1 - k {
            return None;
        }
        let width = zeros + k + 1;
        let x = if zeros + width <= self.avail {
            // The whole code is loaded.
            let x = (self.buf << zeros) >> (64 - width);
            let total = zeros + width;
            if total == 64 {
                self.buf = 0;
                self.avail = 0;
            } else {
                self.consume(total);
            }
            x
        } else {
            if zeros > self.avail {
                return None;
            }
            self.consume(zeros);
            self.take_long(width)?
        };
        Some(x - (1 << k))
    }

    /// The byte the next bit is in (for error messages).
    pub(super) fn byte_pos(&self) -> usize {
        (self.next * 8 - self.avail as usize) / 8
    }

    /// Checks the stream ends here: only zero padding in the last byte. Answers the
    /// number of whole bytes left over (0 when the stream ends exactly).
    pub(super) fn finish(&self) -> Result<usize, ()> {
        let pos = self.next * 8 - self.avail as usize;
        let used = pos.div_ceil(8);
        let tail_bits = (used * 8 - pos) as u32;
        if tail_bits > 0 && self.bytes[used - 1] & ((1u8 << tail_bits) - 1) != 0 {
            return Err(());
        }
        Ok(self.bytes.len() - used)
    }
}

/// How many numbers of each bit length a list has: enough to choose the Exp-Golomb
/// order that codes the list shortest.
pub(super) struct Lengths([u64; 65]);

impl Default for Lengths {
    fn default() -> Self {
        Self([0; 65])
    }
}

impl Lengths {
    #[inline(always)]
    pub(super) fn add(&mut self, u: u64) {
        self.0[(64 - u.leading_zeros()) as usize] += 1;
    }

    /// The order that codes the numbers added (each < [`CODE_LIMIT`]) in the fewest
    /// bits, and about how many bits that is (exact but for the carry of adding `2^k`).
    pub(super) fn best_order(&self) -> (u32, u64) {
        // No order past the longest number's length codes shorter than that length.
        let longest = self.0.iter().rposition(|&c| c > 0).unwrap_or(0);
        let lengths = &self.0[..=longest];
        (0..=MAX_ORDER.min(longest as u32))
            .map(|k| {
                let k64 = u64::from(k);
                let bits = lengths
                    .iter()
                    .enumerate()
                    .map(|(length, &count)| {
                        let length = length as u64;
                        count
                            * if length <= k64 {
                                k64 + 1
                            } else {
                                2 * length - k64 - 1
                            }
                    })
                    .sum::<u64>();
                (k, bits)
            })
            .min_by_key(|&(_, bits)| bits)
            .expect("orders to try")
    }
}

pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(super) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_are_as_long_as_the_order_predicts() {
        let mut w = BitWriter::default();
        w.put_code(0, 0);
        w.put_code(1, 0);
        w.put_code(5, 2);
        // "1", "010", "01001" (5 + 4 = 9 in 4 bits after one zero)
        assert_eq!(w.finish(), [0b1010_0100, 0b1000_0000]);
    }

    #[test]
    fn over_long_codes_and_short_streams_are_refused() {
        // 64 zero bits: no code the writer makes has that many leading zeros.
        assert_eq!(BitReader::new(&[0; 8]).take_code(0), None);
        // A code that promises more bits than the stream holds.
        assert_eq!(BitReader::new(&[0b0000_0001]).take_code(0), None);
        let mut r = BitReader::new(&[0b1000_0001]);
        assert_eq!(r.take_code(0), Some(0));
        assert_eq!(r.finish(), Err(()), "a set padding bit");
    }

    proptest! {
        #[test]
        fn fields_and_codes_round_trip(
            fields in proptest::collection::vec(
                prop_oneof![
                    (0u64..CODE_LIMIT, 0u32..=MAX_ORDER).prop_map(|(u, k)| (u, k, true)),
                    (any::<u64>(), 0u32..=64).prop_map(|(v, b)| (v & u64::MAX.checked_shr(64 - b).unwrap_or(0), b, false)),
                ],
                0..100,
            )
        ) {
            let mut w = BitWriter::default();
            for &(v, k, code) in &fields {
                if code { w.put_code(v, k) } else { w.put(v, k) }
            }
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for &(v, k, code) in &fields {
                let got = if code { r.take_code(k) } else { r.take_long(k) };
                prop_assert_eq!(got, Some(v));
            }
            prop_assert_eq!(r.finish(), Ok(0));
        }

        #[test]
        fn zigzag_round_trips(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
