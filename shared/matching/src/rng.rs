//! A small seeded random-number generator (splitmix64): training draws its
//! random pairs with it, and the synthetic population of the benchmarks
//! (crate `synthetic-population`) is made with it, so one seed always gives
//! the same pairs and the same people.

/// splitmix64: tiny, fast, and good enough for synthetic data.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed ^ 0x6A09_E667_F3BC_C908,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi - lo) as usize + 1) as u32
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A value from `(value, probability)` pairs (the last takes the rest).
    pub fn weighted<T: Copy>(&mut self, table: &[(T, f64)]) -> T {
        let mut u = self.unit();
        for (value, p) in table {
            if u < *p {
                return *value;
            }
            u -= p;
        }
        table[table.len() - 1].0
    }
}
