#pragma once
// Counter-based uniforms for the replay sample (DESIGN decision 3, SPEC 8.3): every uniform is a
// pure function of (seed, sample call, stream, sample index), so a seed reproduces each batch
// whatever the thread count, a CUDA thread can draw its own sample's uniforms without a shared
// state, and pyrl.reference recomputes the very same values (reference.counter_uniforms).
//
//   key   = mix(mix(seed) ^ call)
//   u     = (mix(key ^ mix(stream << 40 ^ index)) >> 11) * 2^-53        in [0, 1)
//
// mix is SplitMix64's finaliser (Steele et al. 2014), a bijection on 64 bits whose outputs over
// a counter pass BigCrush. Streams keep the draws of one sample independent of each other.
#include <cstdint>

#include "macros.h"

namespace pyrl::kernels {

enum DrawStream : uint64_t {
  kDrawRow = 0,    // the stratified position inside the sample's stratum of priority mass (a
                   // uniform buffer: attempt a of sample j draws index a * count + j)
  kDrawRelabel,    // HER: relabel this sample? (u < k / (k + 1))
  kDrawGoal,       // HER: which step's achieved goal becomes the goal
  kDrawLookahead,  // floating n-step: k = 1 + floor(u n)
  kDrawStreams
};

// Direct draws of a uniform buffer: attempts per sample before it falls back to the descent,
// and the fill below which it descends at once: under 1/kDirectMinFill of the ring holding
// transitions, most attempts would miss (each a cache miss in a large ring).
constexpr int64_t kDirectTries = 16;
constexpr int64_t kDirectMinFill = 4;

PYRL_HD inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The key of one sample call of a buffer seeded with `seed`.
PYRL_HD inline uint64_t draw_key(uint64_t seed, uint64_t call) { return mix64(mix64(seed) ^ call); }

PYRL_HD inline double counter_uniform(uint64_t key, uint64_t stream, uint64_t index) {
  const uint64_t bits = mix64(key ^ mix64((stream << 40) ^ index));
  return static_cast<double>(bits >> 11) * 0x1p-53;
}

}  // namespace pyrl::kernels
