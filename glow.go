package flows

import "fmt"

// GlowConfig configures Glow. The zero value is a usable default.
type GlowConfig struct {
	// Scales is the number of scales, each starting with a Squeeze
	// (default: as many as the image's height and width allow halving,
	// at most 3).
	Scales int `json:"scales"`
	// Steps is the number of steps of flow per scale (default 4).
	Steps int `json:"steps"`
	// Hidden is the conditioner's hidden channels (default 32).
	Hidden int `json:"hidden"`
	// Blocks is the conditioner's residual blocks (default 0).
	Blocks int `json:"blocks"`
	// WeightNorm normalises the conditioner's hidden convolutions.
	WeightNorm bool `json:"weightNorm,omitempty"`
	// Prior is the prior of the channels factored out between scales
	// (default PriorLearned, Glow's split).
	Prior FactorPrior `json:"prior"`
	// Precision is the arithmetic of the conditioners' convolutions
	// (default Float64; see Precision).
	Precision Precision `json:"precision,omitzero"`
}

// Glow returns the init function of a Glow-style multi-scale flow
// (Kingma and Dhariwal, 2018) of images of the given shape. Scale s
// squeezes its input (C×H×W to 4C×H/2×W/2) and applies Steps steps of
//
//	ImageActNorm → Conv1x1 → ImageCoupling(MaskChannels, ConvNet)
//
// then, but at the last scale, factors out half of the channels
// (FactorOut with the Prior chosen) and hands the other half to scale s+1.
// Every layer starts as the identity but the 1×1 convolutions (random
// rotations) and ActNorm (set by InitFromData), so use it with
// Flow(Glow(...), Normal()) and call InitFromData on a batch first. The
// couplings read the context when there is one. The parameters are the
// layers' in that order (Serial's layout). Init returns an error unless dim
// is shape.Size() and the image allows the scales asked for.
func Glow(shape Shape, cfg GlowConfig) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		const who = "Glow"
		if err := checkImageDim(who, shape, dim, contextDim); err != nil {
			return nil, Bijection{}, err
		}
		most := 0
		for h, w := shape.H, shape.W; h%2 == 0 && w%2 == 0 && most < 3; h, w = h/2, w/2 {
			most++
		}
		scales := cfg.Scales
		if scales == 0 {
			scales = most
		}
		if scales < 1 || scales > most {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %d scales for image shape %v: each halves an even height and width, so 1 to %d", who, scales, shape, most)
		}
		steps, hidden := cfg.Steps, cfg.Hidden
		if steps == 0 {
			steps = 4
		}
		if hidden == 0 {
			hidden = 32
		}
		if steps < 1 || hidden < 1 || cfg.Blocks < 0 {
			return nil, Bijection{}, fmt.Errorf("flows: %s: steps %d, hidden %d, blocks %d: need positive sizes", who, steps, hidden, cfg.Blocks)
		}
		net := ConvNetConfig{Hidden: hidden, Blocks: cfg.Blocks, WeightNorm: cfg.WeightNorm, Precision: cfg.Precision}
		return glowScale(shape, scales, steps, net, cfg.Prior)(key, dim, contextDim)
	}
}

// glowScale returns the layers of Glow from a scale of the given input
// shape on, with scales scales left.
func glowScale(s Shape, scales, steps int, net ConvNetConfig, prior FactorPrior) InitFunc {
	sq := s.Squeezed()
	layers := []InitFunc{Squeeze(s)}
	for range steps {
		layers = append(layers, ImageActNorm(sq), Conv1x1(sq), ImageCoupling(sq, MaskChannels, ConvNet(sq.H, sq.W, net)))
	}
	if scales > 1 {
		half := Shape{sq.C / 2, sq.H, sq.W}
		layers = append(layers, FactorOut(sq, prior, glowScale(half, scales-1, steps, net, prior)))
	}
	return Serial(layers...)
}
