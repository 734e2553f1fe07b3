// A deterministic generator for synthetic event logs, shared (with `include!`) by the
// exactness test and the criterion bench, which build the logs as
// `cif_core::features::EventLogColumns`.

/// xorshift64*: deterministic, no dependency.
#[allow(dead_code)]
struct Rng(u64);

#[allow(dead_code)]
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability p.
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// 10^u with u uniform in [lo, hi).
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        10f64.powf(lo + (hi - lo) * self.unit())
    }
}
