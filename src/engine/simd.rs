//! Run-time choice of vector instructions for the hot loops.
//!
//! The release binary is built for the baseline x86-64 so that one image runs anywhere (Docker);
//! the few loops that dominate sampling and fitting are compiled again for AVX2 and AVX-512 and
//! the best level the CPU reports is used.

/// The vector instructions of the running CPU, detected once. The dense hot loops are compiled
/// once per level and the best one the CPU has runs, so one portable binary (no `target-cpu`)
/// still updates fields 4 or 8 at a time. Every level performs the same IEEE operations in the
/// same order (a multiply by ±2, which is exact, then one add; no fused multiply-add), so results
/// are bit for bit the same whichever level runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    Base,
    Avx2,
    Avx512,
}

/// The level the hot loops use: the best the CPU has, or a lower one named by the environment
/// variable `BOUNDSTATE_SIMD` (`base`, `avx2`, `avx512`), which benchmarks use to show the gain.
pub fn simd() -> Simd {
    static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = detected();
        match std::env::var("BOUNDSTATE_SIMD").as_deref() {
            Ok("base") => Simd::Base,
            Ok("avx2") if best >= Simd::Avx2 => Simd::Avx2,
            _ => best,
        }
    })
}

/// Every level the CPU can run, lowest first.
pub fn available() -> Vec<Simd> {
    let best = detected();
    [Simd::Base, Simd::Avx2, Simd::Avx512]
        .into_iter()
        .filter(|&l| l <= best)
        .collect()
}

pub(crate) fn detected() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::Base
}

/// Defines `fn $name` (the body compiled for the CPU's best [`Simd`] level) and `fn $at` (the same
/// at a given level, which the CPU must have). The body is written once, as an `#[inline(always)]`
/// inner function that each level's wrapper compiles with its own target features.
macro_rules! simd_dispatch {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident / $at:ident <$(const $g:ident: bool),*>($($a:ident: $t:ty),* $(,)?) -> $r:ty $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments, clippy::unused_unit)]
        #[inline]
        $vis fn $name<$(const $g: bool),*>($($a: $t),*) -> $r {
            $at::<$($g),*>($crate::engine::simd::simd(), $($a),*)
        }

        /// The same computation at a given level (which the CPU must have).
        #[allow(clippy::too_many_arguments, clippy::unused_unit, dead_code)]
        $vis fn $at<$(const $g: bool),*>(level: $crate::engine::simd::Simd, $($a: $t),*) -> $r {
            #[inline(always)]
            #[allow(clippy::too_many_arguments, clippy::unused_unit)]
            fn imp<$(const $g: bool),*>($($a: $t),*) -> $r $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments, clippy::unused_unit)]
                fn avx512<$(const $g: bool),*>($($a: $t),*) -> $r {
                    imp::<$($g),*>($($a),*)
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments, clippy::unused_unit)]
                fn avx2<$(const $g: bool),*>($($a: $t),*) -> $r {
                    imp::<$($g),*>($($a),*)
                }
                assert!(
                    level <= $crate::engine::simd::detected(),
                    "this CPU does not have {level:?}"
                );
                // SAFETY: the CPU has the level's features (checked above). This is the crate's
                // only unsafe code (the lint is `deny`, allowed here alone).
                #[allow(unsafe_code)]
                match level {
                    $crate::engine::simd::Simd::Avx512 => return unsafe { avx512::<$($g),*>($($a),*) },
                    $crate::engine::simd::Simd::Avx2 => return unsafe { avx2::<$($g),*>($($a),*) },
                    $crate::engine::simd::Simd::Base => {}
                }
            }
            let _ = level;
            imp::<$($g),*>($($a),*)
        }
    };
}

pub(crate) use simd_dispatch;
