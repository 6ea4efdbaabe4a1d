//! Byte-level mutations for the wire decoders' never-panic tests: a fixed-seed xorshift
//! generator, and samples changed by replaced bytes, inserted bytes and cut-off ends.

/// A repeatable source of mutations.
pub(crate) struct Mutator {
    state: u64,
}

impl Mutator {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next pseudo-random number (xorshift64).
    pub(crate) fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// `sample` with one to four mutations: a byte replaced by any byte, a byte of `alphabet`
    /// inserted, or the rest cut off.
    pub(crate) fn mutate(&mut self, sample: &[u8], alphabet: &[u8]) -> Vec<u8> {
        let mut wire = sample.to_vec();
        for _ in 0..(self.next() % 4 + 1) {
            let at = (self.next() as usize) % (wire.len() + 1);
            match self.next() % 3 {
                0 if at < wire.len() => wire[at] = self.next() as u8,
                1 => wire.insert(at, alphabet[(self.next() % alphabet.len() as u64) as usize]),
                _ => wire.truncate(at),
            }
        }
        wire
    }
}
