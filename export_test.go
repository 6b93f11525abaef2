package flows

// MADESkipAlways returns cfg with the unused blocks of a MADE with sorted
// degrees skipped at any width, so that the conformance suite checks the
// skipping products on nets small enough for finite differences.
func MADESkipAlways(cfg MADEConfig) MADEConfig {
	cfg.skipAlways = true
	return cfg
}
