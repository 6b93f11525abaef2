package flows

import "math/rand/v2"

// Key is an explicit, splittable source of randomness in the spirit of JAX's
// PRNG keys. A Key is a value: copying it copies the stream it stands for,
// and nothing in this package keeps random state anywhere else.
//
// Everything random in the library (initial weights, permutations, samples)
// takes a Key. The same Key gives the same numbers, bit for bit, on every
// platform and for every GOMAXPROCS. Use a Key once: to make several random
// things, Split it first and give each thing its own sub-key.
//
// The zero Key is valid: it stands for a fixed stream of its own (not the
// same as NewKey(0)).
type Key struct {
	hi, lo uint64
}

// NewKey returns the Key for seed.
func NewKey(seed uint64) Key {
	// Two rounds of splitmix64 spread nearby seeds over the whole state.
	return Key{hi: mix64(seed ^ 0x9e3779b97f4a7c15), lo: mix64(seed + 0x632be59bd9b4e019)}
}

// mix64 is the splitmix64 finaliser: a bijection of uint64 with full avalanche.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Fold returns a new Key derived from k and data, the way JAX's fold_in
// does: Fold(k, i) for distinct i gives independent keys. Split uses it.
func (k Key) Fold(data uint64) Key {
	a := mix64(k.hi ^ mix64(data+0x9e3779b97f4a7c15))
	b := mix64(k.lo ^ mix64(data^0xd1b54a32d192ed03) ^ a)
	return Key{hi: a, lo: b}
}

// Split returns n independent keys derived from k. Split(k, n)[i] does not
// depend on n, so asking for more keys later never changes the first ones.
// It panics if n is negative.
func (k Key) Split(n int) []Key {
	if n < 0 {
		panic("flows: negative key count")
	}
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = k.Fold(uint64(i))
	}
	return keys
}

// Split2 returns two independent keys derived from k: a shorthand for
// Split(2) when one key goes on and one is used now.
func (k Key) Split2() (Key, Key) {
	return k.Fold(0), k.Fold(1)
}

// Rand returns a new generator whose stream is determined by k alone
// (a PCG generator from math/rand/v2 seeded with the key's state).
func (k Key) Rand() *rand.Rand {
	return rand.New(rand.NewPCG(k.hi, k.lo))
}

// Uint64s returns the two words of the key's state, for saving a key.
// KeyFrom(k.Uint64s()) == k.
func (k Key) Uint64s() (hi, lo uint64) { return k.hi, k.lo }

// KeyFrom rebuilds a Key from the words returned by Key.Uint64s.
func KeyFrom(hi, lo uint64) Key { return Key{hi: hi, lo: lo} }
